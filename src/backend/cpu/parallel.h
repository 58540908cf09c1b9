// Loops of the CPU backend over independent items (row chunks of a product, attention tasks),
// spread over its OpenMP threads in one of two ways:
//
// - Alone, parallel_for is an OpenMP parallel loop with dynamic scheduling: a team is woken for
//   the loop and meets at its end. This is how prefill runs (long loops, few of them).
// - Inside with_team(body), the other threads of one OpenMP region wait for loops while body runs
//   on the calling thread; each parallel_for hands them its items and takes items itself. A decode
//   step runs about 150 loops of a few microseconds each (SmolLM2: 30 layers of q/k/v, attention,
//   output, gate/up, down), so one region per step replaces 150 team wake-ups and barriers. And
//   the caller waits only for items a thread has taken, never for a thread that has taken none:
//   on a shared machine, where the scheduler takes a core away for milliseconds at a time, an
//   OpenMP barrier per loop made two threads slower than one (every loop waited for the
//   descheduled thread), while here the caller runs the items of a thread that is away.
//
// Waiting threads spin for a while (about 50 us), then sleep until the next loop. A loop inside
// an item runs on the thread that took it. An exception from an item reaches parallel_for's
// caller once the loop's other items are done (the first one, when several throw).
#pragma once

#include <cstdint>
#include <functional>
#include <type_traits>

namespace starattn::cpu {

// An item of a loop: call(ctx, i). (A pointer pair, not std::function: no allocation per loop.)
struct LoopBody {
  void (*call)(void* ctx, int64_t i);
  void* ctx;
};
void parallel_for_body(int64_t count, double work, double min_work, LoopBody body);

// Runs fn(i) for every i in [0, count), spread over the threads when `work` (any unit: bytes,
// multiply-adds) reaches min_work and there is more than one item and thread; else in order on
// the calling thread.
template <class Fn>
void parallel_for(int64_t count, double work, double min_work, Fn&& fn) {
  using F = std::remove_reference_t<Fn>;
  parallel_for_body(count, work, min_work,
                    {[](void* ctx, int64_t i) { (*static_cast<F*>(ctx))(i); },
                     const_cast<void*>(static_cast<const void*>(&fn))});
}

// Runs body on the calling thread with the other OpenMP threads (omp_get_max_threads() in all)
// waiting to share its parallel_for loops. Exceptions from body reach the caller. Nested calls,
// and calls with one thread, run body directly.
void with_team(const std::function<void()>& body);

}  // namespace starattn::cpu
