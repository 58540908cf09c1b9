// Hopper prefill (attention.h (a) on sm_90a), FlashAttention-3 style. One block = 128 query rows
// of one head: two consumer warpgroups of 64 rows and one producer warpgroup, which hands most
// of its registers to the consumers (setmaxnreg).
// - The producer streams Q once and K/V tiles of 128 keys through a 3-stage ring with TMA
//   (128-byte swizzle, out-of-range rows zero-filled), on mbarriers: full when the bytes landed,
//   empty when both warpgroups' MMAs that read the stage have completed.
// - Consumers: S = Q K^T with both operands in shared memory (wgmma SS); O += P V with P in
//   registers, where the S accumulators already sit in the A-fragment layout (wgmma RS).
// - Ping-pong: each warpgroup issues [PV(t-1), S(t)] as one batch, then hands the tensor cores to
//   the other warpgroup (named barriers) and runs its softmax while the other's batch executes.
#include <cuda.h>
#include <cudaTypedefs.h>

#include "backend/cuda/attention_wgmma.cuh"

namespace starattn::cuda {
namespace attn {
namespace {

using namespace sm90;

constexpr int kBM = 128;  // query rows per block, 64 per consumer warpgroup
constexpr int kBN = 128;  // keys per tile
constexpr int kStages = 3;
constexpr int kThreads = 384;  // 2 consumer warpgroups + 1 producer warpgroup
constexpr int kBarBytes = 128;

template <int D>
constexpr int sm90_smem_bytes() {  // barriers, alignment slack, Q, K and V rings
  return kBarBytes + 1023 + (kBM + 2 * kStages * kBN) * D * 2;
}

struct TensorMaps {
  CUtensorMap q, k, v;
};

// Shared memory: barriers first, then 1024-aligned tiles (the swizzle atom).
template <int D>
struct Smem {
  static constexpr uint32_t kTile = kBN * D * 2;  // one K or V stage
  uint32_t bars;
  __device__ explicit Smem(uint32_t base) : bars(base) {}
  __device__ uint32_t q_full() const { return bars; }
  __device__ uint32_t full_k(int s) const { return bars + 8 * (1 + s); }
  __device__ uint32_t full_v(int s) const { return bars + 8 * (1 + kStages + s); }
  __device__ uint32_t empty_k(int s) const { return bars + 8 * (1 + 2 * kStages + s); }
  __device__ uint32_t empty_v(int s) const { return bars + 8 * (1 + 3 * kStages + s); }
  __device__ uint32_t q() const { return (bars + kBarBytes + 1023) & ~1023u; }
  __device__ uint32_t k(int s) const { return q() + kBM * D * 2 + s * kTile; }
  __device__ uint32_t v(int s) const { return q() + kBM * D * 2 + (kStages + s) * kTile; }
};
static_assert(8 * (1 + 4 * kStages) <= kBarBytes);

// Block geometry shared by both roles.
struct Block {
  int h, kvh, m0, n_tiles;
};

#if defined(SA_ATTN_HAVE_WGMMA)

template <int D>
__device__ __forceinline__ void producer(const TensorMaps& maps, const Smem<D>& sm,
                                         const Block& b) {
  constexpr uint32_t kTile = Smem<D>::kTile;
  mbar_expect_tx(sm.q_full(), kBM * D * 2);
  for (int cb = 0; cb < D / 64; ++cb)
    tma_load_3d(sm.q() + cb * kBM * 128, &maps.q, cb * 64, b.h, b.m0, sm.q_full());
  for (int t = 0; t < b.n_tiles; ++t) {
    const int s = t % kStages;
    const uint32_t parity = ((t / kStages) - 1) & 1;  // the release of this stage's last use
    if (t >= kStages) mbar_wait(sm.empty_k(s), parity);
    mbar_expect_tx(sm.full_k(s), kTile);
    for (int cb = 0; cb < D / 64; ++cb)
      tma_load_3d(sm.k(s) + cb * kBN * 128, &maps.k, cb * 64, b.kvh, t * kBN, sm.full_k(s));
    if (t >= kStages) mbar_wait(sm.empty_v(s), parity);
    mbar_expect_tx(sm.full_v(s), kTile);
    for (int cb = 0; cb < D / 64; ++cb)
      tma_load_3d(sm.v(s) + cb * kBN * 128, &maps.v, cb * 64, b.kvh, t * kBN, sm.full_v(s));
  }
}

template <int D>
__device__ __forceinline__ void consumer(const AttnParams& p, float scale_log2, const Smem<D>& sm,
                                         const Block& b, int warp, int lane) {
  constexpr int kNT = kBN / 8;  // score n-chunks
  constexpr int kDT = D / 8;    // output n-chunks
  const int wg = warp >> 2;
  // Rows g and g + 8 of this warp's 16 inside its warpgroup's 64 (accumulator layout).
  const int row_lo = b.m0 + wg * 64 + (warp & 3) * 16 + (lane >> 2);
  int lim[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int64_t last = p.causal ? row_lo + 8 * r + p.causal_offset : p.n_kv - 1;
    lim[r] = static_cast<int>(clamp64(last, -1, p.n_kv - 1));
  }
  const int64_t block_lim = p.causal ? clamp64(b.m0 + p.causal_offset, -1, p.n_kv - 1) : p.n_kv - 1;

  float o[D / 2];
#pragma unroll
  for (int i = 0; i < D / 2; ++i) o[i] = 0.0f;
  auto& o4 = reinterpret_cast<float(&)[kDT][4]>(o);
  float s[kBN / 2];
  auto& s4 = reinterpret_cast<float(&)[kNT][4]>(s);
  uint32_t pa[kBN / 16][4] = {};
  RowState st;

  mbar_wait(sm.q_full(), 0);
  // Named barrier 1 + w: warpgroup w may issue its batch. Warpgroup 0 goes first.
  const int n_tiles = b.n_tiles;
  if (n_tiles > 0 && wg == 1) named_arrive(1, 256);
  for (int t = 0; t <= n_tiles && n_tiles > 0; ++t) {
#pragma unroll
    for (int i = 0; i < kBN / 2; ++i) s[i] = 0.0f;
    // Every register the batch reads or accumulates into must be final before it starts.
    fence_regs(s);
    fence_regs(o);
    fence_regs(pa);
    named_sync(1 + wg, 256);
    wgmma_fence();
    if (t > 0) {  // O += P(t-1) V(t-1): a k-step is 16 key rows (2048 bytes); LBO: next 64 of d
      const int sv = (t - 1) % kStages;
      mbar_wait(sm.full_v(sv), ((t - 1) / kStages) & 1);
#pragma unroll
      for (int kk = 0; kk < kBN / 16; ++kk) {
        const uint64_t db = sw128_desc(sm.v(sv) + kk * 16 * 128, kBN * 128, 1024);
        if constexpr (D == 128)
          wgmma_rs_n128(o, pa[kk], db);
        else
          wgmma_rs_n64(o, pa[kk], db);
      }
    }
    if (t < n_tiles) {  // S = Q K^T(t): a k-step is 32 bytes of a 128-byte row; SBO: next 8 rows
      const int sk = t % kStages;
      mbar_wait(sm.full_k(sk), (t / kStages) & 1);
#pragma unroll
      for (int ks = 0; ks < D / 16; ++ks) {
        const uint32_t col = (ks & 3) * 32;
        const uint64_t da =
            sw128_desc(sm.q() + (ks >> 2) * kBM * 128 + wg * 64 * 128 + col, 16, 1024);
        const uint64_t db = sw128_desc(sm.k(sk) + (ks >> 2) * kBN * 128 + col, 16, 1024);
        wgmma_ss_n128(s, da, db, 1);
      }
    }
    wgmma_commit();
    // Hand the tensor cores over; the last hand-over would have no matching wait.
    if (!(wg == 1 && t == n_tiles)) named_arrive(2 - wg, 256);
    wgmma_wait<0>();
    fence_regs(s);
    fence_regs(o);
    fence_regs(pa);
    if (lane == 0) {
      if (t < n_tiles) mbar_arrive(sm.empty_k(t % kStages));
      if (t > 0) mbar_arrive(sm.empty_v((t - 1) % kStages));
    }
    if (t == n_tiles) break;

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
#pragma unroll
    for (int kk = 0; kk < kBN / 16; ++kk) {
      pa[kk][0] = pack_bf16(s4[2 * kk][0], s4[2 * kk][1]);
      pa[kk][1] = pack_bf16(s4[2 * kk][2], s4[2 * kk][3]);
      pa[kk][2] = pack_bf16(s4[2 * kk + 1][0], s4[2 * kk + 1][1]);
      pa[kk][3] = pack_bf16(s4[2 * kk + 1][2], s4[2 * kk + 1][3]);
    }
  }

#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float l = st.l[r];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    const int row = row_lo + 8 * r;
    if (row >= p.n_q) continue;
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    bf16* out = p.out + row * p.out_stride + static_cast<int64_t>(b.h) * D + 2 * (lane & 3);
#pragma unroll
    for (int j = 0; j < kDT; ++j)
      *reinterpret_cast<__nv_bfloat162*>(out + j * 8) =
          __floats2bfloat162_rn(o4[j][2 * r] * inv, o4[j][2 * r + 1] * inv);
    if (p.lse != nullptr && (lane & 3) == 0)
      p.lse[static_cast<int64_t>(row) * p.n_heads + b.h] =
          l > 0.0f ? (st.m[r] * scale_log2 + __log2f(l)) * kLn2 : -INFINITY;
  }
}

#endif  // SA_ATTN_HAVE_WGMMA

// Grid: (ceil(n_q / kBM), n_heads); 3 warpgroups: consumers 0 and 1, producer 2.
template <int D>
__global__ void __launch_bounds__(kThreads, 1)
    prefill_sm90_kernel(const AttnParams p, const __grid_constant__ TensorMaps maps,
                        float scale_log2) {
#if defined(SA_ATTN_HAVE_WGMMA)
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  const Smem<D> sm(smem_addr(smem_raw));
  Block b;
  // Causal blocks further down see more keys: launch them first so short ones fill the tail.
  b.m0 = (static_cast<int>(gridDim.x) - 1 - static_cast<int>(blockIdx.x)) * kBM;
  b.h = blockIdx.y;
  b.kvh = b.h / (p.n_heads / p.n_kv_heads);
  const int64_t n_end = p.causal ? clamp64(b.m0 + kBM + p.causal_offset, 0, p.n_kv) : p.n_kv;
  b.n_tiles = static_cast<int>((n_end + kBN - 1) / kBN);
  const int tid = threadIdx.x, lane = tid & 31;
  // Through a shuffle the compiler knows the warp index is warp-uniform, so the role branch
  // below is no divergent path (which would serialize the wgmma instructions).
  const int warp = __shfl_sync(0xffffffffu, tid >> 5, 0);

  if (tid == 0) {
    mbar_init(sm.q_full(), 1);
    for (int s = 0; s < kStages; ++s) {
      mbar_init(sm.full_k(s), 1);
      mbar_init(sm.full_v(s), 1);
      mbar_init(sm.empty_k(s), 8);  // lane 0 of each consumer warp
      mbar_init(sm.empty_v(s), 8);
    }
    mbar_init_fence();
  }
  __syncthreads();

  if (warp >= 8) {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n");
    if (warp == 8 && lane == 0) producer<D>(maps, sm, b);
  } else {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n");
    consumer<D>(p, scale_log2, sm, b, warp, lane);
  }
#else
  (void)p;
  (void)maps;
  (void)scale_log2;
  __trap();  // launched only on sm_90 devices, which run the sm_90a build
#endif
}

// A [rows, heads, head_dim] bf16 tensor (row stride in elements) as a 3-D TMA map whose box is
// 64 columns x 1 head x box_rows rows, landing as 128-byte-swizzled rows.
CUtensorMap make_map(const bf16* base, int head_dim, int heads, int rows, int64_t row_stride,
                     int box_rows) {
  static const auto encode = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found{};
    SA_CUDA(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000,
                                             cudaEnableDefault, &found));
    SA_CHECK(found == cudaDriverEntryPointSuccess && fn != nullptr,
             "attention_prefill: the driver has no cuTensorMapEncodeTiled");
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
  }();
  CUtensorMap map{};
  const cuuint64_t dims[3] = {static_cast<cuuint64_t>(head_dim), static_cast<cuuint64_t>(heads),
                              static_cast<cuuint64_t>(rows > 0 ? rows : 1)};
  const cuuint64_t strides[2] = {static_cast<cuuint64_t>(head_dim) * 2,
                                 static_cast<cuuint64_t>(row_stride) * 2};
  const cuuint32_t box[3] = {64, 1, static_cast<cuuint32_t>(box_rows)};
  const cuuint32_t elem_strides[3] = {1, 1, 1};
  const CUresult r =
      encode(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 3, const_cast<bf16*>(base), dims, strides, box,
             elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
             CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  SA_CHECK(r == CUDA_SUCCESS, "attention_prefill: cuTensorMapEncodeTiled failed (", int(r), ")");
  return map;
}

template <int D>
void launch_prefill_sm90(const AttnParams& p, cudaStream_t stream) {
  constexpr int smem = sm90_smem_bytes<D>();
  SA_CUDA(cudaFuncSetAttribute(prefill_sm90_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               smem));
  TensorMaps maps;
  maps.q = make_map(p.q, D, p.n_heads, p.n_q, p.q_stride, kBM);
  // With no keys nothing is loaded; the map only has to be valid.
  const bool kv = p.n_kv > 0;
  maps.k = make_map(kv ? p.k : p.q, D, kv ? p.n_kv_heads : 1, p.n_kv, kv ? p.kv_stride : D, kBN);
  maps.v = make_map(kv ? p.v : p.q, D, kv ? p.n_kv_heads : 1, p.n_kv, kv ? p.kv_stride : D, kBN);
  const dim3 grid((p.n_q + kBM - 1) / kBM, p.n_heads);
  prefill_sm90_kernel<D><<<grid, kThreads, smem, stream>>>(p, maps, p.scale * kLog2e);
  SA_LAUNCHED("prefill_sm90_kernel");
}

}  // namespace

void prefill_wgmma(const AttnParams& p, cudaStream_t stream) {
  check_params(p, "attention_prefill");
  SA_CHECK(!p.n_kv_at,
           "attention_prefill: a key count read at run time is not supported here "
           "(the split-KV kernels take it)");
  require_bf16_kv(p, "attention_prefill (wgmma)");
  if (p.n_q == 0) return;
  dispatch_head_dim(p.head_dim, "attention_prefill",
                    [&](auto d) { launch_prefill_sm90<decltype(d)::value>(p, stream); });
}

}  // namespace attn
}  // namespace starattn::cuda
