// The x86 builds of the quantised-weight kernels (quant_kernels.h), one source for three sets.
// Each set is a translation unit that defines STARATTN_QUANT_DOT, STARATTN_QUANT_SET_NAME and the
// compiler flags it needs (CMakeLists.txt), then includes this file:
//   quant_avx2.cpp       -mavx2 -mfma -mf16c                    STARATTN_QUANT_DOT 0  "avx2"
//   quant_avxvnni.cpp    ... -mavxvnni                           STARATTN_QUANT_DOT 1  "avx-vnni"
//   quant_avx512vnni.cpp ... -mavx512f -mavx512vl -mavx512vnni   STARATTN_QUANT_DOT 2 "avx512-vnni"
// Nothing here runs unless kernels() found the set's features on the CPU (quant_scalar.cpp).
//
// Integer dot products: four unsigned weight codes times four signed 8-bit activations, summed
// into each int32 lane. AVX2 does it in two steps, _mm256_maddubs_epi16 (pairs into int16,
// never saturating here: |code| <= 63 and |q| <= 127 give at most 2 * 63 * 127 = 16002; Q8_0's
// signed codes go through the sign trick, at most 2 * 128 * 127) then _mm256_madd_epi16 (pairs
// into int32); VNNI's vpdpbusd does it in one. The lanes hold the same integers either way, so
// the three sets give the same bits. The K-quants' sub-block scales multiply int16 pairs inside
// _mm256_madd_epi16, so they keep the two-step form in every set.
//
// Scales: for the 32-element types (Q8_0, Q4_0, Q4_1) a block's integer lanes are converted to
// fp32 and multiplied into a vector accumulator by the product of the two scales, d_w d_x, formed
// in vector form with the scalar build's rounding (the engine's multi-rank tolerances are met
// with that grouping: a last-bit change at one 8-bit activation's rounding tie moves a tiny
// model's logits by 1e-3); the offset term (Q4_1's min, Q4_0's -8 d) goes into a second vector
// accumulator as offset * dsum / 8 per lane, so that the eight lanes sum to it. Both fp16 fields of
// a Q4_1 block convert in one instruction. Scalar conversions and a dependent scalar chain per
// block cost more than the products (measured on a Sapphire Rapids core: 15-20% of a GEMV).
//
// Dequantisation to fp32 (the prefill path's panels) uses the reference's operations (a multiply
// then an add, no fused multiply-add), so its values equal dequantize()'s bit for bit.
#pragma once

#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "backend/cpu/quant_kernels.h"

#if !defined(STARATTN_QUANT_DOT) || !defined(STARATTN_QUANT_SET_NAME)
#error "define STARATTN_QUANT_DOT and STARATTN_QUANT_SET_NAME before including quant_x86.h"
#endif

namespace starattn::cpu::quant {
namespace {

float f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

int hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
  return _mm_cvtsi128_si32(s);
}

__m256i load32(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

// 16 bytes of nibble pairs -> 32 codes: the low nibbles (elements 0..15), then the high ones. The
// bytes are loaded into both halves at once and only the upper half shifted.
__m256i nibbles(const uint8_t* qs) {
  const __m256i q =
      _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
  return _mm256_and_si256(_mm256_srlv_epi64(q, _mm256_setr_epi64x(0, 0, 4, 4)),
                          _mm256_set1_epi8(0x0F));
}

// Eight int32 lanes summing u[i] * s[i] (u unsigned codes, s signed), each pair times `scale`.
__m256i dot_u8(__m256i u, __m256i s, __m256i scale16) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), scale16);
}

// Eight int32 lanes, lane j the sum of u[i] * s[i] over i in [4 j, 4 j + 4).
__m256i dot4_u8(__m256i u, __m256i s) {
#if STARATTN_QUANT_DOT == 1
  return _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), u, s);
#elif STARATTN_QUANT_DOT == 2
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
#else
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}

// v in lane 0, zeros elsewhere.
__m256 lane0(float v) {
  return _mm256_setr_ps(v, 0, 0, 0, 0, 0, 0, 0);
}

