// The element formats of a KV cache and the FP8 E4M3 codec with the GPU's rounding. Where the
// rows of a cache lie and what a row holds is stated in engine/kv_cache.h; this header is the
// format of one row, shared by the engine, the backends and their kernels (plain C++17, so .cu
// files include it too).
//
// FP8 E4M3 ("e4m3fn"): 1 sign bit, 4 exponent bits (bias 7), 3 mantissa bits, no infinities,
// 0x7F / 0xFF are NaN, the largest finite value is 448, subnormals are m * 2^-9. Conversion from
// fp32 rounds to nearest even and saturates to +-448 (infinities too), as CUDA's
// cvt.rn.satfinite.e4m3x2.f32 and PyTorch's float8_e4m3fn do; NaN becomes 0x7F.
//
// A KV row in fp8 has one fp32 scale per kv head (per (token, head) granularity): the head's
// values x are stored as e4m3(x / s) with s = amax / 448 (amax = max |x| over the head's
// head_dim values, NaN ignored; s = 0 stores zeros) and read back as e4m3_value * s. Per
// (token, head) because a row is then quantised once, as it is written, from its own values
// alone: no later token changes an earlier row's scale, the ring's shards and the broadcast anchor
// move rows as they are, and a token's bytes do not depend on how the context was split over
// ranks or chunks. Per-token scales also follow outlier tokens (attention sinks, the first token)
// without costing the other tokens precision, which one scale per tensor or per block would.
//
// Error of one value (E4M3 keeps 3 mantissa bits, so a value is within half a step, 2^-4 of the
// bottom of its binade, of the original): |x - x'| <= 2^-4 |x| + 2^-10 s, plus fp32 rounding
// (2^-23 relative). The second term is the subnormal range below 2^-6 s.
#pragma once

#include <cstddef>
#include <cstdint>

#include "util/enum_names.h"

namespace starattn {

// What a KV cache stores. Act is the library's default; the CLI asks for Bf16 (its default), Fp8,
// Int8 or F32. A backend resolves Bf16 and F32 to Act when they are its activation type
// (Backend::kv_row_format), so its kernels see one name per layout: the CUDA backend (bf16
// activations) reads Act and Fp8 rows, the CPU backend (fp32) Act, Bf16, Fp8 and Int8 rows, and
// F32 has no rows of its own anywhere.
enum class KvType : int32_t {
  Act = 0,   // the backend's activation type: fp32 on the CPU (its exact reference), bf16 on CUDA
  Fp8 = 1,   // FP8 E4M3 with an fp32 scale per (token, kv head)
  Bf16 = 2,  // bf16 on every backend: fp32 k and v rounded to nearest even as they are written
  F32 = 3,   // fp32: the CPU's Act; a backend with bf16 activations has none
  Int8 = 4,  // symmetric 8-bit integers with an fp32 scale per (token, kv head); CPU only
};
inline constexpr KvType kLastKvType = KvType::Int8;

// Fp8 and Int8 rows: one byte a value, then a scale per kv head.
constexpr bool kv_type_has_scales(KvType t) {
  return t == KvType::Fp8 || t == KvType::Int8;
}

// The layout of one row: the K (or V) of one token for every kv head. (constexpr members: device
// code calls them too.)
//   Act: [n_kv_heads * head_dim] elements of act_bytes each.
//   Bf16: [n_kv_heads * head_dim] bf16 values.
//   Fp8: [n_kv_heads * head_dim] E4M3 bytes | [n_kv_heads] fp32 scales | zero padding to a
//        multiple of 16 bytes, so rows stay 16-byte aligned for the kernels' vector loads.
//   Int8: the same, with int8 codes: value = code * scale, codes -127..127 (-128: NaN).
struct KvRowFormat {
  KvType type = KvType::Act;
  int n_kv_heads = 0;
  int head_dim = 0;
  int act_bytes = 4;  // bytes of one Act element (4 on the CPU, 2 on the GPU)

