// The default CPU threads of a rank and the OpenMP wait policy the CLI starts with
// (backend/cpu/threads.h).
#include "backend/cpu/threads.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace starattn::cpu {
namespace {

TEST(DefaultThreads, CoresSharedAmongTheHostsRanks) {
  EXPECT_EQ(default_threads(16, 16, 1), 16);  // one process: every core
  EXPECT_EQ(default_threads(16, 16, 2), 8);   // two ranks, unbound: half each
  EXPECT_EQ(default_threads(16, 16, 3), 5);   // rounded down: 15 of 16 cores busy, none shared
  EXPECT_EQ(default_threads(2, 2, 2), 1);     // this project's 2-core machine under -np 2
  EXPECT_EQ(default_threads(2, 2, 4), 1);     // oversubscribed: at least one thread
  EXPECT_EQ(default_threads(16, 1, 2), 1);    // mpirun bound the rank to one core
  EXPECT_EQ(default_threads(16, 4, 1), 4);    // taskset / cgroup: only the CPUs we may use
  EXPECT_EQ(default_threads(0, 0, 0), 1);     // nothing known
}

TEST(DefaultThreads, CountsOfThisMachine) {
  EXPECT_GE(host_cpus(), 1);
  EXPECT_GE(allowed_cpus(), 1);
  EXPECT_LE(allowed_cpus(), host_cpus());
}

// An environment of our own, as getenv would read it.
struct Env {
  std::map<std::string, std::string> vars;
  const char* operator()(const char* name) const {
    const auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  }
};

TEST(OpenMpWaitPolicy, PassiveWhenRanksShareTheHost) {
  EXPECT_EQ(launcher_local_ranks(Env{}), 0);
  EXPECT_EQ(openmp_wait_policy_to_set(Env{}), nullptr);  // not under a launcher
  EXPECT_EQ(launcher_local_ranks(Env{{{"OMPI_COMM_WORLD_LOCAL_SIZE", "4"}}}), 4);
  EXPECT_EQ(launcher_local_ranks(Env{{{"MPI_LOCALNRANKS", "2"}}}), 2);
  EXPECT_EQ(
      launcher_local_ranks(Env{{{"SLURM_STEP_NUM_TASKS", "8"}, {"SLURM_STEP_NUM_NODES", "2"}}}), 4);
  EXPECT_EQ(launcher_local_ranks(Env{{{"OMPI_COMM_WORLD_LOCAL_SIZE", "two"}}}), 0);
  EXPECT_EQ(launcher_local_ranks(Env{{{"OMPI_COMM_WORLD_LOCAL_SIZE", "-3"}}}), 0);

  EXPECT_STREQ(openmp_wait_policy_to_set(Env{{{"OMPI_COMM_WORLD_LOCAL_SIZE", "2"}}}), "passive");
  // One rank per host spins on nobody's core; a policy the user chose stands.
  EXPECT_EQ(openmp_wait_policy_to_set(Env{{{"OMPI_COMM_WORLD_LOCAL_SIZE", "1"}}}), nullptr);
  EXPECT_EQ(openmp_wait_policy_to_set(
                Env{{{"OMPI_COMM_WORLD_LOCAL_SIZE", "2"}, {"OMP_WAIT_POLICY", "active"}}}),
            nullptr);
}

}  // namespace
}  // namespace starattn::cpu
