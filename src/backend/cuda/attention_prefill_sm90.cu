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
// - FP8 KV (kFp8): TMA brings each tile's E4M3 bytes into a staging buffer, and the whole producer
//   warpgroup expands them into the swizzled f16 ring the consumers read (2 stages, to leave room
//   for the staging); S = Q K^T and P V then run in f16, with Q turned into f16 once. Each thread
//   takes one key. K goes as its codes, exactly (one conversion instruction a pair), and the
//   consumers scale the scores by the K scales in fp32, as the CPU does, so the scores and the
//   log-sum-exp agree with it to fp32 rounding. V goes dequantised: code times its scale over c_v
//   (one f16 multiply a pair), c_v being the largest V scale so far rounded up to a power of
//   two; the output accumulates in units of c_v, rescaled with the running maximum when c_v
//   grows. So the probabilities need no per-key multiply, and every product stays in f16's range
//   (codes times ratios <= 1), rounded once to f16 (2^-11, under the output's bf16 rounding).
//   A V tile whose smallest nonzero scale is under 2^-14 c_v (scales 16384 times apart, which a
//   model's V rows do not reach) would lose precision in f16: it goes as bf16 codes instead, with
//   each key's scale / c_v on its probabilities in fp32 (bf16's range holds any ratio). Q in f16
//   limits |q| to 65504: a larger component becomes infinite and its row NaN.
#include "backend/cuda/attention_wgmma.cuh"
#include "backend/cuda/tensor_map.h"

