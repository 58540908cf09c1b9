// The one random source of `starattn eval`. RULER's Python draws from `random` and numpy; bit-exact
// parity with them is brittle and buys nothing, so we keep their *semantics* (sampling
// without replacement where Python uses sample(), fixed permutations where Python shuffles with a
// fresh Random(42)) on top of std::mt19937_64, whose output the C++ standard fixes. The helpers
// below are written out by hand because std::uniform_int_distribution and std::shuffle differ
// between standard libraries, and a seed must give the same samples everywhere.
#pragma once

#include <cstdint>
#include <random>
#include <string_view>
#include <utility>
#include <vector>

namespace starattn::eval {

// Recorded in every result line so a change of generator is visible in old results.
inline constexpr const char* kGeneratorVersion = "starattn-eval/1 mt19937_64";

class Rng {
 public:
  explicit Rng(uint64_t seed) : engine_(seed) {}
  // An independent stream per (seed, task, length, sample index): a sample's content does not
  // depend on which other samples were made before it, so --resume and task order are harmless.
  static Rng for_stream(uint64_t seed, std::string_view task, int64_t length, int64_t index);

  uint64_t next() { return engine_(); }
  uint64_t below(uint64_t n);             // uniform in [0, n); n >= 1
  int64_t range(int64_t lo, int64_t hi);  // uniform in [lo, hi], both included
  // k distinct values of [0, n) in random order (Python's random.sample(range(n), k)).
  std::vector<int64_t> sample(int64_t n, int64_t k);

  template <typename T>
  void shuffle(std::vector<T>& v) {  // Fisher-Yates
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
  }
  template <typename T>
  const T& choice(const std::vector<T>& v) {
    return v[below(v.size())];
  }

 private:
  std::mt19937_64 engine_;
};

// RULER shuffles some lists with a fresh random.Random(42): the permutation depends only on the
// list's length. This keeps that property.
template <typename T>
void fixed_shuffle(std::vector<T>& v) {
  Rng r(42);
  r.shuffle(v);
}

}  // namespace starattn::eval