// An fp16 scale broadcast to eight fp32 lanes.
__m256 f16x8(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _mm256_cvtph_ps(_mm_set1_epi16(static_cast<short>(h)));
}

void quantize_act(const float* x, int64_t cols, ActBlock* out) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 big = _mm256_set1_ps(3.0e38f);
  for (int64_t b = 0; b < cols / kActBlock; ++b) {
    const float* xb = x + b * kActBlock;
    __m256 v[4], amax = _mm256_setzero_ps(), bad = _mm256_setzero_ps();
    for (int k = 0; k < 4; ++k) {
      v[k] = _mm256_loadu_ps(xb + 8 * k);
      const __m256 a = _mm256_andnot_ps(sign, v[k]);
      amax = _mm256_max_ps(amax, a);
      bad = _mm256_or_ps(bad, _mm256_cmp_ps(a, big, _CMP_NLE_UQ));  // NaN, Inf (and > 3e38)
    }
    ActBlock& o = out[b];
    if (_mm256_movemask_ps(bad)) {
      o = ActBlock{};
      o.d = o.dsum = NAN;
      continue;
    }
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const float am = _mm_cvtss_f32(m);
    o.d = am >= kTinyAct ? am / 127.0f : 0.0f;
    const __m256 id = _mm256_set1_ps(o.d != 0 ? 1.0f / o.d : 0.0f);
    __m256i q[4];
    for (int k = 0; k < 4; ++k) q[k] = _mm256_cvtps_epi32(_mm256_mul_ps(v[k], id));  // nearest-even
    // int32 -> int8 in element order (packs work within 128-bit lanes; the permute restores it).
    const __m256i q01 = _mm256_packs_epi32(q[0], q[1]), q23 = _mm256_packs_epi32(q[2], q[3]);
    const __m256i q8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(q01, q23),
                                                   _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o.q), q8);
    const int s0 = hsum_i32(_mm256_add_epi32(q[0], q[1]));
    const int s1 = hsum_i32(_mm256_add_epi32(q[2], q[3]));
    o.sum[0] = static_cast<int16_t>(s0);
    o.sum[1] = static_cast<int16_t>(s1);
    o.dsum = o.d * static_cast<float>(s0 + s1);
  }
}

// Per type: how many elements a weight block holds, its bytes, and `step`, which adds one
// weight block's products with its activation blocks to acc and, for the part that comes from
// the block's offset (-8 d, the min, ...), to off; the eight lanes of acc + off sum to the
// block's dot product.
struct Q8_0 {
  static constexpr int kElems = 32, kBytes = 34;
  static void step(const uint8_t* w, const ActBlock* x, __m256& acc, __m256& off) {
    (void)off;
    const __m256i wq = load32(w + 2), xq = load32(x->q);
    const __m256i p = dot4_u8(_mm256_sign_epi8(wq, wq), _mm256_sign_epi8(xq, wq));  // |w| sign(w) x
    const __m256 scale = _mm256_mul_ps(f16x8(w), _mm256_set1_ps(x->d));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), scale, acc);
  }
};

struct Q4_0 {
  static constexpr int kElems = 32, kBytes = 18;
  static void step(const uint8_t* w, const ActBlock* x, __m256& acc, __m256& off) {
    const __m256 d = f16x8(w);
    const __m256i p = dot4_u8(nibbles(w + 2), load32(x->q));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(d, _mm256_set1_ps(x->d)), acc);
    off = _mm256_fnmadd_ps(d, _mm256_set1_ps(x->dsum), off);  // -8 d dsum over the 8 lanes
  }
};

struct Q4_1 {
  static constexpr int kElems = 32, kBytes = 20;
  static void step(const uint8_t* w, const ActBlock* x, __m256& acc, __m256& off) {
    int32_t dm_bits;  // fp16 d | fp16 m
    std::memcpy(&dm_bits, w, 4);
    const __m256 dm = _mm256_cvtph_ps(_mm_set1_epi32(dm_bits));  // d m d m ...
    const __m256i p = dot4_u8(nibbles(w + 4), load32(x->q));
    const __m256 scale = _mm256_mul_ps(_mm256_moveldup_ps(dm), _mm256_set1_ps(x->d));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), scale, acc);
    // m dsum over the 8 lanes; dsum / 8 is exact.
    off = _mm256_fmadd_ps(_mm256_movehdup_ps(dm), _mm256_set1_ps(x->dsum * 0.125f), off);
  }
};

