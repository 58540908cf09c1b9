// ggml type table and dequantisation to fp32.
//
// The block layouts are ggml's (ggml-common.h); each kernel below states its layout. The arithmetic
// follows ggml's reference dequantisers operation by operation (same products, same order, fp32),
// so results are bit-identical to ggml's on a build without FMA contraction (the default x86-64
// target, and ISO mode where GCC keeps -ffp-contract=off). Blocks are read with memcpy because a
// file may put them at any byte offset.
#include "model/ggml_types.h"

#include <bit>
#include <cstring>
#include <iterator>

#include "starattn/error.h"

namespace starattn {

static_assert(std::endian::native == std::endian::little,
              "GGUF data is little-endian; the block readers assume a little-endian host");

namespace {

struct TypeInfo {
  GgmlType type;
  const char* name;
  int64_t block_elems;
  size_t block_bytes;
  bool supported;  // dequantize() handles it
};

constexpr int64_t kQK = 32;    // elements per block of the legacy quants
constexpr int64_t kQKK = 256;  // elements per super-block of the k-quants

// Q8_1 is 36 bytes in ggml (two fp16 fields); it only occurs as a matmul intermediate, never in
// files written by llama.cpp, and there is no reference dequantiser for it, so it is listed but
// unsupported. Q8_K (fp32 scale, 16 int16 block sums) is likewise an intermediate.
constexpr TypeInfo kTypes[] = {
    {GgmlType::F32, "F32", 1, 4, true},        {GgmlType::F16, "F16", 1, 2, true},
    {GgmlType::Q4_0, "Q4_0", kQK, 18, true},   {GgmlType::Q4_1, "Q4_1", kQK, 20, true},
    {GgmlType::Q5_0, "Q5_0", kQK, 22, true},   {GgmlType::Q5_1, "Q5_1", kQK, 24, true},
    {GgmlType::Q8_0, "Q8_0", kQK, 34, true},   {GgmlType::Q8_1, "Q8_1", kQK, 36, false},
    {GgmlType::Q2_K, "Q2_K", kQKK, 84, true},  {GgmlType::Q3_K, "Q3_K", kQKK, 110, true},
    {GgmlType::Q4_K, "Q4_K", kQKK, 144, true}, {GgmlType::Q5_K, "Q5_K", kQKK, 176, true},
    {GgmlType::Q6_K, "Q6_K", kQKK, 210, true}, {GgmlType::Q8_K, "Q8_K", kQKK, 292, false},
    {GgmlType::BF16, "BF16", 1, 2, true},
};

const TypeInfo* info(GgmlType t) {
  for (const TypeInfo& i : kTypes)
    if (i.type == t) return &i;
  return nullptr;
}

const TypeInfo& info_or_throw(GgmlType t) {
  const TypeInfo* i = info(t);
  if (!i) fail("unknown ggml type id ", static_cast<uint32_t>(t));
  return *i;
}

uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

float half(const uint8_t* p) {
  return fp16_to_fp32(load_u16(p));
}

// Q4_0, 18 bytes: fp16 d | qs[16]. Element j is the low nibble of qs[j], element j+16 the high
// nibble; value (q - 8) * d.
void block_q4_0(const uint8_t* b, float* y) {
  const float d = half(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>((qs[j] & 0x0F) - 8) * d;
    y[j + 16] = static_cast<float>((qs[j] >> 4) - 8) * d;
  }
}

// Q4_1, 20 bytes: fp16 d | fp16 m | qs[16]; nibbles as Q4_0, value q * d + m.
void block_q4_1(const uint8_t* b, float* y) {
  const float d = half(b);
  const float m = half(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>(qs[j] & 0x0F) * d + m;
    y[j + 16] = static_cast<float>(qs[j] >> 4) * d + m;
  }
}

// Q5_0, 22 bytes: fp16 d | qh (u32, bit i = 5th bit of element i) | qs[16] (low 4 bits as Q4_0);
// value (q - 16) * d.
void block_q5_0(const uint8_t* b, float* y) {
  const float d = half(b);
  const uint32_t qh = load_u32(b + 2);
  const uint8_t* qs = b + 6;
  for (int j = 0; j < 16; ++j) {
    const int h0 = static_cast<int>((qh >> j) & 1) << 4;
    const int h1 = static_cast<int>((qh >> (j + 16)) & 1) << 4;
    y[j] = static_cast<float>(((qs[j] & 0x0F) | h0) - 16) * d;
    y[j + 16] = static_cast<float>(((qs[j] >> 4) | h1) - 16) * d;
  }
}

// Q5_1, 24 bytes: fp16 d | fp16 m | qh (u32) | qs[16]; value q * d + m.
void block_q5_1(const uint8_t* b, float* y) {
  const float d = half(b);
  const float m = half(b + 2);
  const uint32_t qh = load_u32(b + 4);
  const uint8_t* qs = b + 8;
  for (int j = 0; j < 16; ++j) {
    const int h0 = static_cast<int>((qh >> j) & 1) << 4;
    const int h1 = static_cast<int>((qh >> (j + 16)) & 1) << 4;
    y[j] = static_cast<float>((qs[j] & 0x0F) | h0) * d + m;
    y[j + 16] = static_cast<float>((qs[j] >> 4) | h1) * d + m;
  }
}

// Q8_0, 34 bytes: fp16 d | int8 qs[32]; value q * d.
void block_q8_0(const uint8_t* b, float* y) {
  const float d = half(b);
  for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(static_cast<int8_t>(b[2 + j])) * d;
}

// Q2_K, 84 bytes: scales[16] (low nibble scale, high nibble min, one per 16 elements) | qs[64]
// (2-bit) | fp16 d | fp16 dmin. Each 128-element half uses 32 qs bytes four times at shifts
// 0,2,4,6; each pass covers two 16-element groups (qs[0..15] then qs[16..31]).
void block_q2_k(const uint8_t* b, float* y) {
  const uint8_t* scales = b;
  const uint8_t* q = b + 16;
  const float d = half(b + 80);
  const float dmin = half(b + 82);
  int is = 0;
  for (int n = 0; n < 2; ++n, q += 32) {
    for (int shift = 0; shift < 8; shift += 2) {
      for (int part = 0; part < 2; ++part) {
        const uint8_t sc = scales[is++];
        const float dl = d * static_cast<float>(sc & 0x0F);
        const float ml = dmin * static_cast<float>(sc >> 4);
        for (int l = 0; l < 16; ++l)
          *y++ = dl * static_cast<float>((q[l + 16 * part] >> shift) & 3) - ml;
      }
    }
  }
}

// Q3_K, 110 bytes: hmask[32] (3rd bit) | qs[64] (low 2 bits) | scales[12] (16 6-bit scales) |
// fp16 d. A 3-bit value is (low2) - (hmask bit set ? 0 : 4); scale is (6-bit) - 32.
void block_q3_k(const uint8_t* b, float* y) {
  const uint8_t* hm = b;
  const uint8_t* q = b + 32;
  const uint8_t* sc = b + 96;
  const float d_all = half(b + 108);
  // Scale i: low 4 bits from byte i%8 (nibble i/8), high 2 bits from byte 8 + i%4 (pair i/4).
  int8_t scales[16];
  for (int i = 0; i < 16; ++i) {
    const int lo = (sc[i % 8] >> (4 * (i / 8))) & 0x0F;
    const int hi = (sc[8 + i % 4] >> (2 * (i / 4))) & 0x03;
    scales[i] = static_cast<int8_t>((lo | (hi << 4)) - 32);
  }
  int is = 0;
  uint8_t m = 1;
  for (int n = 0; n < 2; ++n, q += 32) {
    for (int shift = 0; shift < 8; shift += 2, m = static_cast<uint8_t>(m << 1)) {
      for (int part = 0; part < 2; ++part) {
        const float dl = d_all * static_cast<float>(scales[is++]);
        for (int l = 16 * part; l < 16 * part + 16; ++l) {
          const int v = ((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4);
          *y++ = dl * static_cast<float>(v);
        }
      }
    }
  }
}

// The 12-byte packed scales of Q4_K/Q5_K: eight 6-bit (scale, min) pairs. Pairs 0-3 sit in the low
// 6 bits of bytes 0-3 (scales) and 4-7 (mins); pairs 4-7 take their low 4 bits from bytes 8-11 and
// their top 2 bits from the spare top bits of bytes 0-7.
void scale_min_k4(int j, const uint8_t* q, uint8_t* sc, uint8_t* mn) {
  if (j < 4) {
    *sc = q[j] & 63;
    *mn = q[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4));
    *mn = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Q4_K, 144 bytes: fp16 d | fp16 dmin | scales[12] | qs[128]. Each 64 elements use 32 qs bytes:
// low nibbles with pair 2i, high nibbles with pair 2i+1; value (d*sc) * q - (dmin*m).
void block_q4_k(const uint8_t* b, float* y) {
  const float d = half(b);
  const float dmin = half(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* q = b + 16;
  for (int is = 0; is < 8; is += 2, q += 32) {
    uint8_t sc, mn;
    scale_min_k4(is, scales, &sc, &mn);
    const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(mn);
    scale_min_k4(is + 1, scales, &sc, &mn);
    const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(mn);
    for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0x0F) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
  }
}

// Q5_K, 176 bytes: fp16 d | fp16 dmin | scales[12] | qh[32] | qs[128]. As Q4_K plus a 5th bit:
// for the 64-element chunk c, bit 2c of qh[l] goes with the low nibble, bit 2c+1 with the high one.
void block_q5_k(const uint8_t* b, float* y) {
  const float d = half(b);
  const float dmin = half(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* ql = b + 48;
  uint8_t u1 = 1, u2 = 2;
  for (int is = 0; is < 8; is += 2, ql += 32) {
    uint8_t sc, mn;
    scale_min_k4(is, scales, &sc, &mn);
    const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(mn);
    scale_min_k4(is + 1, scales, &sc, &mn);
    const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(mn);
    for (int l = 0; l < 32; ++l)
      *y++ = d1 * static_cast<float>((ql[l] & 0x0F) + ((qh[l] & u1) ? 16 : 0)) - m1;
    for (int l = 0; l < 32; ++l)
      *y++ = d2 * static_cast<float>((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
    u1 = static_cast<uint8_t>(u1 << 2);
    u2 = static_cast<uint8_t>(u2 << 2);
  }
}

// Q6_K, 210 bytes: ql[128] (low 4 bits) | qh[64] (high 2 bits) | int8 scales[16] | fp16 d.
// Per 128 elements: 64 ql bytes, 32 qh bytes, 8 scales; element l + 32k (k = 0..3) takes nibble
// k/2 of ql[l + 32*(k%2)], bits 2k..2k+1 of qh[l], and scale l/16 + 2k; value d * sc * (q - 32).
void block_q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const uint8_t* scb = b + 192;
  const float d = half(b + 208);
  for (int n = 0; n < 2; ++n, y += 128, ql += 64, qh += 32, scb += 8) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      const auto sc = [&](int k) { return static_cast<float>(static_cast<int8_t>(scb[is + k])); };
      y[l] = d * sc(0) * static_cast<float>(q1);
      y[l + 32] = d * sc(2) * static_cast<float>(q2);
      y[l + 64] = d * sc(4) * static_cast<float>(q3);
      y[l + 96] = d * sc(6) * static_cast<float>(q4);
    }
  }
}

using BlockFn = void (*)(const uint8_t*, float*);

BlockFn block_fn(GgmlType t) {
  switch (t) {
    case GgmlType::Q4_0:
      return block_q4_0;
    case GgmlType::Q4_1:
      return block_q4_1;
    case GgmlType::Q5_0:
      return block_q5_0;
    case GgmlType::Q5_1:
      return block_q5_1;
    case GgmlType::Q8_0:
      return block_q8_0;
    case GgmlType::Q2_K:
      return block_q2_k;
    case GgmlType::Q3_K:
      return block_q3_k;
    case GgmlType::Q4_K:
      return block_q4_k;
    case GgmlType::Q5_K:
      return block_q5_k;
    case GgmlType::Q6_K:
      return block_q6_k;
    default:
      return nullptr;
  }
}

// Blocks per OpenMP chunk: enough work per thread that small tensors (norms) stay serial.
// maybe_unused: a build without OpenMP (the fuzzers) ignores the pragmas that read it.
[[maybe_unused]] constexpr int64_t kParallelMinElems = 1 << 16;

}  // namespace

float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1F;
  uint32_t mant = h & 0x03FF;
  uint32_t bits;
  if (exp == 0x1F) {
    // Inf, or NaN made quiet with its payload kept, as the x86 F16C conversion ggml uses does.
    bits = sign | 0x7F800000u | (mant << 13) | (mant ? 0x00400000u : 0u);
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);  // rebias 15 -> 127
  } else if (mant == 0) {
    bits = sign;  // signed zero
  } else {
    // Subnormal half: normalise; every half subnormal is a normal float.
    int e = 113;  // exponent of 2^-14 in float bias, before the shifts below
    while (!(mant & 0x0400)) {
      mant <<= 1;
      --e;
    }
    bits = sign | (static_cast<uint32_t>(e) << 23) | ((mant & 0x03FF) << 13);
  }
  return std::bit_cast<float>(bits);
}

float bf16_to_fp32(uint16_t h) {
  return std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
}

const char* ggml_type_name(GgmlType t) {
  const TypeInfo* i = info(t);
  return i ? i->name : "unknown";
}

bool ggml_type_supported(GgmlType t) {
  const TypeInfo* i = info(t);
  return i && i->supported;
}

bool ggml_type_known(uint32_t id) {
  return info(static_cast<GgmlType>(id)) != nullptr;
}

const char* ggml_type_id_name(uint32_t id) {
  // ggml's full numbering (ggml.h); gaps are ids ggml has retired.
  static constexpr const char* kNames[] = {
      "F32",     "F16",    "Q4_0",    "Q4_1",  "",       "",      "Q5_0",  "Q5_1",
      "Q8_0",    "Q8_1",   "Q2_K",    "Q3_K",  "Q4_K",   "Q5_K",  "Q6_K",  "Q8_K",
      "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS",
      "I8",      "I16",    "I32",     "I64",   "F64",    "IQ1_M", "BF16",  "",
      "",        "",       "TQ1_0",   "TQ2_0", "",       "",      "",      "MXFP4",
  };
  if (id >= std::size(kNames) || kNames[id][0] == '\0') return nullptr;
  return kNames[id];
}

int64_t ggml_block_elems(GgmlType t) {
  return info_or_throw(t).block_elems;
}

size_t ggml_block_bytes(GgmlType t) {
  return info_or_throw(t).block_bytes;
}

size_t ggml_row_bytes(GgmlType t, int64_t n) {
  const TypeInfo& i = info_or_throw(t);
  SA_CHECK(n >= 0 && n % i.block_elems == 0, "ggml type ", i.name, ": ", n,
           " elements is not a whole number of ", i.block_elems, "-element blocks");
  size_t bytes = 0;
  SA_CHECK(!__builtin_mul_overflow(static_cast<size_t>(n / i.block_elems), i.block_bytes, &bytes),
           "ggml type ", i.name, ": size of ", n, " elements overflows");
  return bytes;
}

void dequantize(GgmlType t, const void* src, float* dst, int64_t n) {
  const TypeInfo& i = info_or_throw(t);
  SA_CHECK(i.supported, "dequantisation of ggml type ", i.name, " is not supported");
  SA_CHECK(n >= 0 && n % i.block_elems == 0, "dequantize ", i.name, ": ", n,
           " elements is not a whole number of ", i.block_elems, "-element blocks");
  const auto* s = static_cast<const uint8_t*>(src);
  // No exceptions past this point: nothing may throw out of an OpenMP region.
  switch (t) {
    case GgmlType::F32:
      if (n > 0) std::memcpy(dst, s, static_cast<size_t>(n) * 4);
      return;
    case GgmlType::F16:
#pragma omp parallel for schedule(static) if (n >= kParallelMinElems)
      for (int64_t k = 0; k < n; ++k) dst[k] = fp16_to_fp32(load_u16(s + 2 * k));
      return;
    case GgmlType::BF16:
#pragma omp parallel for schedule(static) if (n >= kParallelMinElems)
      for (int64_t k = 0; k < n; ++k) dst[k] = bf16_to_fp32(load_u16(s + 2 * k));
      return;
    default:
      break;
  }
  const BlockFn fn = block_fn(t);
  const int64_t nb = n / i.block_elems;
  const auto bytes = static_cast<int64_t>(i.block_bytes);
#pragma omp parallel for schedule(static) if (n >= kParallelMinElems)
  for (int64_t k = 0; k < nb; ++k) fn(s + k * bytes, dst + k * i.block_elems);
}

}  // namespace starattn
