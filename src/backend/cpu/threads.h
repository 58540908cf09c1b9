// Threading of the CPU backend. All parallelism is OpenMP: work is split across OpenMP threads and
// each one calls OpenBLAS single-threaded. Letting OpenBLAS run its own thread pool next to
// OpenMP's made the two spin against each other (OpenMP threads busy-wait after every parallel
// region): prefill ran 5x slower on 2 cores than with one threading system.
#pragma once

#include <functional>

namespace starattn::cpu {

// Makes OpenBLAS single-threaded (once per process); called before any BLAS use.
void blas_single_threaded();

// Sets the OpenMP threads used by the CPU backend; n <= 0 keeps the OpenMP runtime's default
// (OMP_NUM_THREADS, else every CPU this process may run on).
void set_threads(int n);

// The threads a rank uses when the user names none: its host's CPUs shared out among the ranks on
// that host (local_ranks, from MPI_COMM_TYPE_SHARED), no more than the CPUs the process may run
// on (mpirun binds a rank to one core when there are as many cores as ranks), and at least 1.
// More threads than that only fight the other ranks' threads for the same cores.
int default_threads(int host_cpus, int allowed_cpus, int local_ranks);
// This host's online CPUs, and the CPUs in this process's affinity mask (at least 1 each).
int host_cpus();
int allowed_cpus();

// How many ranks the launcher starts on this host, from its environment (OpenMPI's mpirun:
// OMPI_COMM_WORLD_LOCAL_SIZE; MPICH and Intel MPI: MPI_LOCALNRANKS; Slurm's srun: more tasks
// than nodes), or 0 when it does not say. Only for what must be decided before MPI starts: the
// OpenMP wait policy (see openmp_wait_policy_to_set); once MPI runs, Comm::local_size is the
// answer. getenv: the environment to read (std::getenv; tests pass their own).
int launcher_local_ranks(const std::function<const char*(const char*)>& getenv);
// The OMP_WAIT_POLICY to start the process with, or nullptr to leave it as it is: "passive"
// when several ranks share this host and the user has not chosen a policy. OpenMP threads spin
// for a while after every parallel region by default, which steals the core from another rank
// on the same host (and from this rank's own MPI waits); a passive policy makes them sleep.
// The OpenMP runtime reads the variable once, as it loads (before main), so the CLI starts
// itself again with it set (app/main.cpp).
const char* openmp_wait_policy_to_set(const std::function<const char*(const char*)>& getenv);

}  // namespace starattn::cpu
