// Version 2 of the Hopper prefill, kept for bench/attention/NOTES.md (not built): wgmma SS/RS with
// cp.async loads by all threads and one __syncthreads per tile, no producer warp, no overlap of
// softmax with the tensor cores. 343 TFLOP/s; version 3
// (src/backend/cuda/attention_prefill_sm90.cu) replaced it. Its sm90 helpers have moved on since;
// read it as a record, not as code to build.
//
// Hopper prefill (attention.h (a) on sm_90a): the
// flash-attention-2 loop of attention_prefill.cu with warpgroup MMA. One block = 128 query rows of
// one head = 2 warpgroups of 64 rows; K/V tiles of 128 keys stream through 128-byte-swizzled shared
// memory (double-buffered cp.async). S = Q K^T reads both operands straight from shared memory
// (wgmma SS); O += P V takes P from registers, where the S accumulators already sit in the
// A-fragment layout (wgmma RS), and V transposed from shared memory. Unlike mma.sync, no warp
// copies K or V into registers, which is what bounded the mma.sync kernel
// (bench/attention/NOTES.md).
#include "backend/cuda/attention_wgmma.cuh"

namespace starattn::cuda {
namespace attn {
namespace {

using namespace sm90;

constexpr int kBM = 128;  // query rows per block, 64 per warpgroup
constexpr int kBN = 128;  // keys per tile
constexpr int kThreads = 256;

template <int D>
constexpr int sm90_smem_bytes() {
  return (kBM + 4 * kBN) * D * 2 + 1024;  // Q, 2 stages of K and V, slack to align to 1024
}

template <int D>
__global__ void __launch_bounds__(kThreads, 1)
    prefill_sm90_kernel(const AttnParams p, float scale_log2) {
#if defined(SA_ATTN_HAVE_WGMMA)
  constexpr int kNT = kBN / 8;  // score n-chunks
  constexpr int kDT = D / 8;    // output n-chunks
  constexpr uint32_t kTileK = kBN * D * 2;
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  const uint32_t s_q = (smem_addr(smem_raw) + 1023) & ~1023u;
  const uint32_t s_k = s_q + kBM * D * 2;  // [2][kBN rows][D]
  const uint32_t s_v = s_k + 2 * kTileK;   // [2][kBN rows][D]

  const int m_block = static_cast<int>(gridDim.x) - 1 - static_cast<int>(blockIdx.x);
  const int h = blockIdx.y;
  const int kvh = h / (p.n_heads / p.n_kv_heads);
  const int m0 = m_block * kBM;
  const int tid = threadIdx.x, wg = tid >> 7, lane = tid & 31;

  int64_t n_end = p.n_kv;
  if (p.causal) n_end = clamp64(m0 + kBM + p.causal_offset, 0, p.n_kv);
  const int n_tiles = static_cast<int>((n_end + kBN - 1) / kBN);

  const bf16* q = p.q + static_cast<int64_t>(h) * D;
  const bf16* k = p.k + static_cast<int64_t>(kvh) * D;
  const bf16* v = p.v + static_cast<int64_t>(kvh) * D;

  load_tile_sw128<kBM, D, kThreads>(s_q, q, m0, p.n_q, p.q_stride, tid);
  if (n_tiles > 0) {
    load_tile_sw128<kBN, D, kThreads>(s_k, k, 0, p.n_kv, p.kv_stride, tid);
    load_tile_sw128<kBN, D, kThreads>(s_v, v, 0, p.n_kv, p.kv_stride, tid);
  }
  cp_async_commit();
  cp_async_wait<0>();
  fence_proxy_async();
  __syncthreads();

  // Rows g and g + 8 of this warp's 16 inside the warpgroup's 64 (wgmma accumulator layout).
  const int row_lo = m0 + wg * 64 + ((tid >> 5) & 3) * 16 + (lane >> 2);
  int lim[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int64_t last = p.causal ? row_lo + 8 * r + p.causal_offset : p.n_kv - 1;
    lim[r] = static_cast<int>(clamp64(last, -1, p.n_kv - 1));
  }
  const int64_t block_lim = p.causal ? clamp64(m0 + p.causal_offset, -1, p.n_kv - 1) : p.n_kv - 1;

  float o[D / 2];
#pragma unroll
  for (int i = 0; i < D / 2; ++i) o[i] = 0.0f;
  auto& o4 = reinterpret_cast<float(&)[kDT][4]>(o);
  RowState st;

  for (int t = 0; t < n_tiles; ++t) {
    const int stage = t & 1;
    if (t + 1 < n_tiles) {
      const uint32_t nx = ((t + 1) & 1) * kTileK;
      load_tile_sw128<kBN, D, kThreads>(s_k + nx, k, (t + 1) * kBN, p.n_kv, p.kv_stride, tid);
      load_tile_sw128<kBN, D, kThreads>(s_v + nx, v, (t + 1) * kBN, p.n_kv, p.kv_stride, tid);
    }
    cp_async_commit();

    // S = Q K^T: D/16 k-steps; inside a 128-byte row a k-step is 32 bytes, then the next
    // 64-column block. SBO = 1024: the next 8 rows.
    float s[kBN / 2];
#pragma unroll
    for (int i = 0; i < kBN / 2; ++i) s[i] = 0.0f;
    const uint32_t kt = s_k + stage * kTileK;
    wgmma_fence();
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks) {
      const uint32_t col = (ks & 3) * 32;
      const uint64_t da = sw128_desc(s_q + (ks >> 2) * kBM * 128 + wg * 64 * 128 + col, 16, 1024);
      const uint64_t db = sw128_desc(kt + (ks >> 2) * kBN * 128 + col, 16, 1024);
      wgmma_ss_n128(s, da, db, 1);
    }
    wgmma_commit();
    wgmma_wait<0>();
    fence_regs(s);

    auto& s4 = reinterpret_cast<float(&)[kNT][4]>(s);
    const int n0 = t * kBN;
    if (n0 + kBN - 1 > block_lim) {
#pragma unroll
      for (int j = 0; j < kNT; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int key = n0 + j * 8 + 2 * (lane & 3) + (e & 1);
          if (key > lim[e >> 1]) s4[j][e] = -INFINITY;
        }
    }
    online_softmax<kNT, kDT>(s4, o4, st, scale_log2);

    uint32_t pa[kBN / 16][4];
#pragma unroll
    for (int kk = 0; kk < kBN / 16; ++kk) {
      pa[kk][0] = pack_bf16(s4[2 * kk][0], s4[2 * kk][1]);
      pa[kk][1] = pack_bf16(s4[2 * kk][2], s4[2 * kk][3]);
      pa[kk][2] = pack_bf16(s4[2 * kk + 1][0], s4[2 * kk + 1][1]);
      pa[kk][3] = pack_bf16(s4[2 * kk + 1][2], s4[2 * kk + 1][3]);
    }
    // O += P V: V is [key][d] (MN-major for this product): a k-step is 16 key rows (2048 bytes),
    // LBO = the next 64 columns of d, SBO = the next 8 keys.
    const uint32_t vt = s_v + stage * kTileK;
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kBN / 16; ++kk) {
      const uint64_t db = sw128_desc(vt + kk * 16 * 128, kBN * 128, 1024);
      if constexpr (D == 128)
        wgmma_rs_n128(o, pa[kk], db);
      else
        wgmma_rs_n64(o, pa[kk], db);
    }
    wgmma_commit();
    wgmma_wait<0>();
    fence_regs(o);
    fence_regs(pa);