namespace starattn::cuda {
namespace attn {
namespace {

using namespace sm90;

constexpr int kBM = 128;       // query rows per block, 64 per consumer warpgroup
constexpr int kBN = 128;       // keys per tile
constexpr int kThreads = 384;  // 2 consumer warpgroups + 1 producer warpgroup
constexpr int kBarBytes = 128;

// bf16 ring stages: 3, or 2 with fp8 KV, whose staging and scales need the room of the third.
template <bool kFp8>
constexpr int kStages = kFp8 ? 2 : 3;

// FP8 KV: what the producer tells the consumers about a stage's tile, beside its K tile.
struct TileScales {
  float c_v;      // the output's unit after this tile: the V codes were scaled by scale / c_v
  uint32_t wide;  // V went as bf16 codes; the probabilities take scale / c_v (v_factors)
  uint32_t unused[2];
};
constexpr int kProducerWarps = 4;

template <int D, bool kFp8>
constexpr int sm90_smem_bytes() {  // barriers, alignment slack, Q, K and V rings, fp8 staging
  constexpr int s = kStages<kFp8>;
  return kBarBytes + 1023 + (kBM + 2 * s * kBN) * D * 2 +
         (kFp8 ? 2 * kBN * D + 2 * s * kBN * 4 + s * 16 + kProducerWarps * 16 : 0);
}

// K and V maps: bf16 tiles (128-byte swizzle) or, with fp8 KV, linear [kBN][D] byte tiles.
struct TensorMaps {
  CUtensorMap q, k, v;
};

// Shared memory: barriers first, then 1024-aligned tiles (the swizzle atom), then for fp8 the
// staging tiles of K and V bytes, each stage's K scales and V factors ([kBN] floats each; the V
// factors for wide tiles only) and TileScales, and the producer warps' tile statistics.
template <int D, bool kFp8>
struct Smem {
  static constexpr int kS = kStages<kFp8>;
  static constexpr uint32_t kTile = kBN * D * 2;  // one K or V stage
  uint32_t bars;
  const unsigned char* raw;  // the same memory through a generic pointer, for plain C++ loads
  __device__ explicit Smem(const unsigned char* smem) : bars(smem_addr(smem)), raw(smem) {}
  // A shared address's bytes as a generic pointer: plain loads the compiler may merge (the
  // scales, read two adjacent floats at a time) and order after the barrier waits.
  template <typename T>
  __device__ const T* at(uint32_t addr) const {
    return reinterpret_cast<const T*>(raw + (addr - bars));
  }
  __device__ uint32_t q_full() const { return bars; }
  __device__ uint32_t full_k(int s) const { return bars + 8 * (1 + s); }
  __device__ uint32_t full_v(int s) const { return bars + 8 * (1 + kS + s); }
  __device__ uint32_t empty_k(int s) const { return bars + 8 * (1 + 2 * kS + s); }
  __device__ uint32_t empty_v(int s) const { return bars + 8 * (1 + 3 * kS + s); }
  __device__ uint32_t staged_k() const { return bars + 8 * (1 + 4 * kS); }  // fp8 bytes landed
  __device__ uint32_t staged_v() const { return bars + 8 * (2 + 4 * kS); }
  __device__ uint32_t q() const { return (bars + kBarBytes + 1023) & ~1023u; }
  __device__ uint32_t k(int s) const { return q() + kBM * D * 2 + s * kTile; }
  __device__ uint32_t v(int s) const { return q() + kBM * D * 2 + (kS + s) * kTile; }
  __device__ uint32_t stage_k() const { return q() + kBM * D * 2 + 2 * kS * kTile; }
  __device__ uint32_t stage_v() const { return stage_k() + kBN * D; }
  __device__ uint32_t k_scales(int s) const { return stage_v() + kBN * D + s * kBN * 4; }
  __device__ uint32_t v_factors(int s) const { return k_scales(kS + s); }
  __device__ uint32_t tile_scales(int s) const { return v_factors(kS) + s * 16; }
  __device__ uint32_t stats(int warp) const { return tile_scales(kS) + warp * 16; }
};
static_assert(8 * (3 + 4 * kStages<false>) <= kBarBytes);  // the most barriers either needs

// Block geometry shared by both roles.
struct Block {
  int h, kvh, m0, n_tiles;
};

#if defined(SA_ATTN_HAVE_WGMMA)

// Named barriers: 1 and 2 hand the tensor cores between the consumers, 3 is the producer
// warpgroup's, 4 and 5 each consumer warpgroup's own.
constexpr int kProducerBar = 3;
constexpr int kConsumerBar = 4;

__device__ __forceinline__ uint32_t bf16x2_to_f16x2(uint32_t x) {
  const float2 f = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&x));
  return pack_f16(f.x, f.y);
}

template <int D>
__device__ __forceinline__ void load_q(const TensorMaps& maps, uint32_t q, uint32_t q_full,
                                       const Block& b) {
  mbar_expect_tx(q_full, kBM * D * 2);
  for (int cb = 0; cb < D / 64; ++cb)
    tma_load_3d(q + cb * kBM * 128, &maps.q, cb * 64, b.h, b.m0, q_full);
}

// bf16 KV: one thread streams Q and the K and V tiles by TMA.
template <int D>
__device__ __forceinline__ void producer(const TensorMaps& maps, const Smem<D, false>& sm,
                                         const Block& b) {
  constexpr int kS = Smem<D, false>::kS;
  constexpr uint32_t kTile = Smem<D, false>::kTile;
  load_q<D>(maps, sm.q(), sm.q_full(), b);
  for (int t = 0; t < b.n_tiles; ++t) {
    const int s = t % kS;
    const uint32_t parity = ((t / kS) - 1) & 1;  // the release of this stage's last use
    if (t >= kS) mbar_wait(sm.empty_k(s), parity);
    mbar_expect_tx(sm.full_k(s), kTile);
    for (int cb = 0; cb < D / 64; ++cb)
      tma_load_3d(sm.k(s) + cb * kBN * 128, &maps.k, cb * 64, b.kvh, t * kBN, sm.full_k(s));
    if (t >= kS) mbar_wait(sm.empty_v(s), parity);
    mbar_expect_tx(sm.full_v(s), kTile);
    for (int cb = 0; cb < D / 64; ++cb)
      tma_load_3d(sm.v(s) + cb * kBN * 128, &maps.v, cb * 64, b.kvh, t * kBN, sm.full_v(s));
  }
}

__device__ __forceinline__ uint4 ld_shared_v4(uint32_t addr) {
  uint4 r;
  asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
               : "r"(addr));
  return r;
}
__device__ __forceinline__ void st_shared_v4(uint32_t addr, uint32_t a, uint32_t b, uint32_t c,
                                             uint32_t d) {
  asm volatile("st.shared.v4.u32 [%0], {%1, %2, %3, %4};\n" ::"r"(addr), "r"(a), "r"(b), "r"(c),
               "r"(d)
               : "memory");
}
__device__ __forceinline__ void st_shared_f32(uint32_t addr, float x) {
  asm volatile("st.shared.f32 [%0], %1;\n" ::"r"(addr), "f"(x) : "memory");
}
__device__ __forceinline__ void st_shared_u32(uint32_t addr, uint32_t x) {
  asm volatile("st.shared.u32 [%0], %1;\n" ::"r"(addr), "r"(x) : "memory");
}
__device__ __forceinline__ uint32_t hmul2_f16(uint32_t a, uint32_t b) {
  const __half2 r =
      __hmul2(*reinterpret_cast<const __half2*>(&a), *reinterpret_cast<const __half2*>(&b));
  return *reinterpret_cast<const uint32_t*>(&r);
}