// The eight 6-bit (scale, min) pairs of a Q4_K/Q5_K super-block (ggml_types.cpp, scale_min_k4).
void scales_mins(const uint8_t* q, int* sc, int* mn) {
  for (int j = 0; j < 4; ++j) {
    sc[j] = q[j] & 63;
    mn[j] = q[j + 4] & 63;
    sc[j + 4] = (q[j + 8] & 0x0F) | ((q[j] >> 6) << 4);
    mn[j + 4] = (q[j + 8] >> 4) | ((q[j + 4] >> 6) << 4);
  }
}

// Sub-blocks 2c and 2c+1 of a Q4_K/Q5_K super-block: their unsigned codes lo, hi against the
// activation blocks x[0], x[1], each pair of products times its 6-bit scale sc[0], sc[1], into acc
// with d * x.d; their mins mn[0], mn[1] times x.dsum into mins.
void sub_block_pair(__m256i lo, __m256i hi, const ActBlock* x, const int* sc, const int* mn,
                    float d, __m256& acc, float& mins) {
  const __m256i pa = dot_u8(lo, load32(x[0].q), _mm256_set1_epi16(static_cast<int16_t>(sc[0])));
  const __m256i pb = dot_u8(hi, load32(x[1].q), _mm256_set1_epi16(static_cast<int16_t>(sc[1])));
  acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(pa), _mm256_set1_ps(d * x[0].d), acc);
  acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(pb), _mm256_set1_ps(d * x[1].d), acc);
  mins += static_cast<float>(mn[0]) * x[0].dsum + static_cast<float>(mn[1]) * x[1].dsum;
}

struct Q4_K {
  static constexpr int kElems = 256, kBytes = 144;
  static void step(const uint8_t* w, const ActBlock* x, __m256& acc, __m256& off) {
    const float d = f16(w), dmin = f16(w + 2);
    int sc[8], mn[8];
    scales_mins(w + 4, sc, mn);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    float mins = 0;
    for (int c = 0; c < 4; ++c) {
      const __m256i q = load32(w + 16 + 32 * c);
      const __m256i lo = _mm256_and_si256(q, m4),
                    hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
      sub_block_pair(lo, hi, x + 2 * c, sc + 2 * c, mn + 2 * c, d, acc, mins);
    }
    off = _mm256_sub_ps(off, lane0(dmin * mins));
  }
};

struct Q5_K {
  static constexpr int kElems = 256, kBytes = 176;
  static void step(const uint8_t* w, const ActBlock* x, __m256& acc, __m256& off) {
    const float d = f16(w), dmin = f16(w + 2);
    int sc[8], mn[8];
    scales_mins(w + 4, sc, mn);
    const __m256i m4 = _mm256_set1_epi8(0x0F), bit5 = _mm256_set1_epi8(0x10);
    const __m256i qh = load32(w + 16);
    // The fifth bit of sub-block j's codes: bit j of qh[i], moved to 0x10.
    const auto high = [&](int j) {
      const __m256i m = _mm256_set1_epi8(static_cast<char>(1 << j));
      return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, m), m), bit5);
    };
    float mins = 0;
    for (int c = 0; c < 4; ++c) {
      const __m256i q = load32(w + 48 + 32 * c);
      const __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), high(2 * c));
      const __m256i hi =
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), high(2 * c + 1));
      sub_block_pair(lo, hi, x + 2 * c, sc + 2 * c, mn + 2 * c, d, acc, mins);
    }
    off = _mm256_sub_ps(off, lane0(dmin * mins));
  }
};

