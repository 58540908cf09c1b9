#include "backend/cpu/threads.h"

#include <cblas.h>
#include <omp.h>

#include <mutex>

namespace starattn::cpu {

void blas_single_threaded() {
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

void set_threads(int n) {
  blas_single_threaded();
  if (n > 0) omp_set_num_threads(n);
}

}  // namespace starattn::cpu