// How a row of codes expands: f16 codes exactly, f16 codes times a factor, bf16 codes exactly.
enum class Expand { kF16, kF16Scaled, kBf16 };

// Key r's row of a linear [kBN][D] fp8 staging tile -> its row of the 128-byte-swizzled 16-bit
// tile wgmma reads (the layout TMA gives the bf16 kernel), by thread r of the producer (f: the
// factor as f16x2). The chunks go in a rotated order so that the 8 threads of a quarter warp hit
// different banks (D = 128: none share one; D = 64: two at most).
template <int D, Expand kHow>
__device__ __forceinline__ void expand_row_sw128(uint32_t dst, uint32_t src, int r, uint32_t f) {
  constexpr int kChunks = D / 16;  // 16 fp8 bytes = two 8-element 16-bit chunks
  const int rot = D == 128 ? r : (r >> 2) & 1;
  // Loads kAhead chunks ahead: the shared-memory accessors are volatile, so they keep their
  // order, and a chunk loaded just before its use would wait out the whole latency (all 8 of
  // d = 128 at once would spill).
  constexpr int kAhead = 4;
  const auto load = [&](int c) { return ld_shared_v4(src + r * D + (c + rot) % kChunks * 16); };
  uint4 ahead[kAhead];
#pragma unroll
  for (int c = 0; c < kAhead; ++c) ahead[c] = load(c);
#pragma unroll
  for (int c = 0; c < kChunks; ++c) {
    const int cc = (c + rot) % kChunks;
    const uint4 w = ahead[c % kAhead];
    if (c + kAhead < kChunks) ahead[c % kAhead] = load(c + kAhead);
    uint32_t out[8];
    if constexpr (kHow == Expand::kBf16) {
      fp8x16_to_bf16x8(w, out);
    } else {
      fp8x16_to_f16x8(w, out);
      if constexpr (kHow == Expand::kF16Scaled)
#pragma unroll
        for (int e = 0; e < 8; ++e) out[e] = hmul2_f16(out[e], f);
    }
    st_shared_v4(dst + sw128_offset<kBN>(r, 2 * cc), out[0], out[1], out[2], out[3]);
    st_shared_v4(dst + sw128_offset<kBN>(r, 2 * cc + 1), out[4], out[5], out[6], out[7]);
  }
}

// The least power of two >= x, and at least 2^-126 (so its inverse is finite).
__device__ __forceinline__ float pow2_at_least(float x) {
  if (!(x > 0x1p-126f)) return 0x1p-126f;
  uint32_t b = __float_as_uint(x);
  if (b & 0x7FFFFFu) b = (b & 0x7F800000u) + 0x800000u;
  return __uint_as_float(b);
}