struct Q6_K {
  static constexpr int kElems = 256, kBytes = 210;
  static void step(const uint8_t* w, const ActBlock* x, __m256& acc, __m256& off) {
    const float d = f16(w + 208);
    float offset = 0;
    const auto* sc = reinterpret_cast<const int8_t*>(w + 192);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int h = 0; h < 2; ++h) {
      const __m256i ql0 = load32(w + 64 * h), ql1 = load32(w + 64 * h + 32);
      const __m256i qh = load32(w + 128 + 32 * h);
      const __m256i q[4] = {
          _mm256_or_si256(_mm256_and_si256(ql0, m4),
                          _mm256_slli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(0x03)), 4)),
          _mm256_or_si256(_mm256_and_si256(ql1, m4),
                          _mm256_slli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(0x0C)), 2)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                          _mm256_and_si256(qh, _mm256_set1_epi8(0x30))),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                          _mm256_srli_epi16(
                              _mm256_and_si256(qh, _mm256_set1_epi8(static_cast<char>(0xC0))), 2)),
      };
      for (int k = 0; k < 4; ++k) {
        const ActBlock& a = x[4 * h + k];
        const int s0 = sc[8 * h + 2 * k], s1 = sc[8 * h + 2 * k + 1];
        // Lanes 0-7 of the int16 pair sums come from elements 0-15, lanes 8-15 from 16-31.
        const __m256i scale = _mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>(s1)),
                                               _mm_set1_epi16(static_cast<int16_t>(s0)));
        const __m256i p = dot_u8(q[k], load32(a.q), scale);
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(d * a.d), acc);
        offset -= 32.0f * d * a.d * static_cast<float>(s0 * a.sum[0] + s1 * a.sum[1]);
      }
    }
    off = _mm256_add_ps(off, lane0(offset));
  }
};

// Software prefetch, kPrefetchBytes ahead of the rows being read. A decode step streams every
// weight once (the default model: 96 MB, more than the L2 holds), and the hardware's streamer
// prefetchers stop at each 4 KB page, so a single core waited on memory for most of each GEMV:
// with this, SmolLM2's decode went from 46 to 78 tokens/s on one Xeon core (1024 bytes ahead:
// 61, 2048: 73, 4096: 78, 8192: 78, 16384: 79; two threads gained most with 8192). Rows are
// contiguous, so the line kPrefetchBytes past a group's bytes is read a little later by the same
// sweep; past the matrix's end the hint is only wasted (a prefetch never faults).
constexpr int64_t kPrefetchBytes = 8192;
// Prefetches the Bytes bytes (and the line after) that lie kPrefetchBytes past p.
template <int Bytes>
inline void prefetch_ahead(const uint8_t* p) {
  const uintptr_t ahead = reinterpret_cast<uintptr_t>(p) + kPrefetchBytes;  // may pass the end
  for (int o = 0; o <= Bytes; o += 64)
    _mm_prefetch(reinterpret_cast<const char*>(ahead + o), _MM_HINT_T0);
}

// Rows in groups of four share each activation block's loads and keep four independent
// accumulation chains in flight; the rest one by one.
template <class T>
void gemv_q8(const uint8_t* w, size_t row_bytes, const ActBlock* x, int64_t cols, float* y,
             int64_t rows) {
  const int64_t nb = cols / T::kElems;
  constexpr int kPer = T::kElems / kActBlock;
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    __m256 acc[4], off[4];
    for (int k = 0; k < 4; ++k) acc[k] = off[k] = _mm256_setzero_ps();
    const uint8_t* row = w + r * row_bytes;
    for (int64_t b = 0; b < nb; ++b) {
      prefetch_ahead<4 * T::kBytes>(row + b * 4 * T::kBytes);
      for (int k = 0; k < 4; ++k)
        T::step(row + k * row_bytes + b * T::kBytes, x + b * kPer, acc[k], off[k]);
    }
    for (int k = 0; k < 4; ++k) y[r + k] = hsum(_mm256_add_ps(acc[k], off[k]));
  }
  for (; r < rows; ++r) {
    __m256 acc = _mm256_setzero_ps(), off = _mm256_setzero_ps();
    const uint8_t* row = w + r * row_bytes;
    for (int64_t b = 0; b < nb; ++b) {
      prefetch_ahead<T::kBytes>(row + b * T::kBytes);
      T::step(row + b * T::kBytes, x + b * kPer, acc, off);
    }
    y[r] = hsum(_mm256_add_ps(acc, off));
  }
}

