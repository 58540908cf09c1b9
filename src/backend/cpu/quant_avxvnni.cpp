// The AVX-VNNI build of the quantised-weight kernels (quant_x86.h): as the AVX2 build, with the
// 8-bit products of the 32-element types in one vpdpbusd (VEX form: Alder Lake, Sapphire Rapids
// and later). Compiled with -mavx2 -mfma -mf16c -mavxvnni (CMakeLists.txt).
#include "backend/cpu/quant_kernels.h"

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__) && \
    defined(__AVXVNNI__)

#define STARATTN_QUANT_DOT 1
#define STARATTN_QUANT_SET_NAME "avx-vnni"
#include "backend/cpu/quant_x86.h"

namespace starattn::cpu::quant {
const KernelSet* avxvnni_kernels_unchecked() {
  return &kSet;
}
}  // namespace starattn::cpu::quant

#else

namespace starattn::cpu::quant {
const KernelSet* avxvnni_kernels_unchecked() {
  return nullptr;
}
}  // namespace starattn::cpu::quant

#endif
