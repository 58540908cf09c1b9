#include "attention/kv_format.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "model/ggml_types.h"
#include "starattn/error.h"

namespace starattn {
namespace {

std::array<float, 256> make_fp8_table() {
  std::array<float, 256> t{};
  for (int b = 0; b < 256; ++b) {
    const int e = (b >> 3) & 15, m = b & 7;
    float v = e == 0 ? std::ldexp(static_cast<float>(m), -9)
                     : std::ldexp(1.0f + static_cast<float>(m) / 8.0f, e - 7);
    if (e == 15 && m == 7) v = std::nanf("");
    t[b] = (b & 0x80) ? -v : v;
  }
  return t;
}

const std::array<float, 256>& fp8_table() {
  static const std::array<float, 256> t = make_fp8_table();
  return t;
}

// The rows of both 8-bit formats: each kv head's codes, written by encode(values, head_dim, codes)
// which returns the head's scale, then the scales and zero padding.
template <typename Encode>
void quantize_rows_with_scales(const KvRowFormat& f, const float* x, int64_t n, void* dst,
                               Encode encode) {
  const int d = f.head_dim;
  const size_t row = f.row_bytes();
  const int64_t kvd = f.kv_dim();
  const size_t scales = static_cast<size_t>(f.n_kv_heads) * 4;
#pragma omp parallel for schedule(static) if (n * kvd > (int64_t{1} << 16))
  for (int64_t j = 0; j < n; ++j) {
    auto* out = static_cast<uint8_t*>(dst) + j * row;
    const float* in = x + j * kvd;
    for (int h = 0; h < f.n_kv_heads; ++h) {
      const float s =
          encode(in + static_cast<int64_t>(h) * d, d, out + static_cast<int64_t>(h) * d);
      std::memcpy(out + kvd + 4 * h, &s, 4);
    }
    std::memset(out + kvd + scales, 0, row - kvd - scales);
  }
}

// One kv head of n rows of either 8-bit format as fp32: decode(code, the row's scale).
template <typename Decode>
void dequantize_head_with_scales(const void* src, int64_t stride, int64_t scale_offset, int head,
                                 int head_dim, int64_t n, float* out, Decode decode) {
  for (int64_t j = 0; j < n; ++j) {
    const auto* row = static_cast<const uint8_t*>(src) + j * stride;
    float s;
    std::memcpy(&s, row + scale_offset + 4 * head, 4);
    const uint8_t* q = row + static_cast<int64_t>(head) * head_dim;
    float* o = out + j * head_dim;
    for (int e = 0; e < head_dim; ++e) o[e] = decode(q[e], s);
  }
}

}  // namespace

uint8_t fp8_e4m3_from_float(float x) {
  const uint32_t u = std::bit_cast<uint32_t>(x);
  const uint8_t sign = static_cast<uint8_t>((u >> 24) & 0x80);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return 0x7F;  // NaN, canonical as CUDA's conversion makes it
  const float ax = std::bit_cast<float>(a);
  if (ax >= kFp8Max) return sign | 0x7E;  // saturate (also infinities)
  if (ax < 0.015625f) {
    // Subnormal range (below 2^-6): a multiple of 2^-9. ax * 512 is exact, nearbyint rounds to
    // nearest even; 8 * 2^-9 = 2^-6 is the smallest normal, which the encoding continues into.
    return sign | static_cast<uint8_t>(std::nearbyint(ax * 512.0f));
  }
  // Normal: keep 3 of fp32's 23 mantissa bits, rounding to nearest even on the integer (a carry
  // moves into the exponent). Then rebias the exponent from 127 to 7.
  const uint32_t r = (a + 0x7ffffu + ((a >> 20) & 1u)) >> 20;
  return sign | static_cast<uint8_t>(r - (120u << 3));
}

float fp8_e4m3_to_float(uint8_t b) {
  return fp8_table()[b];
}

float fp8_head_scale(const float* x, int n) {
  float amax = 0.0f;
  for (int i = 0; i < n; ++i) amax = std::fmax(amax, std::fabs(x[i]));
  return amax / kFp8Max;
}

void quantize_kv_rows_fp8(const KvRowFormat& f, const float* x, int64_t n, void* dst) {
  quantize_rows_with_scales(f, x, n, dst, [](const float* xh, int d, uint8_t* q) {
    const float s = fp8_head_scale(xh, d);
    for (int e = 0; e < d; ++e) q[e] = s > 0.0f ? fp8_e4m3_from_float(xh[e] / s) : 0;
    return s;
  });
}

void dequantize_fp8_head(const void* src, int64_t stride, int64_t scale_offset, int head,
                         int head_dim, int64_t n, float* out) {
  const std::array<float, 256>& t = fp8_table();
  dequantize_head_with_scales(src, stride, scale_offset, head, head_dim, n, out,
                              [&t](uint8_t b, float s) { return t[b] * s; });
}

void quantize_kv_rows_int8(const KvRowFormat& f, const float* x, int64_t n, void* dst) {
  quantize_rows_with_scales(f, x, n, dst, [](const float* xh, int d, uint8_t* codes) {
    float amax = 0.0f;
    for (int e = 0; e < d; ++e) amax = std::fmax(amax, std::fabs(xh[e]));
    const float s = amax / kInt8Max;
    auto* q = reinterpret_cast<int8_t*>(codes);
    for (int e = 0; e < d; ++e) {
      const float c = s > 0.0f ? std::nearbyint(xh[e] / s) : 0.0f;
      // A NaN value, or an infinite one (its head's scale is then infinite), reads back as NaN.
      q[e] = std::isnan(xh[e]) || std::isnan(c) || std::isinf(s)
                 ? int8_t{-128}
                 : static_cast<int8_t>(std::clamp(c, -kInt8Max, kInt8Max));
    }
    return s;
  });
}

void dequantize_int8_head(const void* src, int64_t stride, int64_t scale_offset, int head,
                          int head_dim, int64_t n, float* out) {
  dequantize_head_with_scales(src, stride, scale_offset, head, head_dim, n, out,
                              [](uint8_t b, float s) {
                                const auto c = static_cast<int8_t>(b);
                                return c == -128 ? std::nanf("") : static_cast<float>(c) * s;
                              });
}

void round_kv_rows_bf16(const float* x, int64_t n, int64_t kv_dim, void* dst) {
  auto* out = static_cast<uint16_t*>(dst);
#pragma omp parallel for schedule(static) if (n * kv_dim > (int64_t{1} << 16))
  for (int64_t j = 0; j < n; ++j)
    for (int64_t e = 0; e < kv_dim; ++e) out[j * kv_dim + e] = fp32_to_bf16(x[j * kv_dim + e]);
}

int parse_kv_int8_grid(const char* spec, int head_dim) {
  if (spec == nullptr || *spec == '\0') return 0;
  const std::string v(spec);
  if (v == "int8") return head_dim;
  const std::string digits = v.rfind("int8:", 0) == 0 ? v.substr(5) : std::string();
  const bool number = !digits.empty() && digits.size() <= 4 &&
                      digits.find_first_not_of("0123456789") == std::string::npos;
  const int g = number ? std::atoi(digits.c_str()) : 0;
  SA_CHECK(g >= 8 && g % 8 == 0 && head_dim % g == 0, "STARATTN_KV_EXPERIMENT='", v,
           "': expected int8 or int8:G, with G a multiple of 8 that divides head_dim ", head_dim);
  return g;
}

int kv_int8_grid_group(int head_dim) {
  return parse_kv_int8_grid(std::getenv("STARATTN_KV_EXPERIMENT"), head_dim);
}

void round_kv_rows_int8_grid(float* x, int64_t n, int n_kv_heads, int head_dim, int group) {
  const int64_t kvd = int64_t{n_kv_heads} * head_dim;
#pragma omp parallel for schedule(static) if (n * kvd > (int64_t{1} << 16))
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t g0 = 0; g0 < kvd; g0 += group) {
      float* v = x + j * kvd + g0;
      float amax = 0.0f;
      for (int e = 0; e < group; ++e) amax = std::fmax(amax, std::fabs(v[e]));
      const float s = amax / kInt8Max;
      for (int e = 0; e < group; ++e) v[e] = s > 0.0f ? std::nearbyint(v[e] / s) * s : 0.0f;
    }
  }
}

const char* kv_type_name(KvType t) {
  return t == KvType::Act ? "act" : enum_name(kKvTypeNames, t);
}

KvType parse_kv_type(const char* s) {
  return parse_enum(kKvTypeNames, s ? s : "", "KV cache type");
}

}  // namespace starattn
