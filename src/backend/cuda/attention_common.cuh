// Pieces shared by the attention kernels (attention_*.cu): the CUDA error check, parameter
// validation, the tensor-core building blocks (cp.async, ldmatrix, mma.sync m16n8k16 bf16)
// over a swizzled shared-memory tile layout, and the FP8 KV pieces (E4M3 to bf16, tile loads and
// dequantisation) that every kernel reading an fp8 cache uses.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>
#include <type_traits>

#include "backend/cuda/attention.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_info.h"
#include "starattn/error.h"

namespace starattn::cuda::attn {

// Validates what every attention entry point assumes (shapes, alignment, scale > 0), for either
// KV type.
void check_params(const AttnParams& p, const char* who);
// Throws, naming `who`, unless K and V are bf16 (a kernel with no FP8 path).
void require_bf16_kv(const AttnParams& p, const char* who);

// The one head_dim dispatch of the attention kernels: calls f(std::integral_constant<int, D>{})
// for the supported D, and throws naming `who` and the value for any other.
template <typename F>
void dispatch_head_dim(int head_dim, const char* who, F&& f) {
  switch (head_dim) {
    case 64:
      return f(std::integral_constant<int, 64>{});
    case 128:
      return f(std::integral_constant<int, 128>{});
    default:
      fail(who, ": head_dim ", head_dim, " is not supported (64, 128)");
  }
}

// The two prefill kernels behind attention_prefill(): mma.sync (sm_80+) and wgmma (sm_90a).
void prefill_mma(const AttnParams& p, cudaStream_t stream);
void prefill_wgmma(const AttnParams& p, cudaStream_t stream);
// Whether the current device runs the sm_90a build (wgmma); cached per device.
bool device_has_wgmma();

// How a split-KV kernel (decode, shared) divides one call: the packed query rows of a kv head
// (row r is query token r / group, query head kvh * group + r % group) and the key slices.
struct Split {
  int rows;             // n_q * group: packed query rows per kv head
  int group;            // query heads per kv head
  int n_splits;         // key slices
  int tiles_per_split;  // key tiles per slice (of the kernel's tile size)
};

// The second kernel of a split-KV call: merges the slices' partials into p.out (bf16) and p.lse
// (natural log, skipped when null). Workspace layout, for packed row r of kv head kvh and slice s:
// ws_o[((kvh * rows + r) * n_splits + s) * D + c] (normalised fp32 output), ws_lse[same without
// D] (natural log; -inf for a slice that saw no key).
void merge_splits(const AttnParams& p, const Split& sp, const float* ws_o, const float* ws_lse,
                  cudaStream_t stream);

// Grow-only device buffer per (device, stream), for split-KV partial results. Each time one grows
// workspace_generation is bumped, so a CUDA graph that captured the old one knows it is stale.
void* workspace(size_t bytes, cudaStream_t stream);
inline std::atomic<uint64_t> workspace_generation{0};

inline int sm_count() {
  return device_info().sms;
}

}  // namespace starattn::cuda::attn

