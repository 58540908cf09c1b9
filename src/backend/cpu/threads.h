// Threading of the CPU backend. All parallelism is OpenMP: work is split across OpenMP threads and
// each one calls OpenBLAS single-threaded. Letting OpenBLAS run its own thread pool next to
// OpenMP's made the two spin against each other (OpenMP threads busy-wait after every parallel
// region): prefill ran 5x slower on 2 cores than with one threading system.
#pragma once

namespace starattn::cpu {

// Makes OpenBLAS single-threaded (once per process); called before any BLAS use.
void blas_single_threaded();

// Sets the OpenMP threads used by the CPU backend; n <= 0 keeps the default (all cores).
void set_threads(int n);

}  // namespace starattn::cpu