// FP8 KV: the whole producer warpgroup (ptid 0..127, key ptid of each tile). Thread 0 issues
// the TMA copies: Q, and each tile's K and V bytes into the staging tiles, the next tile's as soon
// as everyone has expanded this one. Per tile the warpgroup first finds its largest and smallest
// nonzero V scale (TileScales), then each thread expands its key's K and V rows, stores its K
// scale, fences its writes for the async proxy (wgmma), and after the warpgroup's barrier thread
// 0 marks the stage full.
template <int D>
__device__ __forceinline__ void producer_fp8(const AttnParams& p, const TensorMaps& maps,
                                             const Smem<D, true>& sm, const Block& b, int ptid) {
  constexpr int kS = Smem<D, true>::kS;
  constexpr uint32_t kStaged = kBN * D;
  const int lane = ptid & 31;
  const auto stage_tile = [&](const CUtensorMap* map, uint32_t dst, uint32_t bar, int t) {
    mbar_expect_tx(bar, kStaged);
    tma_load_3d(dst, map, 0, b.kvh, t * kBN, bar);
  };
  if (ptid == 0) {
    load_q<D>(maps, sm.q(), sm.q_full(), b);
    if (b.n_tiles > 0) {
      stage_tile(&maps.k, sm.stage_k(), sm.staged_k(), 0);
      stage_tile(&maps.v, sm.stage_v(), sm.staged_v(), 0);
    }
  }
  const uint8_t* k_scale = p.k8 + p.kv_scale_offset + 4 * b.kvh;
  const uint8_t* v_scale = p.v8 + p.kv_scale_offset + 4 * b.kvh;
  // Keys past n_kv get scale 0 (their bytes are TMA's zero fill), so they add no NaN.
  const auto scale_of = [&](const uint8_t* base, int t) {
    const int64_t key = int64_t{t} * kBN + ptid;
    return t < b.n_tiles && key < p.n_kv
               ? __ldg(reinterpret_cast<const float*>(base + key * p.kv_stride))
               : 0.0f;
  };
  float ks = scale_of(k_scale, 0), vs = scale_of(v_scale, 0);
  float c_v = 0x1p-126f;  // the largest V tile's power of two so far
  for (int t = 0; t < b.n_tiles; ++t) {
    const int s = t % kS;
    const uint32_t parity = ((t / kS) - 1) & 1;  // the release of this stage's last use
    const float ks_next = scale_of(k_scale, t + 1), vs_next = scale_of(v_scale, t + 1);

    // The tile's statistics: each warp's, then all four (the last tile's reads of them were
    // before the warpgroup's previous barrier).
    float v_max = vs, v_min = vs > 0.0f ? vs : INFINITY;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      v_max = fmaxf(v_max, __shfl_xor_sync(0xffffffffu, v_max, o));
      v_min = fminf(v_min, __shfl_xor_sync(0xffffffffu, v_min, o));
    }
    if (lane == 0) {
      const uint32_t st = sm.stats(ptid >> 5);
      st_shared_f32(st, v_max);
      st_shared_f32(st + 4, v_min);
    }
    named_sync(kProducerBar, 128);
#pragma unroll
    for (int w = 0; w < kProducerWarps; ++w) {
      const float* st = sm.template at<float>(sm.stats(w));
      v_max = fmaxf(v_max, st[0]), v_min = fminf(v_min, st[1]);
    }
    c_v = fmaxf(c_v, pow2_at_least(v_max));
    const bool wide = v_min < c_v * 0x1p-14f;

    // One half of the tile (K or V): its staged bytes into ring stage s; then the stage is full
    // and the staging tile takes the next tile's bytes.
    const auto expand = [&](auto is_k, const CUtensorMap* map, uint32_t staged, uint32_t stage,
                            uint32_t empty, uint32_t ring, uint32_t full) {
      mbar_wait(staged, t & 1);
      if (t >= kS) mbar_wait(empty, parity);
      if constexpr (decltype(is_k)::value) {
        expand_row_sw128<D, Expand::kF16>(ring, stage, ptid, 0);
        st_shared_f32(sm.k_scales(s) + 4 * ptid, ks);
        if (ptid == 0) {
          st_shared_f32(sm.tile_scales(s), c_v);
          st_shared_u32(sm.tile_scales(s) + 4, wide ? 1u : 0u);
        }
      } else if (wide) {
        expand_row_sw128<D, Expand::kBf16>(ring, stage, ptid, 0);
        st_shared_f32(sm.v_factors(s) + 4 * ptid, vs / c_v);
      } else {
        expand_row_sw128<D, Expand::kF16Scaled>(ring, stage, ptid, pack_f16(vs / c_v, vs / c_v));
      }
      fence_proxy_async();
      named_sync(kProducerBar, 128);
      if (ptid == 0) {
        mbar_arrive(full);
        if (t + 1 < b.n_tiles) stage_tile(map, stage, staged, t + 1);
      }
    };
    expand(std::true_type{}, &maps.k, sm.staged_k(), sm.stage_k(), sm.empty_k(s), sm.k(s),
           sm.full_k(s));
    expand(std::false_type{}, &maps.v, sm.staged_v(), sm.stage_v(), sm.empty_v(s), sm.v(s),
           sm.full_v(s));
    ks = ks_next;
    vs = vs_next;
  }
}

