#include "eval/rng.h"

#include <limits>
#include <numeric>
#include <unordered_set>

#include "starattn/error.h"
#include "util/splitmix64.h"

namespace starattn::eval {
namespace {

// One SplitMix64 step from x: spreads a 64-bit value over all bits.
uint64_t mix(uint64_t x) {
  return splitmix64_at(x, 0);
}

}  // namespace

Rng Rng::for_stream(uint64_t seed, std::string_view task, int64_t length, int64_t index) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a over the task name
  for (char c : task) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  uint64_t s = mix(seed);
  s = mix(s ^ h);
  s = mix(s ^ static_cast<uint64_t>(length));
  s = mix(s ^ static_cast<uint64_t>(index));
  return Rng(s);
}

uint64_t Rng::below(uint64_t n) {
  SA_CHECK(n >= 1, "Rng::below(0)");
  // Rejection keeps the draw exactly uniform: drop the top partial copy of [0, n).
  const uint64_t limit =
      std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % n;
  uint64_t x;
  do {
    x = next();
  } while (x >= limit);
  return x % n;
}

int64_t Rng::range(int64_t lo, int64_t hi) {
  SA_CHECK(lo <= hi, "Rng::range: empty range [", lo, ", ", hi, "]");
  return lo + static_cast<int64_t>(below(static_cast<uint64_t>(hi - lo) + 1));
}

std::vector<int64_t> Rng::sample(int64_t n, int64_t k) {
  SA_CHECK(k >= 0 && k <= n, "cannot sample ", k, " distinct values from ", n);
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(k));
  if (n <= 4 * k + 64) {
    // Small populations: a partial Fisher-Yates over the whole range.
    std::vector<int64_t> pool(static_cast<size_t>(n));
    std::iota(pool.begin(), pool.end(), 0);
    for (int64_t i = 0; i < k; ++i) {
      const int64_t j = i + static_cast<int64_t>(below(static_cast<uint64_t>(n - i)));
      std::swap(pool[i], pool[j]);
      out.push_back(pool[i]);
    }
    return out;
  }
  // Large populations (a word list of 60K words, a few hundred draws): rejection of repeats.
  std::unordered_set<int64_t> seen;
  while (static_cast<int64_t>(out.size()) < k) {
    const int64_t x = static_cast<int64_t>(below(static_cast<uint64_t>(n)));
    if (seen.insert(x).second) out.push_back(x);
  }
  return out;
}

}  // namespace starattn::eval
