// SA_MPI_CHECK: checks an MPI return code. The MPI comm sets MPI_ERRORS_RETURN, so a failing call
// comes back here instead of aborting inside MPI, and travels as starattn::Error like every other
// error; the message names the call, file:line and the MPI_COMM_WORLD rank.
#pragma once

// The deprecated MPI C++ bindings (pulled in by mpi.h) do not compile warning-free; we use the C
// API.
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

namespace starattn::detail {
[[noreturn]] void mpi_fail(int rc, const char* call, const char* file, int line);
}  // namespace starattn::detail

#define SA_MPI_CHECK(call)                                                 \
  do {                                                                     \
    const int sa_mpi_rc_ = (call);                                         \
    if (sa_mpi_rc_ != MPI_SUCCESS)                                         \
      ::starattn::detail::mpi_fail(sa_mpi_rc_, #call, __FILE__, __LINE__); \
  } while (0)