// Multiplies each score (or probability) column by its key's scale: the thread's keys in n-chunk j
// are j * 8 + 2 (lane & 3) + {0, 1}, one 8-byte load of the tile's [kBN] scales per chunk.
template <int NT>
__device__ __forceinline__ void scale_by_keys(float (&s4)[NT][4], const float2* scales, int lane) {
  const float2* mine = scales + (lane & 3);
#pragma unroll
  for (int j = 0; j < NT; ++j) {
    const float2 k2 = mine[4 * j];
    s4[j][0] *= k2.x, s4[j][1] *= k2.y, s4[j][2] *= k2.x, s4[j][3] *= k2.y;
  }
}

// online_softmax (attention_common.cuh) with the running maxima kept in the exponent's units (score
// times sc); the output accumulators also take o_ratio (their unit's change), the row sums not.
template <int NT, int DT>
__device__ __forceinline__ void online_softmax_exp2(float (&s)[NT][4], float (&o)[DT][4],
                                                    RowState& st, float sc, float o_ratio) {
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float mx = -INFINITY;
#pragma unroll
    for (int j = 0; j < NT; ++j) mx = fmaxf(mx, fmaxf(s[j][2 * r], s[j][2 * r + 1]));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    const float m_new = fmaxf(st.m[r], mx * sc);
    const float m_use = m_new == -INFINITY ? 0.0f : m_new;
    const float alpha = ex2(st.m[r] - m_use);
    st.m[r] = m_new;
    float sum = 0.0f;
#pragma unroll
    for (int j = 0; j < NT; ++j) {
      s[j][2 * r] = ex2(fmaf(s[j][2 * r], sc, -m_use));
      s[j][2 * r + 1] = ex2(fmaf(s[j][2 * r + 1], sc, -m_use));
      sum += s[j][2 * r] + s[j][2 * r + 1];
    }
    st.l[r] = st.l[r] * alpha + sum;
    const float oa = alpha * o_ratio;
#pragma unroll
    for (int j = 0; j < DT; ++j) {
      o[j][2 * r] *= oa;
      o[j][2 * r + 1] *= oa;
    }
  }
}