namespace starattn::cuda::attn {

using bf16 = __nv_bfloat16;

// Tiles are [rows][D] bf16 in shared memory, in 16-byte chunks. Chunk c of row r is stored at
// chunk c ^ (r & 7): the 8 rows an ldmatrix reads at one logical chunk land in 8 distinct bank
// groups (rows are 128 or 256 bytes, so unswizzled they would all hit the same banks).
template <int D>
__device__ __forceinline__ int swz(int row, int chunk) {
  return row * D + ((chunk ^ (row & 7)) << 3);
}

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte global -> shared copy that skips L1; with valid == false it writes zeros (src unread).
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
               "r"(valid ? 16 : 0)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// Copies rows [row0, row0 + ROWS) of a [n_rows][D] bf16 tensor (row stride `stride` elements)
// into a swizzled tile; rows past n_rows become zeros so padded keys never inject NaN.
template <int ROWS, int D, int THREADS>
__device__ __forceinline__ void load_tile(bf16* tile, const bf16* src, int64_t row0, int64_t n_rows,
                                          int64_t stride, int tid) {
  constexpr int kChunks = D / 8;
#pragma unroll
  for (int i = tid; i < ROWS * kChunks; i += THREADS) {
    const int r = i / kChunks, c = i % kChunks;
    const bool valid = row0 + r < n_rows;
    const bf16* g = valid ? src + (row0 + r) * stride + c * 8 : src;
    cp_async16(tile + swz<D>(r, c), g, valid);
  }
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const bf16* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const bf16* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

// c += a * b for one 16x8x16 tile: a row-major 16x16 bf16, b 16x8 bf16 ("col"), c fp32.
__device__ __forceinline__ void mma_bf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// The same with f16 operands (the fp8 decode kernel's: E4M3 converts to f16 in one instruction).
__device__ __forceinline__ void mma_f16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                        uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t pack_f16(float lo, float hi) {
  const __half2 v = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);  // .x (lo) in the low 16 bits
  return *reinterpret_cast<const uint32_t*>(&v);
}

// 2^x on the special-function unit; ex2(-inf) = 0, which the masked scores rely on.
__device__ __forceinline__ float ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

__host__ __device__ __forceinline__ int64_t clamp64(int64_t x, int64_t lo, int64_t hi) {
  return x < lo ? lo : (x > hi ? hi : x);
}

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// A-operand fragments of a 16 x D tile (rows row0..row0+15 of a swizzled tile) for mma m16n8k16.
// Lanes 0-7/8-15/16-23/24-31 address the four 8x8 matrices a0..a3: rows +0/+8, chunks +0/+1.
template <int D>
__device__ __forceinline__ void load_a_frags(uint32_t (&f)[D / 16][4], const bf16* tile, int row0,
                                             int lane) {
  const int r = row0 + (lane & 7) + ((lane >> 3) & 1) * 8;
#pragma unroll
  for (int ks = 0; ks < D / 16; ++ks) ldmatrix_x4(f[ks], tile + swz<D>(r, ks * 2 + (lane >> 4)));
}

// s[2][4] += Q(16 x D) K^T for the 16 keys at rows key0..key0+15 of a swizzled K tile.
// Matrices: keys +0..7 chunk 2ks (b0 of n-tile 0), chunk 2ks+1 (b1), keys +8..15 (n-tile 1).
template <int D>
__device__ __forceinline__ void qk_16keys(float (&s)[2][4], const uint32_t (&qf)[D / 16][4],
                                          const bf16* k_tile, int key0, int lane) {
  const int r = key0 + (lane & 7) + (lane >> 4) * 8;
#pragma unroll
  for (int ks = 0; ks < D / 16; ++ks) {
    uint32_t kf[4];
    ldmatrix_x4(kf, k_tile + swz<D>(r, ks * 2 + ((lane >> 3) & 1)));
    mma_bf16(s[0], qf[ks], kf[0], kf[1]);
    mma_bf16(s[1], qf[ks], kf[2], kf[3]);
  }
}

// o[D/8][4] += P(16 x 16 keys) V for the keys at rows key0..key0+15 of a swizzled V tile.
// P comes from the two score n-tiles in the accumulator layout, which is the A layout once packed.
// V is [key][d] row-major, so B fragments come from ldmatrix.trans: keys +0..7/+8..15 give b0/b1.
template <int D>
__device__ __forceinline__ void pv_16keys(float (&o)[D / 8][4], const float (&p)[2][4],
                                          const bf16* v_tile, int key0, int lane) {
  const uint32_t pa[4] = {pack_bf16(p[0][0], p[0][1]), pack_bf16(p[0][2], p[0][3]),
                          pack_bf16(p[1][0], p[1][1]), pack_bf16(p[1][2], p[1][3])};
  const int r = key0 + (lane & 7) + ((lane >> 3) & 1) * 8;
#pragma unroll
  for (int dp = 0; dp < D / 16; ++dp) {
    uint32_t vf[4];
    ldmatrix_x4_trans(vf, v_tile + swz<D>(r, dp * 2 + (lane >> 4)));
    mma_bf16(o[2 * dp], pa, vf[0], vf[1]);
    mma_bf16(o[2 * dp + 1], pa, vf[2], vf[3]);
  }
}

// Online-softmax state of the two rows a thread holds (rows g and g + 8 of the warp's 16).
// m is the running max of raw scores; l the thread's partial sum of 2^((s - m) * scale_log2)
// (the four lanes of a quad are summed only at the end, since rescaling is uniform per row).
struct RowState {
  float m[2] = {-INFINITY, -INFINITY};
  float l[2] = {0.0f, 0.0f};
};

// Turns the scores s[NT][4] (n-tiles of 8 keys, accumulator layout) into probabilities in place,
// rescaling o[DT][4] and the state. Masked scores are -inf. A row that has seen only masked keys
// keeps m = -inf; it exponentiates against 0 instead, so every p is 0 and nothing becomes NaN.
template <int NT, int DT>
__device__ __forceinline__ void online_softmax(float (&s)[NT][4], float (&o)[DT][4], RowState& st,
                                               float scale_log2) {
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float mx = st.m[r];
#pragma unroll
    for (int j = 0; j < NT; ++j) mx = fmaxf(mx, fmaxf(s[j][2 * r], s[j][2 * r + 1]));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    const float m_use = mx == -INFINITY ? 0.0f : mx * scale_log2;
    const float alpha = ex2(st.m[r] * scale_log2 - m_use);
    st.m[r] = mx;
    float sum = 0.0f;
#pragma unroll
    for (int j = 0; j < NT; ++j) {
      s[j][2 * r] = ex2(fmaf(s[j][2 * r], scale_log2, -m_use));
      s[j][2 * r + 1] = ex2(fmaf(s[j][2 * r + 1], scale_log2, -m_use));
      sum += s[j][2 * r] + s[j][2 * r + 1];
    }
    st.l[r] = st.l[r] * alpha + sum;
#pragma unroll
    for (int j = 0; j < DT; ++j) {
      o[j][2 * r] *= alpha;
      o[j][2 * r + 1] *= alpha;
    }
  }
}