    cp_async_wait<0>();
    fence_proxy_async();
    __syncthreads();
  }

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
          __floats2bfloat162_rn(o4[j][2 * r] * inv, o4[j][2 * r + 1] * inv);
    if (p.lse != nullptr && (lane & 3) == 0)
      p.lse[static_cast<int64_t>(row) * p.n_heads + h] =
          l > 0.0f ? (st.m[r] * scale_log2 + __log2f(l)) * kLn2 : -INFINITY;
  }
#else
  (void)p;
  (void)scale_log2;
  __trap();  // launched only on sm_90 devices, which run the sm_90a build
#endif
}

template <int D>
void launch_prefill_sm90(const AttnParams& p, cudaStream_t stream) {
  constexpr int smem = sm90_smem_bytes<D>();
  SA_CUDA(cudaFuncSetAttribute(prefill_sm90_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               smem));
  const dim3 grid((p.n_q + kBM - 1) / kBM, p.n_heads);
  prefill_sm90_kernel<D><<<grid, kThreads, smem, stream>>>(p, p.scale * kLog2e);
  SA_LAUNCHED("prefill_sm90_kernel");
}

}  // namespace

void prefill_wgmma(const AttnParams& p, cudaStream_t stream) {
  check_params(p, "attention_prefill");
  if (p.n_q == 0) return;
  switch (p.head_dim) {
    case 64:
      return launch_prefill_sm90<64>(p, stream);
    case 128:
      return launch_prefill_sm90<128>(p, stream);
    default:
      fail("attention_prefill: head_dim ", p.head_dim, " is not supported (64, 128)");
  }
}

}  // namespace attn
}  // namespace starattn::cuda
