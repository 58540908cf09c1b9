// The AVX2/FMA/F16C build of the quantised-weight kernels (quant_x86.h): products through
// _mm256_maddubs_epi16 and _mm256_madd_epi16. Compiled with -mavx2 -mfma -mf16c (CMakeLists.txt).
#include "backend/cpu/quant_kernels.h"

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

#define STARATTN_QUANT_DOT 0
#define STARATTN_QUANT_SET_NAME "avx2"
#include "backend/cpu/quant_x86.h"

namespace starattn::cpu::quant {
const KernelSet* avx2_kernels_unchecked() {
  return &kSet;
}
}  // namespace starattn::cpu::quant

#else

namespace starattn::cpu::quant {
const KernelSet* avx2_kernels_unchecked() {
  return nullptr;
}
}  // namespace starattn::cpu::quant

#endif