// ---- FP8 KV (attention/kv_format.h) ----

// Two E4M3 values (the low byte first, as in the cache) -> bf16x2 (the first in the low half),
// exactly: every E4M3 value is a bf16 value. Through f16, which sm_89+ converts to in one
// instruction (cvt.rn.f16x2.e4m3x2; older targets run cuda_fp8.h's exact software path).
__device__ __forceinline__ uint32_t fp8x2_to_bf16x2(uint32_t two) {
  const __half2_raw h =
      __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(two & 0xFFFFu), __NV_E4M3);
  const float2 f = __half22float2(__half2(h));
  return pack_bf16(f.x, f.y);
}
// Two E4M3 values (the low byte first) -> f16x2, exactly: one cvt.rn.f16x2.e4m3x2 on sm_89+.
__device__ __forceinline__ uint32_t fp8x2_to_f16x2(uint32_t two) {
  const __half2_raw h =
      __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(two & 0xFFFFu), __NV_E4M3);
  return static_cast<uint32_t>(h.x) | (static_cast<uint32_t>(h.y) << 16);
}
// Four E4M3 values [b0 b1 b2 b3] -> bf16x2 pairs even = (b0, b2) and odd = (b1, b3), bit for bit
// what fp8x2_to_bf16x2 gives (a NaN code gives a NaN, not the same one), with integer and bf16x2
// operations only: the conversion instructions that path takes run at a fraction of the integer
// rate (the prefill's producer expands whole tiles with it). E4M3 s.eeee.mmm laid
// into bf16 as s.0000eeee.mmm0000 is the value times 2^-120, subnormals included (as bf16
// subnormals, which bf16x2 arithmetic keeps); one exact product by 2^120 gives the value. A NaN
// code (0x7F, 0xFF; only a NaN activation writes one) would come out finite that way, so its
// half gets every exponent bit set afterwards. No branch: one per word held the warps at each
// word until it resolved.
__device__ __forceinline__ void fp8x4_to_bf16x2_pairs(uint32_t w, uint32_t& even, uint32_t& odd) {
  const uint32_t mags = w & 0x7F7F7F7Fu;
  const uint32_t e = ((w << 8) & 0x80008000u) | ((mags << 4) & 0x07F007F0u);
  const uint32_t o = (w & 0x80008000u) | ((mags >> 4) & 0x07F007F0u);
  const __nv_bfloat162 two120 =
      __halves2bfloat162(__ushort_as_bfloat16(0x7B80), __ushort_as_bfloat16(0x7B80));
  const __nv_bfloat162 ev = __hmul2(*reinterpret_cast<const __nv_bfloat162*>(&e), two120);
  const __nv_bfloat162 ov = __hmul2(*reinterpret_cast<const __nv_bfloat162*>(&o), two120);
  const uint32_t nan = (mags + 0x01010101u) & 0x80808080u;  // bit 7 of each byte of magnitude 0x7F
  even = *reinterpret_cast<const uint32_t*>(&ev) | ((nan >> 7) & 0x00010001u) * 0x7FC0u;
  odd = *reinterpret_cast<const uint32_t*>(&ov) | ((nan >> 15) & 0x00010001u) * 0x7FC0u;
}
// N-byte global -> shared copy (N = 4, 8 or 16: the scales of one to four heads); with
// valid == false it writes zeros (src unread).
template <int N>
__device__ __forceinline__ void cp_async_bytes(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(smem_addr(dst)), "l"(src),
               "n"(N), "r"(valid ? N : 0)
               : "memory");
}

