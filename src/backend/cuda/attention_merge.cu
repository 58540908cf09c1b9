// Merge of two partial attention results over disjoint key sets (attention.h (c)), the GPU twin
// of starattn::merge_attention: lse = log(e^a + e^b) with the max subtracted; a side with
// lse = -inf saw no key and contributes nothing, so no row ever becomes NaN. Also the merge of
// the split-KV kernels' partials (merge_splits: attention_decode.cu, attention_shared.cu).
#include "backend/cuda/attention_common.cuh"
#include "backend/cuda/pdl.cuh"

namespace starattn::cuda {
namespace attn {
namespace {

// One warp per (row, head); lanes stride over head_dim (the merge moves bytes, nothing more).
__global__ void __launch_bounds__(128) merge_kernel(bf16* out_a, float* lse_a, const bf16* out_b,
                                                    const float* lse_b, int64_t n, int head_dim) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * 4 + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (r >= n) return;
  const float la = lse_a[r], lb = lse_b[r];
  if (lb == -INFINITY) return;  // b saw no key: a is already the answer (warp-uniform)
  __syncwarp();                 // every lane has read lse_a[r] before lane 0 rewrites it
  bf16* oa = out_a + r * head_dim;
  const bf16* ob = out_b + r * head_dim;
  if (la == -INFINITY) {  // a saw no key: b is the answer (copied, so nothing in a can leak)
    for (int c = lane; c < head_dim; c += 32) oa[c] = ob[c];
    if (lane == 0) lse_a[r] = lb;
    return;
  }
  const float m = fmaxf(la, lb);
  const float ea = __expf(la - m), eb = __expf(lb - m);  // the larger one is exactly 1
  const float wa = ea / (ea + eb), wb = eb / (ea + eb);
  for (int c = lane; c < head_dim; c += 32)
    oa[c] = __float2bfloat16_rn(wa * __bfloat162float(oa[c]) + wb * __bfloat162float(ob[c]));
  if (lane == 0) lse_a[r] = m + logf(ea + eb);
}

// One warp per (row, head), lanes over head_dim; fp32 accumulators in registers across the parts,
// rounded to bf16 once at the end (a chain of pairwise bf16 merges rounds at every step, which
// costs precision past a few ranks).
template <int D>
__global__ void __launch_bounds__(128)
    merge_parts_kernel(bf16* out, float* lse, const char* parts, size_t part_bytes, int n_parts,
                       int64_t n, size_t out_bytes) {
  constexpr int kPer = D / 32;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * 4 + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (r >= n) return;
  auto part_lse = [&](int i) {
    return reinterpret_cast<const float*>(parts + i * part_bytes + out_bytes)[r];
  };
  float m = -INFINITY;
  for (int i = 0; i < n_parts; ++i) m = fmaxf(m, part_lse(i));
  float acc[kPer];
  for (int j = 0; j < kPer; ++j) acc[j] = 0.0f;
  float sum = 0.0f;
  if (m != -INFINITY) {
    for (int i = 0; i < n_parts; ++i) {
      const float l = part_lse(i);
      if (l == -INFINITY) continue;
      const float w = __expf(l - m);
      sum += w;
      const bf16* o = reinterpret_cast<const bf16*>(parts + i * part_bytes) + r * D;
      for (int j = 0; j < kPer; ++j) acc[j] += w * __bfloat162float(o[lane + 32 * j]);
    }
  }
  const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
  for (int j = 0; j < kPer; ++j) out[r * D + lane + 32 * j] = __float2bfloat16_rn(acc[j] * inv);
  if (lse && lane == 0) lse[r] = sum > 0.0f ? m + logf(sum) : -INFINITY;
}

// A block per (kv head, row): weights exp(lse_s - max) over the splits, then the weighted sum, its
// warps taking every kMergeWarps-th split and adding up in shared memory. A decode over blocks of
// several kv heads has a few hundred splits for each of a few dozen rows, so a block has few
// rows to spread over the chip: each warp waits out a memory latency per 8 splits, and 16 warps
// a row wait a sixteenth as often as one.
constexpr int kMergeWarps = 16;
template <int D>
__global__ void __launch_bounds__(kMergeWarps * 32)
    decode_merge_kernel(const AttnParams p, const Split sp, const float* ws_o,
                        const float* ws_lse) {
  pdl_allow_dependents();       // the GEMV after this may start fetching its weights
  pdl_wait();                   // the partials of the kernel before
  constexpr int kPer = D / 32;  // columns per lane, contiguous
  __shared__ float s_acc[kMergeWarps][D];
  __shared__ float s_l[kMergeWarps];
  static_assert(D <= kMergeWarps * 32);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t idx = blockIdx.x;
  const int kvh = static_cast<int>(idx / sp.rows), row = static_cast<int>(idx % sp.rows);
  const float* lse_s = ws_lse + idx * sp.n_splits;

  float m = -INFINITY;
  for (int s = lane; s < sp.n_splits; s += 32) m = fmaxf(m, lse_s[s]);
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, off));