// Eight bf16 values -> fp32 (a bf16 is the top half of an fp32).
__m256 bf16x8(const uint8_t* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

void gemv_bf16(const uint8_t* w, size_t row_bytes, const float* x, int64_t cols, float* y,
               int64_t rows) {
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* row = w + r * row_bytes;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= cols; i += 16) {
      a0 = _mm256_fmadd_ps(bf16x8(row + 2 * i), _mm256_loadu_ps(x + i), a0);
      a1 = _mm256_fmadd_ps(bf16x8(row + 2 * i + 16), _mm256_loadu_ps(x + i + 8), a1);
    }
    float tail = 0;
    for (; i < cols; ++i) {
      uint16_t h;
      std::memcpy(&h, row + 2 * i, 2);
      tail += bf16_to_fp32(h) * x[i];
    }
    y[r] = hsum(_mm256_add_ps(a0, a1)) + tail;
  }
}

// 32 codes (bytes) -> fp32 code * d + m, stored to out[0..32).
void store_affine(__m256i codes, __m256 d, __m256 m, float* out) {
  const __m128i lo = _mm256_castsi256_si128(codes), hi = _mm256_extracti128_si256(codes, 1);
  const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
  for (int k = 0; k < 4; ++k) {
    const __m256 q = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(parts[k]));
    _mm256_storeu_ps(out + 8 * k, _mm256_add_ps(_mm256_mul_ps(q, d), m));
  }
}

// The same for signed codes times d (Q8_0).
void store_scaled_s8(__m256i codes, __m256 d, float* out) {
  const __m128i lo = _mm256_castsi256_si128(codes), hi = _mm256_extracti128_si256(codes, 1);
  const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
  for (int k = 0; k < 4; ++k)
    _mm256_storeu_ps(out + 8 * k,
                     _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(parts[k])), d));
}

