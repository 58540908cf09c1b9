// The AVX512-VNNI build of the quantised-weight kernels (quant_x86.h): as the AVX-VNNI build, with
// vpdpbusd in its EVEX form, still on 256-bit vectors. For CPUs with AVX-512 VNNI (Cascade Lake,
// Ice Lake, Sapphire Rapids, Zen 4), and preferred to the AVX-VNNI build where both run (the
// compiler has 32 registers and EVEX broadcasts). Compiled with -mavx2 -mfma -mf16c -mavx512f
// -mavx512vl -mavx512vnni (CMakeLists.txt).
#include "backend/cpu/quant_kernels.h"

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__) && \
    defined(__AVX512VNNI__) && defined(__AVX512VL__)

#define STARATTN_QUANT_DOT 2
#define STARATTN_QUANT_SET_NAME "avx512-vnni"
#include "backend/cpu/quant_x86.h"

namespace starattn::cpu::quant {
const KernelSet* avx512vnni_kernels_unchecked() {
  return &kSet;
}
}  // namespace starattn::cpu::quant

#else

namespace starattn::cpu::quant {
const KernelSet* avx512vnni_kernels_unchecked() {
  return nullptr;
}
}  // namespace starattn::cpu::quant

#endif
