#include "backend/cpu/threads.h"

#include "backend/cpu/blas_core.h"

#include <cblas.h>
#include <omp.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <string>

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

int default_threads(int host_cpus, int allowed_cpus, int local_ranks) {
  const int share = std::max(host_cpus, 1) / std::max(local_ranks, 1);
  return std::max(1, std::min(share, std::max(allowed_cpus, 1)));
}

int host_cpus() {
  const long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

int allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return host_cpus();
  return std::max(1, CPU_COUNT(&set));
}

namespace {

// A positive count in an environment variable, or 0.
int env_count(const std::function<const char*(const char*)>& getenv, const char* name) {
  const char* v = getenv(name);
  if (v == nullptr || *v == '\0') return 0;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  return *end == '\0' && n > 0 && n < (1 << 20) ? static_cast<int>(n) : 0;
}

}  // namespace

int launcher_local_ranks(const std::function<const char*(const char*)>& getenv) {
  if (const int n = env_count(getenv, "OMPI_COMM_WORLD_LOCAL_SIZE")) return n;
  if (const int n = env_count(getenv, "MPI_LOCALNRANKS")) return n;
  // srun says only how many tasks and nodes the step has: more tasks than nodes puts at least
  // two on some host, and tasks are usually spread evenly.
  const int tasks = env_count(getenv, "SLURM_STEP_NUM_TASKS");
  const int nodes = env_count(getenv, "SLURM_STEP_NUM_NODES");
  if (tasks > 0 && nodes > 0) return (tasks + nodes - 1) / nodes;
  return 0;
}

const char* openmp_wait_policy_to_set(const std::function<const char*(const char*)>& getenv) {
  const char* chosen = getenv("OMP_WAIT_POLICY");
  if (chosen != nullptr && *chosen != '\0') return nullptr;  // the user's choice stands
  return launcher_local_ranks(getenv) > 1 ? "passive" : nullptr;
}

}  // namespace starattn::cpu