  constexpr int64_t kv_dim() const { return int64_t{n_kv_heads} * head_dim; }
  // Bytes of one row.
  constexpr size_t row_bytes() const {
    const size_t data = static_cast<size_t>(kv_dim());
    if (type == KvType::Act) return data * static_cast<size_t>(act_bytes);
    if (type == KvType::Bf16) return data * 2;
    if (type == KvType::F32) return data * 4;
    return data + (static_cast<size_t>(n_kv_heads) * 4 + 15) / 16 * 16;
  }
  // Fp8, Int8: bytes from a row's start to its scales (the scale of kv head h at + 4 h); 0
  // otherwise.
  constexpr int64_t scale_offset() const { return kv_type_has_scales(type) ? kv_dim() : 0; }
  // The row stride in elements of the type, as AttnParams::kv_stride counts it.
  constexpr int64_t stride_elements() const {
    return kv_type_has_scales(type) ? static_cast<int64_t>(row_bytes()) : kv_dim();
  }
};

inline constexpr float kFp8Max = 448.0f;

// fp32 -> E4M3, round to nearest even, saturating; NaN -> 0x7F.
uint8_t fp8_e4m3_from_float(float x);
// E4M3 -> fp32, exact (NaN for 0x7F and 0xFF).
float fp8_e4m3_to_float(uint8_t b);

// The scale of one head's values: amax / 448, NaN ignored; 0 when every value is 0.
float fp8_head_scale(const float* x, int n);

// Quantises n rows x[n, kv_dim] (fp32, row stride kv_dim) into fp8 rows of format f at dst (row
// stride f.row_bytes()), padding included.
void quantize_kv_rows_fp8(const KvRowFormat& f, const float* x, int64_t n, void* dst);
// Dequantises kv head `head` of n fp8 rows into out[n, head_dim] fp32: row j at src + j * stride
// bytes, its data at + head * head_dim, its scales at + scale_offset.
void dequantize_fp8_head(const void* src, int64_t stride, int64_t scale_offset, int head,
                         int head_dim, int64_t n, float* out);

// Int8 rows: per (token, kv head) s = amax / 127 (NaN ignored; 0 when every value is 0) and code =
// rint(x / s), ties to even; a NaN value (or a head holding an infinity) is stored as -128, which
// reads back as NaN. The values read back are those of round_kv_rows_int8_grid with a group of
// head_dim (a zero's sign aside).
void quantize_kv_rows_int8(const KvRowFormat& f, const float* x, int64_t n, void* dst);
// dequantize_fp8_head for int8 rows.
void dequantize_int8_head(const void* src, int64_t stride, int64_t scale_offset, int head,
                          int head_dim, int64_t n, float* out);

// The CLI's names (--kv-type): what a run asks for. Act, the library's default, has no flag of
// its own: on the CPU it is what "f32" resolves to, on a GPU what "bf16" resolves to.
inline constexpr EnumName<KvType> kKvTypeNames[] = {
    {KvType::Bf16, "bf16"}, {KvType::Fp8, "fp8"}, {KvType::F32, "f32"}, {KvType::Int8, "int8"}};
// "bf16", "fp8", "f32", "int8", or "act" for KvType::Act.
const char* kv_type_name(KvType t);
// One of kKvTypeNames; throws Error naming the accepted values otherwise.
KvType parse_kv_type(const char* s);

// Rounds n rows x[n, kv_dim] (fp32) to bf16 rows at dst (ties to even, as the GPU rounds).
void round_kv_rows_bf16(const float* x, int64_t n, int64_t kv_dim, void* dst);

// ---- An accuracy experiment, not a KV type: an 8-bit integer grid ----
// STARATTN_KV_EXPERIMENT=int8 (or int8:G) makes both backends round every bf16 / fp32 KV row, as
// it is written, to the values a symmetric int8 cache would hold: per group of G channels of a kv
// head (G = head_dim for plain int8), s = amax / 127 and x -> rint(x / s) * s. The rows keep their
// type and size, so it measures an int8 cache's accuracy, not its memory. docs/ACCURACY.md has what
// it found. Rows of an fp8 cache are left as they are.
inline constexpr float kInt8Max = 127.0f;
// The group size the environment asks for with this head_dim: 0 when unset; throws Error on a
// value that is not "int8" or "int8:G" with G a multiple of 8 that divides head_dim.
int kv_int8_grid_group(int head_dim);
// The same parse on a given text (nullptr or "" = unset), for tests.
int parse_kv_int8_grid(const char* spec, int head_dim);
// Rounds n rows x[n, kv_dim] (fp32, in place) to the int8 grid of groups of `group` channels:
// IEEE division and product, rint to nearest even; the GPU kernel gives the same values.
void round_kv_rows_int8_grid(float* x, int64_t n, int n_kv_heads, int head_dim, int group);

}  // namespace starattn
