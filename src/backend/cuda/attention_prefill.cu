// Flash-attention-2 style prefill with mma.sync (attention.h (a); sm_80 and newer). One block = 128
// query rows of one head, 8 warps of 16 rows each; Q stays in registers as MMA fragments, K/V tiles
// of 64 keys stream through shared memory (double-buffered cp.async), scores and the output
// accumulate in fp32.
//
// Costs per 128x64 tile and block: 4.2 MFLOP of mma.sync against 256 KB of ldmatrix traffic
// (every warp reads the whole K and V tile), so shared-memory bandwidth, not the tensor cores,
// bounds this kernel near half of the chip's bf16 peak; see bench/attention/NOTES.md. It also
// reads fp8 KV (kFp8 below); on sm_90 the wgmma kernel (attention_prefill_sm90.cu) takes fp8 too.
#include "backend/cuda/attention_common.cuh"

namespace starattn::cuda {
namespace attn {
namespace {

constexpr int kBM = 128;  // query rows per block
constexpr int kBN = 64;   // keys per tile
constexpr int kWarps = kBM / 16;
constexpr int kThreads = kWarps * 32;

template <int D>
constexpr int prefill_smem_bytes() {
  return (kBM + 4 * kBN) * D * static_cast<int>(sizeof(bf16));  // Q + 2 stages of K and V
}
// FP8 KV: Q, one bf16 K and V tile, and two stages of fp8 K and V bytes with their scales.
template <int D>
constexpr int fp8_stage_bytes() {
  return 2 * kBN * D + 2 * kBN * 4;
}
template <int D>
constexpr int prefill_fp8_smem_bytes() {
  return (kBM + 2 * kBN) * D * static_cast<int>(sizeof(bf16)) + 2 * fp8_stage_bytes<D>();
}

// Grid: (ceil(n_q / kBM), n_heads). d=64 fits two blocks per SM (registers, 48 KB smem).
// kFp8: K and V are fp8 KV rows (attention.h). Their tiles travel as bytes (double-buffered
// cp.async) and every block expands each one into the same swizzled bf16 tile as the bf16 path
// (the codes, exactly) before the MMA loop reads it: one more barrier and a conversion pass a
// tile, for half the bytes from memory. Each key's K scale multiplies its scores and its V scale
// its probabilities before P V, in fp32, as in the decode kernel, so a dequantised value is never
// rounded to bf16.
template <int D, bool kFp8>
__global__ void __launch_bounds__(kThreads, D == 64 ? 2 : 1)
    prefill_kernel(const AttnParams p, float scale_log2) {
  constexpr int kNT = kBN / 8;  // score n-tiles per tile
  constexpr int kDT = D / 8;    // output n-tiles
  extern __shared__ __align__(16) unsigned char smem_raw[];
  bf16* s_q = reinterpret_cast<bf16*>(smem_raw);
  bf16* s_k = s_q + kBM * D;                   // bf16: [2][kBN][D]; fp8: [kBN][D]
  bf16* s_v = s_k + (kFp8 ? 1 : 2) * kBN * D;  // the same
  unsigned char* s_f8 = reinterpret_cast<unsigned char*>(s_v + (kFp8 ? 1 : 2) * kBN * D);
  // fp8 stage s: K bytes [kBN][D], V bytes, K scales [kBN], V scales [kBN].
  auto f8_k = [&](int s) { return s_f8 + s * fp8_stage_bytes<D>(); };
  auto f8_v = [&](int s) { return f8_k(s) + kBN * D; };
  auto f8_ks = [&](int s) { return reinterpret_cast<float*>(f8_k(s) + 2 * kBN * D); };
  auto f8_vs = [&](int s) { return f8_ks(s) + kBN; };

  // Causal blocks further down see more keys: launch them first so the short ones fill the tail.
  const int m_block = static_cast<int>(gridDim.x) - 1 - static_cast<int>(blockIdx.x);
  const int h = blockIdx.y;
  const int kvh = h / (p.n_heads / p.n_kv_heads);
  const int m0 = m_block * kBM;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;

  // Keys visible to any row of this block: [0, n_end).
  int64_t n_end = p.n_kv;
  if (p.causal) n_end = clamp64(m0 + kBM + p.causal_offset, 0, p.n_kv);
  const int n_tiles = static_cast<int>((n_end + kBN - 1) / kBN);

  const bf16* q = p.q + static_cast<int64_t>(h) * D;
  // Only the pointers of the kernel's KV type are set (the others stay null).
  const bf16* k = kFp8 ? nullptr : p.k + static_cast<int64_t>(kvh) * D;
  const bf16* v = kFp8 ? nullptr : p.v + static_cast<int64_t>(kvh) * D;
  const uint8_t* k8 = kFp8 ? p.k8 + static_cast<int64_t>(kvh) * D : nullptr;
  const uint8_t* v8 = kFp8 ? p.v8 + static_cast<int64_t>(kvh) * D : nullptr;
  const uint8_t* k8s = kFp8 ? p.k8 + p.kv_scale_offset + 4 * kvh : nullptr;
  const uint8_t* v8s = kFp8 ? p.v8 + p.kv_scale_offset + 4 * kvh : nullptr;
  // fp8: tile t's bytes and scales into stage s.
  auto load_fp8 = [&](int t, int s) {
    load_tile_fp8<kBN, D, kThreads>(f8_k(s), f8_ks(s), k8, k8s, int64_t{t} * kBN, p.n_kv,
                                    p.kv_stride, tid);
    load_tile_fp8<kBN, D, kThreads>(f8_v(s), f8_vs(s), v8, v8s, int64_t{t} * kBN, p.n_kv,
                                    p.kv_stride, tid);
  };

  load_tile<kBM, D, kThreads>(s_q, q, m0, p.n_q, p.q_stride, tid);
  if (n_tiles > 0) {
    if constexpr (kFp8) {
      load_fp8(0, 0);
    } else {
      load_tile<kBN, D, kThreads>(s_k, k, 0, p.n_kv, p.kv_stride, tid);
      load_tile<kBN, D, kThreads>(s_v, v, 0, p.n_kv, p.kv_stride, tid);
    }
  }
  cp_async_commit();
  cp_async_wait<0>();
  __syncthreads();

  uint32_t qf[D / 16][4];
  load_a_frags<D>(qf, s_q, warp * 16, lane);

  // Last key each of the thread's two rows may see (-1: none); masks are built from these.
  const int row_lo = m0 + warp * 16 + (lane >> 2);
  int lim[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int64_t last = p.causal ? row_lo + 8 * r + p.causal_offset : p.n_kv - 1;
    lim[r] = static_cast<int>(clamp64(last, -1, p.n_kv - 1));
  }
  // Tiles whose every key every row of the block sees need no mask.
  const int64_t block_lim = p.causal ? clamp64(m0 + p.causal_offset, -1, p.n_kv - 1) : p.n_kv - 1;

  float o[kDT][4];
#pragma unroll
  for (int j = 0; j < kDT; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.0f;
  RowState st;

  for (int t = 0; t < n_tiles; ++t) {
    const int stage = t & 1;
    const bf16* kt = s_k;
    const bf16* vt = s_v;
    if constexpr (kFp8) {
      // Stage t & 1 holds tile t (waited for at the end of the last iteration); the other stage
      // was converted then, so tile t + 1 may land in it while this one is converted and used.
      if (t + 1 < n_tiles) load_fp8(t + 1, stage ^ 1);
      cp_async_commit();
      expand_tile_fp8<kBN, D, kThreads>(s_k, f8_k(stage), tid);
      expand_tile_fp8<kBN, D, kThreads>(s_v, f8_v(stage), tid);
      __syncthreads();
    } else {
      // The other stage was last read in iteration t-1, which the barrier below has closed.
      if (t + 1 < n_tiles) {
        const int nx = (t + 1) & 1;
        load_tile<kBN, D, kThreads>(s_k + nx * kBN * D, k, (t + 1) * kBN, p.n_kv, p.kv_stride, tid);
        load_tile<kBN, D, kThreads>(s_v + nx * kBN * D, v, (t + 1) * kBN, p.n_kv, p.kv_stride, tid);
      }
      cp_async_commit();
      kt = s_k + stage * kBN * D;
      vt = s_v + stage * kBN * D;
    }

    float s[kNT][4];
#pragma unroll
    for (int j = 0; j < kNT; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
#pragma unroll
    for (int np = 0; np < kNT / 2; ++np)
      qk_16keys<D>(reinterpret_cast<float(&)[2][4]>(s[2 * np]), qf, kt, np * 16, lane);

    if constexpr (kFp8) {
      const float* ks = f8_ks(stage);
#pragma unroll
      for (int j = 0; j < kNT; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[j][e] *= ks[j * 8 + 2 * (lane & 3) + (e & 1)];
    }
    const int n0 = t * kBN;
    if (n0 + kBN - 1 > block_lim) {
#pragma unroll
      for (int j = 0; j < kNT; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int key = n0 + j * 8 + 2 * (lane & 3) + (e & 1);
          if (key > lim[e >> 1]) s[j][e] = -INFINITY;
        }
    }
    online_softmax<kNT, kDT>(s, o, st, scale_log2);
    if constexpr (kFp8) {  // the row sums in st stay unscaled
      const float* vs = f8_vs(stage);
#pragma unroll
      for (int j = 0; j < kNT; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[j][e] *= vs[j * 8 + 2 * (lane & 3) + (e & 1)];
    }

#pragma unroll
    for (int kk = 0; kk < kNT / 2; ++kk)
      pv_16keys<D>(o, reinterpret_cast<const float(&)[2][4]>(s[2 * kk]), vt, kk * 16, lane);

    // bf16: the next stage has landed and everyone is done with this one. fp8: the next tile's
    // bytes have landed and everyone is done with the bf16 tiles the next conversion overwrites.
    cp_async_wait<0>();
    __syncthreads();
  }

  // Epilogue: finish the row sums across the quad, normalise, write bf16 pairs and the lse.
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float l = st.l[r];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    const int row = row_lo + 8 * r;
    if (row >= p.n_q) continue;
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    bf16* out = p.out + row * p.out_stride + static_cast<int64_t>(h) * D + 2 * (lane & 3);
#pragma unroll
    for (int j = 0; j < kDT; ++j)
      *reinterpret_cast<__nv_bfloat162*>(out + j * 8) =
          __floats2bfloat162_rn(o[j][2 * r] * inv, o[j][2 * r + 1] * inv);
    if (p.lse != nullptr && (lane & 3) == 0)
      p.lse[static_cast<int64_t>(row) * p.n_heads + h] =
          l > 0.0f ? (st.m[r] * scale_log2 + __log2f(l)) * kLn2 : -INFINITY;
  }
}

template <int D, bool kFp8>
void launch_prefill(const AttnParams& p, cudaStream_t stream) {
  constexpr int smem = kFp8 ? prefill_fp8_smem_bytes<D>() : prefill_smem_bytes<D>();
  SA_CUDA(cudaFuncSetAttribute(prefill_kernel<D, kFp8>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               smem));
  const dim3 grid((p.n_q + kBM - 1) / kBM, p.n_heads);
  prefill_kernel<D, kFp8><<<grid, kThreads, smem, stream>>>(p, p.scale * kLog2e);
  SA_LAUNCHED("prefill_kernel");
}

}  // namespace

void prefill_mma(const AttnParams& p, cudaStream_t stream) {
  check_params(p, "attention_prefill");
  SA_CHECK(!p.n_kv_at,
           "attention_prefill: a key count read at run time is not supported here "
           "(the split-KV kernels take it)");
  if (p.n_q == 0) return;
  dispatch_head_dim(p.head_dim, "attention_prefill", [&](auto d) {
    if (p.kv_type == KvType::Fp8)
      launch_prefill<decltype(d)::value, true>(p, stream);
    else
      launch_prefill<decltype(d)::value, false>(p, stream);
  });
}

}  // namespace attn
}  // namespace starattn::cuda
