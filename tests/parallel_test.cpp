// cpu::parallel_for and cpu::with_team (backend/cpu/parallel.h): every item runs exactly once,
// alone, in a team, nested, with 1 and several threads; loops inside items and nested teams run
// in order; an exception from a team's body or from an item reaches the caller and the team can
// be used again.
#include <gtest/gtest.h>
#include <omp.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "backend/cpu/parallel.h"

namespace starattn {
namespace {

// Runs `count` items and checks each ran exactly once; returns how many distinct threads ran some.
int run_once_each(int64_t count, double work = 1e9) {
  std::vector<std::atomic<int>> hits(static_cast<size_t>(count));
  std::vector<std::atomic<int>> by_thread(64);
  cpu::parallel_for(count, work, 1.0, [&](int64_t i) {
    hits[static_cast<size_t>(i)].fetch_add(1);
    by_thread[static_cast<size_t>(omp_get_thread_num() % 64)].fetch_add(1);
  });
  for (int64_t i = 0; i < count; ++i) EXPECT_EQ(hits[static_cast<size_t>(i)].load(), 1) << i;
  int threads = 0;
  for (const auto& t : by_thread) threads += t.load() > 0;
  return threads;
}

TEST(Parallel, EveryItemOnceAloneAndInATeam) {
  const int saved = omp_get_max_threads();
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    for (int64_t count : {0, 1, 2, 7, 1000}) run_once_each(count);
    run_once_each(50, /*work=*/0.5);  // below min_work: in order on the caller
    cpu::with_team([&] {
      // Many short loops in a row, as a decode step runs them.
      for (int rep = 0; rep < 300; ++rep)
        for (int64_t count : {1, 3, 16, 200}) run_once_each(count);
    });
  }
  omp_set_num_threads(saved);
}

TEST(Parallel, LoopsInsideItemsAndNestedTeamsRunInOrder) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(2);
  std::atomic<int> inner{0};
  cpu::with_team([&] {
    cpu::parallel_for(8, 1e9, 1.0, [&](int64_t) {
      const std::thread::id me = std::this_thread::get_id();
      cpu::parallel_for(5, 1e9, 1.0, [&](int64_t) {
        EXPECT_EQ(std::this_thread::get_id(), me);  // an item's own loop stays on its thread
        inner.fetch_add(1);
      });
    });
    cpu::with_team([&] { run_once_each(100); });  // a team inside a team: the same team
  });
  EXPECT_EQ(inner.load(), 40);
  omp_set_num_threads(saved);
}

TEST(Parallel, TeamBodyExceptionsReachTheCaller) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(2);
  EXPECT_THROW(cpu::with_team([] {
                 run_once_each(64);
                 throw std::runtime_error("from the body");
               }),
               std::runtime_error);
  int sum = 0;
  cpu::with_team([&] {
    std::vector<int> v(100, 0);
    cpu::parallel_for(100, 1e9, 1.0, [&](int64_t i) { v[static_cast<size_t>(i)] = 1; });
    for (int x : v) sum += x;
  });
  EXPECT_EQ(sum, 100);
  omp_set_num_threads(saved);
}

// An item that throws, on whichever thread takes it: the exception reaches parallel_for's caller
// after every other item ran (none is skipped or left running), alone and in a team, and the
// next loop runs normally.
TEST(Parallel, ItemExceptionsReachTheCallerAfterTheOtherItems) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(2);
  auto throwing_loop = [] {
    std::vector<std::atomic<int>> hits(200);
    EXPECT_THROW(cpu::parallel_for(200, 1e9, 1.0,
                                   [&](int64_t i) {
                                     hits[static_cast<size_t>(i)].fetch_add(1);
                                     if (i % 50 == 7) throw std::runtime_error("from an item");
                                   }),
                 std::runtime_error);
    for (size_t i = 0; i < hits.size(); ++i) EXPECT_EQ(hits[i].load(), 1) << i;
    run_once_each(100);
  };
  throwing_loop();
  cpu::with_team([&] {
    for (int rep = 0; rep < 20; ++rep) throwing_loop();
  });
  omp_set_num_threads(saved);
}

}  // namespace
}  // namespace starattn
