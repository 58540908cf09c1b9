// Host side shared by the attention kernels: the kernel choice, parameter checks and the split-KV
// workspace.
#include <algorithm>
#include <map>
#include <mutex>
#include <utility>

#include "backend/cuda/attention_common.cuh"

namespace starattn::cuda {
namespace attn {

void check_params(const AttnParams& p, const char* who) {
  SA_CHECK(p.n_heads > 0 && p.n_kv_heads > 0 && p.n_heads % p.n_kv_heads == 0, who, ": ", p.n_heads,
           " query heads vs ", p.n_kv_heads, " kv heads");
  SA_CHECK(p.n_q >= 0 && p.n_kv >= 0, who, ": negative sizes (n_q ", p.n_q, ", n_kv ", p.n_kv, ")");
  SA_CHECK(p.head_dim == 64 || p.head_dim == 128, who, ": head_dim ", p.head_dim,
           " is not supported (64, 128)");
  SA_CHECK(p.scale > 0.0f, who, ": scale must be > 0, got ", p.scale);
  SA_CHECK(!p.n_kv_at || !p.causal, who, ": a key count read at run time needs no mask");
  if (p.n_q == 0) return;
  const auto aligned = [](const void* ptr, uintptr_t a) {
    return ptr != nullptr && reinterpret_cast<uintptr_t>(ptr) % a == 0;
  };
  SA_CHECK(aligned(p.q, 16) && p.q_stride % 8 == 0 && p.q_stride >= int64_t{p.n_heads} * p.head_dim,
           who, ": q must be 16-byte aligned with a row stride that is a multiple of 8 and >= ",
           p.n_heads, " * ", p.head_dim, " (got ", p.q_stride, ")");
  SA_CHECK(
      aligned(p.out, 4) && p.out_stride % 2 == 0 && p.out_stride >= int64_t{p.n_heads} * p.head_dim,
      who, ": out must be 4-byte aligned with an even row stride >= ", p.n_heads, " * ", p.head_dim,
      " (got ", p.out_stride, ")");
  if (p.n_kv == 0) return;
  if (p.kv_type == KvType::Fp8) {
    const int64_t data = int64_t{p.n_kv_heads} * p.head_dim;
    SA_CHECK(!p.k && !p.v && aligned(p.k8, 16) && aligned(p.v8, 16) && p.kv_stride % 16 == 0 &&
                 p.kv_scale_offset >= data && p.kv_scale_offset % 4 == 0 &&
                 p.kv_stride >= p.kv_scale_offset + 4 * int64_t{p.n_kv_heads},
             who,
             ": fp8 KV needs k8 and v8 16-byte aligned (k and v null) and rows of a multiple "
             "of 16 bytes holding ",
             p.n_kv_heads, " * ", p.head_dim, " bytes and then the scales (got row stride ",
             p.kv_stride, ", scales at ", p.kv_scale_offset, ")");
    return;
  }
  SA_CHECK(p.kv_type == KvType::Act, who, ": unknown KV type ", static_cast<int>(p.kv_type));
  SA_CHECK(aligned(p.k, 16) && aligned(p.v, 16) && p.kv_stride % 8 == 0 &&
               p.kv_stride >= int64_t{p.n_kv_heads} * p.head_dim,
           who,
           ": k and v must be 16-byte aligned with a row stride that is a multiple of 8 and >= ",
           p.n_kv_heads, " * ", p.head_dim, " (got ", p.kv_stride, ")");
}

void require_bf16_kv(const AttnParams& p, const char* who) {
  SA_CHECK(p.kv_type == KvType::Act, who, " reads bf16 K and V only, not ",
           kv_type_name(p.kv_type));
}

// Keyed by stream too, so decodes running concurrently on two streams never share partials.
// Grow-only and never freed: a few MB at most, alive as long as the process.
void* workspace(size_t bytes, cudaStream_t stream) {
  static std::mutex mu;
  static std::map<std::pair<int, cudaStream_t>, std::pair<void*, size_t>> cache;
  int dev = 0;
  SA_CUDA(cudaGetDevice(&dev));
  const std::lock_guard<std::mutex> lock(mu);
  auto& [ptr, size] = cache[{dev, stream}];
  if (size < bytes) {
    if (ptr != nullptr) {
      // Work queued on this stream may still read the old buffer.
      SA_CUDA(cudaStreamSynchronize(stream));
      SA_CUDA(cudaFree(ptr));
      ptr = nullptr;
      size = 0;
    }
    const size_t grown = bytes + bytes / 2;
    SA_CUDA(cudaMalloc(&ptr, grown));
    size = grown;
    ++workspace_generation;
  }
  return ptr;
}

bool device_has_wgmma() {
  const DeviceInfo& d = device_info();
  return d.major == 9 && d.minor == 0;
}

}  // namespace attn

void attention_prefill(const AttnParams& p, cudaStream_t stream) {
  if (attn::device_has_wgmma())
    attn::prefill_wgmma(p, stream);
  else
    attn::prefill_mma(p, stream);
}

void attention(const AttnParams& p, cudaStream_t stream) {
  if (p.causal) {
    // Few rows over many keys: split the keys across the chip. Otherwise tiles of query rows.
    if (p.n_q <= kDecodeMaxRows)
      attention_decode(p, stream);
    else
      attention_prefill(p, stream);
    return;
  }
  // No mask: the GQA group's rows share every key. Decode reads each tile once for one row tile;
  // the shared kernel for up to 128 rows a block, split over keys, so it always fills the chip.
  // Flash prefill has no split over keys: its (row tiles x heads) blocks, one per SM, run at its
  // per-SM rate. On sm_90 that rate (wgmma, ~600 TFLOP/s a chip) is about twice the shared
  // kernel's (mma.sync), so prefill wins once its grid covers half the SMs; elsewhere both use
  // mma.sync and prefill needs the whole chip.
  const int64_t rows = static_cast<int64_t>(p.n_q) * (p.n_heads / std::max(p.n_kv_heads, 1));
  const int64_t prefill_blocks = (static_cast<int64_t>(p.n_q) + 127) / 128 * p.n_heads;
  const int64_t sms = attn::sm_count();
  const int64_t prefill_wins_at = attn::device_has_wgmma() ? (sms + 1) / 2 : sms;
  if (rows <= kDecodeRowTile)
    attention_decode(p, stream);
  else if (p.kv_type != KvType::Act && p.n_kv_at == nullptr)
    attention_prefill(p, stream);  // the shared kernel reads bf16 tiles only
  else if (p.n_kv_at != nullptr || prefill_blocks < prefill_wins_at)
    attention_shared(p, stream);  // refuses FP8 rows with a key count read at run time
  else
    attention_prefill(p, stream);
}

uint64_t attention_workspace_generation() {
  return attn::workspace_generation.load();
}

}  // namespace starattn::cuda