template <int D, bool kFp8>
__device__ __forceinline__ void consumer(const AttnParams& p, float scale_log2,
                                         const Smem<D, kFp8>& sm, const Block& b, int warp,
                                         int lane) {
  constexpr int kS = Smem<D, kFp8>::kS;
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
  RowState st;  // fp8: the running maxima st.m are in the exponent's units (score * scale_log2)
  float c_v = 1.0f;      // fp8: the output's unit
  bool pv_wide = false;  // fp8: the tile in pa went as bf16 (TileScales::wide)

  mbar_wait(sm.q_full(), 0);
  if constexpr (kFp8) {  // the warpgroup's 64 rows of Q to f16, in place, for S = Q K^T in f16
    const uint32_t rows = sm.q() + wg * 64 * 128;
#pragma unroll
    for (int i = warp % 4 * 32 + lane; i < D / 64 * 64 * 8; i += 128) {
      const uint32_t at = rows + (i / 512) * kBM * 128 + (i % 512) * 16;  // 16 bytes of a row
      const uint4 x = ld_shared_v4(at);
      st_shared_v4(at, bf16x2_to_f16x2(x.x), bf16x2_to_f16x2(x.y), bf16x2_to_f16x2(x.z),
                   bf16x2_to_f16x2(x.w));
    }
    fence_proxy_async();
    named_sync(kConsumerBar + wg, 128);
  }
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
      const int sv = (t - 1) % kS;
      mbar_wait(sm.full_v(sv), ((t - 1) / kS) & 1);
      // P and V in f16, or bf16 (the bf16 cache, and fp8's wide tiles): one branch, uniform.
      const auto pv = [&](auto f16) {
#pragma unroll
        for (int kk = 0; kk < kBN / 16; ++kk) {
          const uint64_t db = sw128_desc(sm.v(sv) + kk * 16 * 128, kBN * 128, 1024);
          if constexpr (D == 128)
            wgmma_rs_n128<decltype(f16)::value>(o, pa[kk], db);
          else
            wgmma_rs_n64<decltype(f16)::value>(o, pa[kk], db);
        }
      };
      if (kFp8 && !pv_wide)
        pv(std::true_type{});
      else
        pv(std::false_type{});
    }
    if (t < n_tiles) {  // S = Q K^T(t): a k-step is 32 bytes of a 128-byte row; SBO: next 8 rows
      const int sk = t % kS;
      mbar_wait(sm.full_k(sk), (t / kS) & 1);
#pragma unroll
      for (int ks = 0; ks < D / 16; ++ks) {
        const uint32_t col = (ks & 3) * 32;
        const uint64_t da =
            sw128_desc(sm.q() + (ks >> 2) * kBM * 128 + wg * 64 * 128 + col, 16, 1024);
        const uint64_t db = sw128_desc(sm.k(sk) + (ks >> 2) * kBN * 128 + col, 16, 1024);
        wgmma_ss_n128<kFp8>(s, da, db, 1);
      }
    }
    wgmma_commit();
    // Hand the tensor cores over; the last hand-over would have no matching wait.
    if (!(wg == 1 && t == n_tiles)) named_arrive(2 - wg, 256);
    wgmma_wait<0>();
    fence_regs(s);
    fence_regs(o);
    fence_regs(pa);
    TileScales ts{};
    if constexpr (kFp8) {  // the K scales and these sit in the K stage: use them before its release
      if (t < n_tiles) {
        scale_by_keys(s4, sm.template at<float2>(sm.k_scales(t % kS)), lane);
        ts = *sm.template at<TileScales>(sm.tile_scales(t % kS));
      }
      __syncwarp();
    }
    if (lane == 0) {
      if (t < n_tiles) mbar_arrive(sm.empty_k(t % kS));
      if (t > 0) mbar_arrive(sm.empty_v((t - 1) % kS));
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
    if constexpr (kFp8) {
      // The output moves to this tile's unit c_v.
      online_softmax_exp2<kNT, kDT>(s4, o4, st, scale_log2, c_v / ts.c_v);
      c_v = ts.c_v;
      pv_wide = ts.wide != 0;
      if (pv_wide) {  // the row sums in st stay unscaled; V(t) is used by the next batch
        mbar_wait(sm.full_v(t % kS), (t / kS) & 1);
        scale_by_keys(s4, sm.template at<float2>(sm.v_factors(t % kS)), lane);
      }
    } else {
      online_softmax<kNT, kDT>(s4, o4, st, scale_log2);
    }
    if (kFp8 && !pv_wide) {
#pragma unroll
      for (int kk = 0; kk < kBN / 16; ++kk) {
        pa[kk][0] = pack_f16(s4[2 * kk][0], s4[2 * kk][1]);
        pa[kk][1] = pack_f16(s4[2 * kk][2], s4[2 * kk][3]);
        pa[kk][2] = pack_f16(s4[2 * kk + 1][0], s4[2 * kk + 1][1]);
        pa[kk][3] = pack_f16(s4[2 * kk + 1][2], s4[2 * kk + 1][3]);
      }
    } else {
#pragma unroll
      for (int kk = 0; kk < kBN / 16; ++kk) {
        pa[kk][0] = pack_bf16(s4[2 * kk][0], s4[2 * kk][1]);
        pa[kk][1] = pack_bf16(s4[2 * kk][2], s4[2 * kk][3]);
        pa[kk][2] = pack_bf16(s4[2 * kk + 1][0], s4[2 * kk + 1][1]);
        pa[kk][3] = pack_bf16(s4[2 * kk + 1][2], s4[2 * kk + 1][3]);
      }
    }
  }

#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float l = st.l[r];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    const int row = row_lo + 8 * r;
    if (row >= p.n_q) continue;
    const float inv = l > 0.0f ? (kFp8 ? c_v : 1.0f) / l : 0.0f;
    bf16* out = p.out + row * p.out_stride + static_cast<int64_t>(b.h) * D + 2 * (lane & 3);
#pragma unroll
    for (int j = 0; j < kDT; ++j)
      *reinterpret_cast<__nv_bfloat162*>(out + j * 8) =
          __floats2bfloat162_rn(o4[j][2 * r] * inv, o4[j][2 * r + 1] * inv);
    if (p.lse != nullptr && (lane & 3) == 0)
      p.lse[static_cast<int64_t>(row) * p.n_heads + b.h] =
          l > 0.0f ? ((kFp8 ? st.m[r] : st.m[r] * scale_log2) + __log2f(l)) * kLn2 : -INFINITY;
  }
}

