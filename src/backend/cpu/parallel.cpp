#include "backend/cpu/parallel.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <thread>
#include <utility>

namespace starattn::cpu {
namespace {

// How long a thread spins for the next loop (or the caller for a loop's last items) before it
// sleeps (yields). The gaps between a decode step's loops are a few microseconds.
constexpr std::chrono::microseconds kSpin{50};

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// One with_team region. Loop g's items are handed out through `claim` = g << 32 | next item: a
// thread takes item i by moving it from (g, i) to (g, i + 1), so a thread that saw an older loop
// can never take an item of a newer one, and whoever took an item of loop g holds loop g open
// (the caller waits for `done`) until it has run it, which keeps body and count valid meanwhile.
struct Team {
  alignas(64) std::atomic<uint64_t> claim{0};
  alignas(64) std::atomic<int64_t> done{0};
  alignas(64) std::atomic<uint32_t> gen{0};  // the latest loop; bumped once more to quit
  std::atomic<int> sleepers{0};
  std::atomic<bool> quit{false};
  std::atomic<const LoopBody*> body{nullptr};
  std::atomic<int64_t> count{0};
  // The first exception an item of the current loop threw (guarded by error_taken), rethrown by
  // the loop's caller once every taken item is done.
  std::atomic<bool> error_taken{false};
  std::exception_ptr error;
};

// Runs item i; an exception goes to t.error (the first one) instead of up a worker's stack, where
// it would end the process, or up the caller's, which must first wait for the other items.
void run_item(Team& t, const LoopBody& b, int64_t i) {
  try {
    b.call(b.ctx, i);
  } catch (...) {
    if (!t.error_taken.exchange(true, std::memory_order_acq_rel))
      t.error = std::current_exception();
  }
}

thread_local Team* active_team = nullptr;  // set on the thread that runs a with_team body
thread_local int running_items = 0;        // > 0 inside an item: loops there run in order
thread_local bool team_worker = false;     // a waiting thread of a with_team region

// Takes and runs items of loop g until none is left or the loop is over.
void run_items(Team& t, uint32_t g) {
  uint64_t c = t.claim.load(std::memory_order_acquire);
  for (;;) {
    const int64_t i = static_cast<int64_t>(c & 0xffffffffu);
    if ((c >> 32) != g || i >= t.count.load(std::memory_order_acquire)) return;
    if (t.claim.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
      ++running_items;
      run_item(t, *t.body.load(std::memory_order_relaxed), i);
      --running_items;
      t.done.fetch_add(1, std::memory_order_release);
      c = t.claim.load(std::memory_order_acquire);
    }
  }
}

void wait_for_loops(Team& t) {
  team_worker = true;
  uint32_t seen = 0;
  for (;;) {
    uint32_t g = t.gen.load(std::memory_order_acquire);
    auto since = std::chrono::steady_clock::now();
    for (int spins = 0; g == seen; g = t.gen.load(std::memory_order_acquire)) {
      cpu_relax();
      if (++spins % 256 != 0 || std::chrono::steady_clock::now() - since < kSpin) continue;
      // Sleep until the next loop. The caller notifies when it sees a sleeper; sleepers and gen
      // are sequentially consistent, so either it sees this one or this one sees the new gen.
      t.sleepers.fetch_add(1);
      if (t.gen.load() == seen) t.gen.wait(seen);
      t.sleepers.fetch_sub(1);
      since = std::chrono::steady_clock::now();
    }
    if (t.quit.load(std::memory_order_acquire)) break;
    seen = g;
    run_items(t, g);
  }
  team_worker = false;
}

void publish(Team& t) {
  if (t.sleepers.load() > 0) t.gen.notify_all();
}

}  // namespace

void parallel_for_body(int64_t count, double work, double min_work, LoopBody body) {
  if (count <= 0) return;
  Team* t = active_team;
  const bool serial = count == 1 || work < min_work || running_items > 0 || team_worker ||
                      (!t && (omp_in_parallel() || omp_get_max_threads() < 2));
  if (serial) {
    for (int64_t i = 0; i < count; ++i) body.call(body.ctx, i);
    return;
  }
  if (!t) {
    const int threads = static_cast<int>(std::min<int64_t>(omp_get_max_threads(), count));
    Team errors;  // only its error fields: an exception must not leave an OpenMP loop
#pragma omp parallel for schedule(dynamic) num_threads(threads)
    for (int64_t i = 0; i < count; ++i) run_item(errors, body, i);
    if (errors.error) std::rethrow_exception(errors.error);
    return;
  }
  // The previous loop is over (every item done), so nobody runs its body now. But a thread may
  // still hold the previous loop's last claim word (g - 1, all its items taken) and compare its
  // index with `count`: had it seen this loop's larger count there, its exchange on the old word
  // would take an item of this loop under the old tag, which this loop hands out again (an item
  // run twice). So the old word is closed first, and whoever sees the new count (acquire) sees
  // the closed word too and its exchange fails.
  const uint32_t g = t->gen.load(std::memory_order_relaxed) + 1;
  t->claim.store(uint64_t{g} << 32 | 0xffffffffu, std::memory_order_relaxed);
  t->body.store(&body, std::memory_order_relaxed);
  t->count.store(count, std::memory_order_release);
  t->done.store(0, std::memory_order_relaxed);
  t->claim.store(uint64_t{g} << 32, std::memory_order_release);
  t->gen.store(g);
  publish(*t);
  run_items(*t, g);
  // Wait for the items others took; yield the core after a while, in case the thread that holds
  // one waits for it.
  const auto since = std::chrono::steady_clock::now();
  for (int spins = 0; t->done.load(std::memory_order_acquire) < count; ++spins) {
    cpu_relax();
    if (spins % 256 == 255 && std::chrono::steady_clock::now() - since > kSpin)
      std::this_thread::yield();
  }
  if (t->error_taken.load(std::memory_order_acquire)) {
    std::exception_ptr e = std::exchange(t->error, nullptr);
    t->error_taken.store(false, std::memory_order_relaxed);
    std::rethrow_exception(e);
  }
}

void with_team(const std::function<void()>& body) {
  if (active_team || team_worker || running_items > 0 || omp_in_parallel() ||
      omp_get_max_threads() < 2) {
    body();
    return;
  }
  Team team;
  std::exception_ptr error;
#pragma omp parallel
  {
    if (omp_get_thread_num() == 0) {
      active_team = &team;
      try {
        body();
      } catch (...) {
        error = std::current_exception();
      }
      active_team = nullptr;
      team.quit.store(true);
      team.gen.fetch_add(1);
      team.gen.notify_all();
    } else {
      wait_for_loops(team);
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace starattn::cpu