// Per type, one block to fp32, with the reference's operations.
void deq_q8_0(const uint8_t* w, float* y) {
  store_scaled_s8(load32(w + 2), _mm256_set1_ps(f16(w)), y);
}
void deq_q4_0(const uint8_t* w, float* y) {
  // The reference computes (q - 8) * d: q - 8 is exact, so subtract in the integers.
  const __m256i q = _mm256_sub_epi8(nibbles(w + 2), _mm256_set1_epi8(8));
  store_scaled_s8(q, _mm256_set1_ps(f16(w)), y);
}
void deq_q4_1(const uint8_t* w, float* y) {
  store_affine(nibbles(w + 4), _mm256_set1_ps(f16(w)), _mm256_set1_ps(f16(w + 2)), y);
}
void deq_q4_k(const uint8_t* w, float* y) {
  const float d = f16(w), dmin = f16(w + 2);
  int sc[8], mn[8];
  scales_mins(w + 4, sc, mn);
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  for (int c = 0; c < 4; ++c, y += 64) {
    const __m256i q = load32(w + 16 + 32 * c);
    // Reference: (d * sc) * q - (dmin * m), each product rounded to fp32.
    store_affine(_mm256_and_si256(q, m4), _mm256_set1_ps(d * static_cast<float>(sc[2 * c])),
                 _mm256_set1_ps(-(dmin * static_cast<float>(mn[2 * c]))), y);
    store_affine(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4),
                 _mm256_set1_ps(d * static_cast<float>(sc[2 * c + 1])),
                 _mm256_set1_ps(-(dmin * static_cast<float>(mn[2 * c + 1]))), y + 32);
  }
}
void deq_q5_k(const uint8_t* w, float* y) {
  const float d = f16(w), dmin = f16(w + 2);
  int sc[8], mn[8];
  scales_mins(w + 4, sc, mn);
  const __m256i m4 = _mm256_set1_epi8(0x0F), bit5 = _mm256_set1_epi8(0x10);
  const __m256i qh = load32(w + 16);
  const auto high = [&](int j) {
    const __m256i m = _mm256_set1_epi8(static_cast<char>(1 << j));
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, m), m), bit5);
  };
  for (int c = 0; c < 4; ++c, y += 64) {
    const __m256i q = load32(w + 48 + 32 * c);
    store_affine(_mm256_or_si256(_mm256_and_si256(q, m4), high(2 * c)),
                 _mm256_set1_ps(d * static_cast<float>(sc[2 * c])),
                 _mm256_set1_ps(-(dmin * static_cast<float>(mn[2 * c]))), y);
    store_affine(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), high(2 * c + 1)),
                 _mm256_set1_ps(d * static_cast<float>(sc[2 * c + 1])),
                 _mm256_set1_ps(-(dmin * static_cast<float>(mn[2 * c + 1]))), y + 32);
  }
}
void deq_q6_k(const uint8_t* w, float* y) {
  const float d = f16(w + 208);
  const auto* sc = reinterpret_cast<const int8_t*>(w + 192);
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  for (int h = 0; h < 2; ++h, y += 128) {
    const __m256i ql0 = load32(w + 64 * h), ql1 = load32(w + 64 * h + 32);
    const __m256i qh = load32(w + 128 + 32 * h);
    const __m256i q[4] = {
        _mm256_or_si256(_mm256_and_si256(ql0, m4),
                        _mm256_slli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(0x03)), 4)),
        _mm256_or_si256(_mm256_and_si256(ql1, m4),
                        _mm256_slli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(0x0C)), 2)),
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                        _mm256_and_si256(qh, _mm256_set1_epi8(0x30))),
        _mm256_or_si256(
            _mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
            _mm256_srli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(static_cast<char>(0xC0))), 2)),
    };
    for (int k = 0; k < 4; ++k) {
      // Reference: (d * sc) * (q - 32), q - 32 exact; two scales per 32 elements.
      const __m256i s = _mm256_sub_epi8(q[k], _mm256_set1_epi8(32));
      float tmp[32];
      store_scaled_s8(s, _mm256_set1_ps(1.0f), tmp);
      const __m256 d0 = _mm256_set1_ps(d * static_cast<float>(sc[8 * h + 2 * k]));
      const __m256 d1 = _mm256_set1_ps(d * static_cast<float>(sc[8 * h + 2 * k + 1]));
      for (int i = 0; i < 4; ++i)
        _mm256_storeu_ps(y + 32 * k + 8 * i,
                         _mm256_mul_ps(_mm256_loadu_ps(tmp + 8 * i), i < 2 ? d0 : d1));
    }
  }
}

template <class T, void (*Block)(const uint8_t*, float*)>
void dequant(const uint8_t* w, size_t row_bytes, int64_t cols, float* out, int64_t rows) {
  const int64_t nb = cols / T::kElems;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t b = 0; b < nb; ++b)
      Block(w + r * row_bytes + b * T::kBytes, out + r * cols + b * T::kElems);
}

void dequant_bf16(const uint8_t* w, size_t row_bytes, int64_t cols, float* out, int64_t rows) {
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* row = w + r * row_bytes;
    float* o = out + r * cols;
    int64_t i = 0;
    for (; i + 8 <= cols; i += 8) _mm256_storeu_ps(o + i, bf16x8(row + 2 * i));
    for (; i < cols; ++i) {
      uint16_t h;
      std::memcpy(&h, row + 2 * i, 2);
      o[i] = bf16_to_fp32(h);
    }
  }
}

const KernelSet kSet = {
    STARATTN_QUANT_SET_NAME,
    quantize_act,
    {gemv_q8<Q8_0>, nullptr, dequant<Q8_0, deq_q8_0>},
    {gemv_q8<Q4_0>, nullptr, dequant<Q4_0, deq_q4_0>},
    {gemv_q8<Q4_1>, nullptr, dequant<Q4_1, deq_q4_1>},
    {gemv_q8<Q4_K>, nullptr, dequant<Q4_K, deq_q4_k>},
    {gemv_q8<Q5_K>, nullptr, dequant<Q5_K, deq_q5_k>},
    {gemv_q8<Q6_K>, nullptr, dequant<Q6_K, deq_q6_k>},
    {nullptr, gemv_bf16, dequant_bf16},
};

}  // namespace
}  // namespace starattn::cpu::quant
