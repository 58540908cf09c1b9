// SplitMix64 against outputs published by others: the first from state 0 (Vigna's reference
// splitmix64.c) and the stream from state 1234567 (Rosetta Code's "Pseudo-random numbers/
// Splitmix64" task).
#include "util/splitmix64.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace starattn {
namespace {

TEST(SplitMix64, PublishedStreams) {
  SplitMix64 zero{0};
  EXPECT_EQ(zero.next(), 0xE220A8397B1DCDAFull);
  SplitMix64 r{1234567};
  const std::vector<uint64_t> want = {6457827717110365317ull, 3203168211198807973ull,
                                      9817491932198370423ull, 4593380528125082431ull,
                                      16408922859458223821ull};
  for (uint64_t w : want) EXPECT_EQ(r.next(), w);
}

TEST(SplitMix64, CounterDrawIsTheStream) {
  SplitMix64 r{42};
  for (uint64_t i = 0; i < 8; ++i) EXPECT_EQ(splitmix64_at(42, i), r.next());
  static_assert(splitmix64_at(0, 0) == 0xE220A8397B1DCDAFull, "usable at compile time");
}

}  // namespace
}  // namespace starattn