#endif  // SA_ATTN_HAVE_WGMMA

// Grid: (ceil(n_q / kBM), n_heads); 3 warpgroups: consumers 0 and 1, producer 2.
template <int D, bool kFp8>
__global__ void __launch_bounds__(kThreads, 1)
    prefill_sm90_kernel(const AttnParams p, const __grid_constant__ TensorMaps maps,
                        float scale_log2) {
#if defined(SA_ATTN_HAVE_WGMMA)
  constexpr int kS = kStages<kFp8>;
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  const Smem<D, kFp8> sm(smem_raw);
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
    for (int s = 0; s < kS; ++s) {
      mbar_init(sm.full_k(s), 1);
      mbar_init(sm.full_v(s), 1);
      mbar_init(sm.empty_k(s), 8);  // lane 0 of each consumer warp
      mbar_init(sm.empty_v(s), 8);
    }
    if constexpr (kFp8) {
      mbar_init(sm.staged_k(), 1);
      mbar_init(sm.staged_v(), 1);
    }
    mbar_init_fence();
  }
  __syncthreads();

  // The fp8 producer expands tiles on all its threads, so it keeps more registers (128 x 96 +
  // 256 x 200 of the SM's 65536; fewer spill).
  if (warp >= 8) {
    if constexpr (kFp8) {
      asm volatile("setmaxnreg.dec.sync.aligned.u32 96;\n");
      producer_fp8<D>(p, maps, sm, b, tid - 256);
    } else {
      asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n");
      if (warp == 8 && lane == 0) producer<D>(maps, sm, b);
    }
  } else {
    if constexpr (kFp8)
      asm volatile("setmaxnreg.inc.sync.aligned.u32 200;\n");
    else
      asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n");
    consumer<D, kFp8>(p, scale_log2, sm, b, warp, lane);
  }
#else
  (void)p;
  (void)maps;
  (void)scale_log2;
  __trap();  // launched only on sm_90 devices, which run the sm_90a build
#endif
}

template <int D, bool kFp8>
void launch_prefill_sm90(const AttnParams& p, cudaStream_t stream) {
  constexpr int smem = sm90_smem_bytes<D, kFp8>();
  static_assert(smem <= 227 * 1024);
  SA_CUDA(cudaFuncSetAttribute(prefill_sm90_kernel<D, kFp8>,
                               cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  TensorMaps maps;
  maps.q = make_map(p.q, D, p.n_heads, p.n_q, p.q_stride, kBM, MapTile::kBf16Sw128);
  // With no keys nothing is loaded; the map only has to be valid.
  const bool kv = p.n_kv > 0;
  const void* k = kFp8 ? static_cast<const void*>(p.k8) : p.k;
  const void* v = kFp8 ? static_cast<const void*>(p.v8) : p.v;
  const MapTile tile = kFp8 && kv ? MapTile::kFp8Linear : MapTile::kBf16Sw128;
  maps.k =
      make_map(kv ? k : p.q, D, kv ? p.n_kv_heads : 1, p.n_kv, kv ? p.kv_stride : D, kBN, tile);
  maps.v =
      make_map(kv ? v : p.q, D, kv ? p.n_kv_heads : 1, p.n_kv, kv ? p.kv_stride : D, kBN, tile);
  const dim3 grid((p.n_q + kBM - 1) / kBM, p.n_heads);
  prefill_sm90_kernel<D, kFp8><<<grid, kThreads, smem, stream>>>(p, maps, p.scale * kLog2e);
  SA_LAUNCHED("prefill_sm90_kernel");
}

}  // namespace

void prefill_wgmma(const AttnParams& p, cudaStream_t stream) {
  check_params(p, "attention_prefill");
  SA_CHECK(!p.n_kv_at,
           "attention_prefill: a key count read at run time is not supported here "
           "(the split-KV kernels take it)");
  if (p.n_q == 0) return;
  dispatch_head_dim(p.head_dim, "attention_prefill", [&](auto d) {
    constexpr int D = decltype(d)::value;
    if (p.kv_type == KvType::Fp8)
      launch_prefill_sm90<D, true>(p, stream);
    else
      launch_prefill_sm90<D, false>(p, stream);
  });
}

}  // namespace attn
}  // namespace starattn::cuda