  float acc[kPer] = {};
  float l = 0.0f;
  if (m != -INFINITY) {
    // No branch on an empty split (lse -inf, its partial unread in the sum): the loads of
    // several splits can then be in flight at once.
#pragma unroll 8
    for (int s = warp; s < sp.n_splits; s += kMergeWarps) {
      const float ls = lse_s[s];
      const bool live = ls != -INFINITY;
      const float w = live ? __expf(ls - m) : 0.0f;
      l += w;
      const float* src = ws_o + (idx * sp.n_splits + s) * D + lane * kPer;
      float x[kPer];
      if constexpr (kPer == 4) {
        const float4 v = *reinterpret_cast<const float4*>(src);
        x[0] = v.x, x[1] = v.y, x[2] = v.z, x[3] = v.w;
      } else {
        const float2 v = *reinterpret_cast<const float2*>(src);
        x[0] = v.x, x[1] = v.y;
      }
#pragma unroll
      for (int e = 0; e < kPer; ++e) acc[e] += live ? w * x[e] : 0.0f;
    }
  }
#pragma unroll
  for (int e = 0; e < kPer; ++e) s_acc[warp][lane * kPer + e] = acc[e];
  if (lane == 0) s_l[warp] = l;
  __syncthreads();
  // The warps' sums, one column a thread.
  const int col = threadIdx.x;
  if (col >= D) return;
  l = 0.0f;
  float sum = 0.0f;
#pragma unroll
  for (int w = 0; w < kMergeWarps; ++w) l += s_l[w], sum += s_acc[w][col];
  const float inv = l > 0.0f ? 1.0f / l : 0.0f;
  const int tok = row / sp.group, head = kvh * sp.group + row % sp.group;
  p.out[tok * p.out_stride + static_cast<int64_t>(head) * D + col] = __float2bfloat16(sum * inv);
  if (p.lse != nullptr && col == 0)
    p.lse[static_cast<int64_t>(tok) * p.n_heads + head] = l > 0.0f ? m + logf(l) : -INFINITY;
}

}  // namespace

void merge_splits(const AttnParams& p, const Split& sp, const float* ws_o, const float* ws_lse,
                  cudaStream_t stream) {
  const int64_t merge_rows = static_cast<int64_t>(p.n_kv_heads) * sp.rows;
  SA_CHECK(merge_rows <= int64_t{0x7FFFFFFF}, "merge_splits: ", merge_rows, " rows is too many");
  const auto blocks = static_cast<unsigned>(merge_rows);
  dispatch_head_dim(p.head_dim, "merge_splits", [&](auto d) {
    launch_pdl(decode_merge_kernel<decltype(d)::value>, dim3(blocks), dim3(kMergeWarps * 32),
               stream, p, sp, ws_o, ws_lse);
  });
  SA_LAUNCHED("decode_merge_kernel");
}

}  // namespace attn

void merge_attention(__nv_bfloat16* out_a, float* lse_a, const __nv_bfloat16* out_b,
                     const float* lse_b, int rows, int heads, int head_dim, cudaStream_t stream) {
  SA_CHECK(rows >= 0 && heads >= 0 && head_dim > 0, "merge_attention: bad sizes (rows ", rows,
           ", heads ", heads, ", head_dim ", head_dim, ")");
  const int64_t n = static_cast<int64_t>(rows) * heads;
  if (n == 0) return;
  SA_CHECK(out_a && lse_a && out_b && lse_b, "merge_attention: null tensor");
  attn::merge_kernel<<<static_cast<unsigned>((n + 3) / 4), 128, 0, stream>>>(out_a, lse_a, out_b,
                                                                             lse_b, n, head_dim);
  SA_LAUNCHED("merge_kernel");
}

void merge_attention_parts(__nv_bfloat16* out, float* lse, const void* parts, size_t part_bytes,
                           int n_parts, int rows, int heads, int head_dim, cudaStream_t stream) {
  SA_CHECK(rows >= 0 && heads >= 0 && n_parts >= 1, "merge_attention_parts: bad sizes (rows ", rows,
           ", heads ", heads, ", parts ", n_parts, ")");
  const int64_t n = static_cast<int64_t>(rows) * heads;
  if (n == 0) return;
  SA_CHECK(out && parts, "merge_attention_parts: null tensor");
  const size_t out_bytes = static_cast<size_t>(n) * head_dim * sizeof(__nv_bfloat16);
  SA_CHECK(part_bytes >= out_bytes + n * sizeof(float) && part_bytes % 4 == 0,
           "merge_attention_parts: a part of ", part_bytes, " bytes cannot hold ", n, " rows");
  const auto grid = static_cast<unsigned>((n + 3) / 4);
  const auto* p = static_cast<const char*>(parts);
  switch (head_dim) {
    case 64:
      attn::merge_parts_kernel<64>
          <<<grid, 128, 0, stream>>>(out, lse, p, part_bytes, n_parts, n, out_bytes);
      break;
    case 128:
      attn::merge_parts_kernel<128>
          <<<grid, 128, 0, stream>>>(out, lse, p, part_bytes, n_parts, n, out_bytes);
      break;
    default:
      fail("merge_attention_parts: head_dim ", head_dim, " is not supported (64 or 128)");
  }
  SA_LAUNCHED("merge_parts_kernel");
}

}  // namespace starattn::cuda
