#include "backend/cpu/threads.h"

#include "backend/cpu/blas_core.h"

#include <cblas.h>
#include <omp.h>

#include <mutex>

namespace starattn::cpu {

void blas_single_threaded() {
  static std::once_flag once;
  // Naming blas_note() keeps blas_core.cpp, whose start-up code chooses OpenBLAS's kernels, in
  // every program that uses the CPU backend.
  std::call_once(once, [] {
    (void)blas_note();
    openblas_set_num_threads(1);
  });
}

void set_threads(int n) {
  blas_single_threaded();
  if (n > 0) omp_set_num_threads(n);
}

}  // namespace starattn::cpu
