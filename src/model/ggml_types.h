// ggml tensor element types (the numbering is the file format's) and their dequantisation to fp32.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace starattn {

// clang-format off
enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15, BF16 = 30,
};
// clang-format on

const char* ggml_type_name(GgmlType t);
bool ggml_type_supported(GgmlType t);  // true for the types dequantize() handles
int64_t ggml_block_elems(GgmlType t);  // elements per block (1 for float types)
size_t ggml_block_bytes(GgmlType t);   // bytes per block
// Bytes of n elements; throws Error if n is not a whole number of blocks or the type is unknown.
size_t ggml_row_bytes(GgmlType t, int64_t n);
// Dequantises n elements (a whole number of blocks) from src into dst; throws on unsupported t.
void dequantize(GgmlType t, const void* src, float* dst, int64_t n);

// True when id is one of the GgmlType values above (block size and bytes known).
bool ggml_type_known(uint32_t id);
// ggml's name for any type id it defines, including ones starattn does not know ("IQ4_NL");
// nullptr when ggml defines no such id. For error messages.
const char* ggml_type_id_name(uint32_t id);
// IEEE half and bfloat16 bit patterns to fp32, exactly (NaNs stay NaN, subnormals kept).
float fp16_to_fp32(uint16_t h);
float bf16_to_fp32(uint16_t h);
// fp32 to the nearest bfloat16 (ties to even); NaNs stay NaN (made quiet). Inline: conversions of
// whole matrices call it per element.
inline uint16_t fp32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

}  // namespace starattn
