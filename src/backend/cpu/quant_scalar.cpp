// The scalar build of the quantised-weight kernels (quant_kernels.h): portable C++, the fallback
// on CPUs without AVX2 and the twin the AVX2 build is tested against. Each dot product sums
// integer products within an activation block exactly (int32) and combines blocks in fp32, in
// the same grouping as the AVX2 build.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "backend/cpu/quant_kernels.h"

namespace starattn::cpu::quant {
namespace {

float f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_fp32(h);
}

void quantize_act(const float* x, int64_t cols, ActBlock* out) {
  for (int64_t b = 0; b < cols / kActBlock; ++b) {
    const float* xb = x + b * kActBlock;
    float amax = 0;
    bool finite = true;
    for (int i = 0; i < kActBlock; ++i) {
      amax = std::fmax(amax, std::fabs(xb[i]));
      finite = finite && std::isfinite(xb[i]);
    }
    ActBlock& a = out[b];
    if (!finite) {  // a NaN or Inf must reach the output, as in the fp32 product
      a = ActBlock{};
      a.d = a.dsum = NAN;
      continue;
    }
    // Blocks below kTinyAct are zero: 1 / d would overflow.
    a.d = amax >= kTinyAct ? amax / 127.0f : 0.0f;
    const float id = a.d != 0 ? 1.0f / a.d : 0.0f;
    int s[2] = {0, 0};
    for (int i = 0; i < kActBlock; ++i) {
      // nearbyint rounds half to even, as the AVX2 build's cvtps does.
      const int q = static_cast<int>(std::nearbyint(xb[i] * id));
      a.q[i] = static_cast<int8_t>(q);
      s[i / 16] += q;
    }
    a.sum[0] = static_cast<int16_t>(s[0]);
    a.sum[1] = static_cast<int16_t>(s[1]);
    a.dsum = a.d * static_cast<float>(s[0] + s[1]);
  }
}

// Q8_0, 34 bytes: fp16 d | int8 qs[32].
float dot_q8_0(const uint8_t* w, const ActBlock* x, int64_t nb) {
  float acc = 0;
  for (int64_t b = 0; b < nb; ++b, w += 34) {
    int isum = 0;
    for (int i = 0; i < 32; ++i) isum += static_cast<int8_t>(w[2 + i]) * x[b].q[i];
    acc += f16(w) * x[b].d * static_cast<float>(isum);
  }
  return acc;
}

// Q4_0, 18 bytes: fp16 d | qs[16]; element i < 16 is the low nibble of qs[i], i >= 16 the high
// nibble of qs[i - 16]; value (q - 8) d.
float dot_q4_0(const uint8_t* w, const ActBlock* x, int64_t nb) {
  float acc = 0;
  for (int64_t b = 0; b < nb; ++b, w += 18) {
    int isum = 0;
    for (int i = 0; i < 16; ++i)
      isum += (w[2 + i] & 0x0F) * x[b].q[i] + (w[2 + i] >> 4) * x[b].q[i + 16];
    const float d = f16(w);
    acc += d * x[b].d * static_cast<float>(isum) - 8.0f * d * x[b].dsum;
  }
  return acc;
}

// Q4_1, 20 bytes: fp16 d | fp16 m | qs[16] (nibbles as Q4_0); value q d + m.
float dot_q4_1(const uint8_t* w, const ActBlock* x, int64_t nb) {
  float acc = 0;
  for (int64_t b = 0; b < nb; ++b, w += 20) {
    int isum = 0;
    for (int i = 0; i < 16; ++i)
      isum += (w[4 + i] & 0x0F) * x[b].q[i] + (w[4 + i] >> 4) * x[b].q[i + 16];
    acc += f16(w) * x[b].d * static_cast<float>(isum) + f16(w + 2) * x[b].dsum;
  }
  return acc;
}

// The 6-bit (scale, min) pair j of a Q4_K/Q5_K super-block (ggml_types.cpp, scale_min_k4).
void scale_min(int j, const uint8_t* q, int* sc, int* mn) {
  if (j < 4) {
    *sc = q[j] & 63;
    *mn = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
    *mn = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// Q4_K, 144 bytes: fp16 d | fp16 dmin | scales[12] | qs[128]. Sub-block j (32 elements) takes the
// low (j even) or high (j odd) nibbles of qs[32 (j / 2) ..][0..32); value d sc_j q - dmin m_j.
float dot_q4_k(const uint8_t* w, const ActBlock* x, int64_t nb) {
  float acc = 0;
  for (int64_t b = 0; b < nb / 8; ++b, w += 144, x += 8) {
    const float d = f16(w), dmin = f16(w + 2);
    for (int j = 0; j < 8; ++j) {
      int sc, mn;
      scale_min(j, w + 4, &sc, &mn);
      const uint8_t* qs = w + 16 + 32 * (j / 2);
      const int shift = 4 * (j % 2);
      int isum = 0;
      for (int i = 0; i < 32; ++i) isum += ((qs[i] >> shift) & 0x0F) * x[j].q[i];
      acc += d * x[j].d * static_cast<float>(sc * isum) - dmin * static_cast<float>(mn) * x[j].dsum;
    }
  }
  return acc;
}

// Q5_K, 176 bytes: fp16 d | fp16 dmin | scales[12] | qh[32] | qs[128]. As Q4_K with a fifth bit:
// bit j of qh[i] for element i of sub-block j.
float dot_q5_k(const uint8_t* w, const ActBlock* x, int64_t nb) {
  float acc = 0;
  for (int64_t b = 0; b < nb / 8; ++b, w += 176, x += 8) {
    const float d = f16(w), dmin = f16(w + 2);
    const uint8_t* qh = w + 16;
    for (int j = 0; j < 8; ++j) {
      int sc, mn;
      scale_min(j, w + 4, &sc, &mn);
      const uint8_t* qs = w + 48 + 32 * (j / 2);
      const int shift = 4 * (j % 2);
      int isum = 0;
      for (int i = 0; i < 32; ++i)
        isum += (((qs[i] >> shift) & 0x0F) | (((qh[i] >> j) & 1) << 4)) * x[j].q[i];
      acc += d * x[j].d * static_cast<float>(sc * isum) - dmin * static_cast<float>(mn) * x[j].dsum;
    }
  }
  return acc;
}

// Q6_K, 210 bytes: ql[128] | qh[64] | int8 scales[16] | fp16 d. In half h (128 elements), group k
// (32 elements, l = 0..31) takes nibble k / 2 of ql[64 h + l + 32 (k % 2)], bits 2k..2k+1 of
// qh[32 h + l], and scale 8 h + 2 k + l / 16; value d sc (q - 32).
float dot_q6_k(const uint8_t* w, const ActBlock* x, int64_t nb) {
  float acc = 0;
  for (int64_t b = 0; b < nb / 8; ++b, w += 210, x += 8) {
    const float d = f16(w + 208);
    const auto* sc = reinterpret_cast<const int8_t*>(w + 192);
    for (int g = 0; g < 8; ++g) {
      const int h = g / 4, k = g % 4;
      const uint8_t* ql = w + 64 * h + 32 * (k % 2);
      const uint8_t* qh = w + 128 + 32 * h;
      int isum[2] = {0, 0};
      for (int l = 0; l < 32; ++l) {
        const int q = ((ql[l] >> (4 * (k / 2))) & 0x0F) | (((qh[l] >> (2 * k)) & 3) << 4);
        isum[l / 16] += q * x[g].q[l];
      }
      const int s0 = sc[8 * h + 2 * k], s1 = sc[8 * h + 2 * k + 1];
      const int total = s0 * (isum[0] - 32 * x[g].sum[0]) + s1 * (isum[1] - 32 * x[g].sum[1]);
      acc += d * x[g].d * static_cast<float>(total);
    }
  }
  return acc;
}

template <float (*Dot)(const uint8_t*, const ActBlock*, int64_t)>
void gemv_q8(const uint8_t* w, size_t row_bytes, const ActBlock* x, int64_t cols, float* y,
             int64_t rows) {
  for (int64_t r = 0; r < rows; ++r) y[r] = Dot(w + r * row_bytes, x, cols / kActBlock);
}

void gemv_bf16(const uint8_t* w, size_t row_bytes, const float* x, int64_t cols, float* y,
               int64_t rows) {
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* row = w + r * row_bytes;
    float acc = 0;
    for (int64_t i = 0; i < cols; ++i) {
      uint16_t h;
      std::memcpy(&h, row + 2 * i, 2);
      acc += bf16_to_fp32(h) * x[i];
    }
    y[r] = acc;
  }
}

template <GgmlType T>
void dequant(const uint8_t* w, size_t row_bytes, int64_t cols, float* out, int64_t rows) {
  for (int64_t r = 0; r < rows; ++r) dequantize(T, w + r * row_bytes, out + r * cols, cols);
}

const KernelSet kScalar = {
    "scalar",
    quantize_act,
    {gemv_q8<dot_q8_0>, nullptr, dequant<GgmlType::Q8_0>},
    {gemv_q8<dot_q4_0>, nullptr, dequant<GgmlType::Q4_0>},
    {gemv_q8<dot_q4_1>, nullptr, dequant<GgmlType::Q4_1>},
    {gemv_q8<dot_q4_k>, nullptr, dequant<GgmlType::Q4_K>},
    {gemv_q8<dot_q5_k>, nullptr, dequant<GgmlType::Q5_K>},
    {gemv_q8<dot_q6_k>, nullptr, dequant<GgmlType::Q6_K>},
    {nullptr, gemv_bf16, dequant<GgmlType::BF16>},
};

}  // namespace

const TypeKernels* KernelSet::of(GgmlType t) const {
  switch (t) {
    case GgmlType::Q8_0:
      return &q8_0;
    case GgmlType::Q4_0:
      return &q4_0;
    case GgmlType::Q4_1:
      return &q4_1;
    case GgmlType::Q4_K:
      return &q4_k;
    case GgmlType::Q5_K:
      return &q5_k;
    case GgmlType::Q6_K:
      return &q6_k;
    case GgmlType::BF16:
      return &bf16;
    default:
      return nullptr;
  }
}

const KernelSet& scalar_kernels() {
  return kScalar;
}

const std::vector<const KernelSet*>& runnable_kernel_sets() {
  static const std::vector<const KernelSet*> sets = [] {
    std::vector<const KernelSet*> s = {&kScalar};
#if defined(__x86_64__)
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                      __builtin_cpu_supports("f16c");
    const bool avx512vnni = avx2 && __builtin_cpu_supports("avx512f") &&
                            __builtin_cpu_supports("avx512vl") &&
                            __builtin_cpu_supports("avx512vnni");
    const bool avxvnni = avx2 && __builtin_cpu_supports("avxvnni");
    // Slowest first. Where both VNNI forms run, the AVX-512 build is faster (measured on a
    // Sapphire Rapids core: 5-10% on SmolLM2's GEMVs): the compiler has 32 vector registers and
    // folds the scale broadcasts into the multiply-adds, all on 256-bit vectors.
    for (const auto& [runs, set] : {std::pair{avx2, avx2_kernels_unchecked()},
                                    std::pair{avxvnni, avxvnni_kernels_unchecked()},
                                    std::pair{avx512vnni, avx512vnni_kernels_unchecked()}})
      if (runs && set) s.push_back(set);
#endif
    return s;
  }();
  return sets;
}

const KernelSet& kernels() {
  static const KernelSet* chosen = [] {
    const std::vector<const KernelSet*>& sets = runnable_kernel_sets();
    if (const char* force = std::getenv("STARATTN_CPU_KERNELS"))
      for (const KernelSet* s : sets)
        if (std::strcmp(force, s->name) == 0) return s;
    return sets.back();
  }();
  return *chosen;
}

}  // namespace starattn::cpu::quant