// Copies the bytes of rows [row0, row0 + ROWS) of one kv head of fp8 KV rows (src: that head's
// first byte in row 0; row stride `stride` bytes) into a linear [ROWS][D] byte tile, and their
// scales (scale_src: that head's scale in row 0) into [ROWS] floats. Rows past n_rows become
// zeros with scale 0, so padded keys never inject NaN.
template <int ROWS, int D, int THREADS>
__device__ __forceinline__ void load_tile_fp8(unsigned char* tile, float* scales,
                                              const uint8_t* src, const uint8_t* scale_src,
                                              int64_t row0, int64_t n_rows, int64_t stride,
                                              int tid) {
  constexpr int kChunks = D / 16;
#pragma unroll
  for (int i = tid; i < ROWS * kChunks; i += THREADS) {
    const int r = i / kChunks, c = i % kChunks;
    const bool valid = row0 + r < n_rows;
    cp_async16(tile + r * D + c * 16, valid ? src + (row0 + r) * stride + c * 16 : src, valid);
  }
  for (int r = tid; r < ROWS; r += THREADS) {
    const bool valid = row0 + r < n_rows;
    cp_async_bytes<4>(scales + r, valid ? scale_src + (row0 + r) * stride : scale_src, valid);
  }
}

// 16 E4M3 bytes -> 8 bf16x2 words in the bytes' order, exactly.
__device__ __forceinline__ void fp8x16_to_bf16x8(const uint4& w, uint32_t (&out)[8]) {
  const uint32_t words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    uint32_t even, odd;  // (b0, b2), (b1, b3) -> (b0, b1), (b2, b3)
    fp8x4_to_bf16x2_pairs(words[k], even, odd);
    out[2 * k] = __byte_perm(even, odd, 0x5410);
    out[2 * k + 1] = __byte_perm(even, odd, 0x7632);
  }
}
// 16 E4M3 bytes -> 8 f16x2 words in the bytes' order, exactly: one conversion instruction a pair.
__device__ __forceinline__ void fp8x16_to_f16x8(const uint4& w, uint32_t (&out)[8]) {
  const uint32_t words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    out[2 * k] = fp8x2_to_f16x2(words[k]);
    out[2 * k + 1] = fp8x2_to_f16x2(words[k] >> 16);
  }
}

// A linear [ROWS][D] fp8 tile -> the swizzled bf16 tile (swz) the bf16 building blocks read,
// exactly (every E4M3 value is a bf16 value); the scales are applied to the scores and the
// probabilities instead, in fp32, as the decode kernel does.
template <int ROWS, int D, int THREADS>
__device__ __forceinline__ void expand_tile_fp8(bf16* dst, const unsigned char* src, int tid) {
  constexpr int kChunks = D / 16;
#pragma unroll
  for (int i = tid; i < ROWS * kChunks; i += THREADS) {
    const int r = i / kChunks, c = i % kChunks;
    uint32_t out[8];
    fp8x16_to_bf16x8(*reinterpret_cast<const uint4*>(src + r * D + c * 16), out);
    *reinterpret_cast<uint4*>(dst + swz<D>(r, 2 * c)) = make_uint4(out[0], out[1], out[2], out[3]);
    *reinterpret_cast<uint4*>(dst + swz<D>(r, 2 * c + 1)) =
        make_uint4(out[4], out[5], out[6], out[7]);
  }
}

}  // namespace starattn::cuda::attn
