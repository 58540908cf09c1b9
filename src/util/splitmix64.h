// SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", 2014): a
// 64-bit state that steps by a fixed odd constant, and a finaliser that spreads every state over
// all 64 bits. Its output is fixed by these few lines, so a seed gives the same numbers on every
// rank, compiler and device; the whole of it is here so that host and CUDA code share one copy.
#pragma once

#include <cstdint>

#ifdef __CUDACC__
#define SA_SPLITMIX_FN __host__ __device__ constexpr inline
#else
#define SA_SPLITMIX_FN constexpr inline
#endif

namespace starattn {

// The step between states: 2^64 divided by the golden ratio, rounded to odd.
inline constexpr uint64_t kSplitMix64Gamma = 0x9E3779B97F4A7C15ull;

// The finaliser alone: a bijection of 64-bit values whose every output bit depends on every
// input bit (a hash of x).
SA_SPLITMIX_FN uint64_t splitmix64_mix(uint64_t x) {
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Output i (from 0) of the stream whose state starts at `seed`, without stepping through the
// ones before it: a counter-based draw, so that element i of a buffer can be filled by any thread.
SA_SPLITMIX_FN uint64_t splitmix64_at(uint64_t seed, uint64_t i) {
  return splitmix64_mix(seed + (i + 1) * kSplitMix64Gamma);
}

// The stream itself: next() returns splitmix64_at(seed, 0), then (seed, 1), ...
struct SplitMix64 {
  uint64_t state = 0;
  SA_SPLITMIX_FN uint64_t next() { return splitmix64_mix(state += kSplitMix64Gamma); }
};

}  // namespace starattn

#undef SA_SPLITMIX_FN
