// Sampling: greedy is argmax; seeded sampling is reproducible; top-k / top-p keep the right
// candidates; frequencies follow softmax(logits / temperature).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "engine/sampler.h"
#include "starattn/error.h"

namespace starattn {
namespace {

const std::vector<float> kLogits = {0.1f, 2.0f, -1.0f, 1.5f, 2.0f, 0.0f};

TEST(Sampler, GreedyIsArgmaxWithLowestIndexOnTies) {
  Sampler s({});
  EXPECT_EQ(s.sample(kLogits.data(), 6), 1);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> with_nan = {nan, 1.0f, 3.0f};
  EXPECT_EQ(argmax(with_nan.data(), 3), 2);
}

TEST(Sampler, SameSeedSameTokens) {
  SamplerOptions o{0.8f, 0, 1.0f, 42};
  Sampler a(o), b(o);
  std::vector<int> x, y;
  for (int i = 0; i < 200; ++i) {
    x.push_back(a.sample(kLogits.data(), 6));
    y.push_back(b.sample(kLogits.data(), 6));
  }
  EXPECT_EQ(x, y);
  o.seed = 43;
  Sampler c(o);
  std::vector<int> z;
  for (int i = 0; i < 200; ++i) z.push_back(c.sample(kLogits.data(), 6));
  EXPECT_NE(x, z);
}

TEST(Sampler, TopKAndTopPKeepOnlyTheBest) {
  Sampler k1({5.0f, 1, 1.0f, 1});
  Sampler k2({5.0f, 2, 1.0f, 1});
  for (int i = 0; i < 300; ++i) {
    EXPECT_EQ(k1.sample(kLogits.data(), 6), 1);
    const int t = k2.sample(kLogits.data(), 6);
    EXPECT_TRUE(t == 1 || t == 4) << t;  // the two tied best
  }
}

TEST(Sampler, FrequenciesFollowTheSoftmax) {
  const float temp = 0.7f;
  Sampler s({temp, 0, 1.0f, 7});
  const int n = 60000;
  std::vector<int> count(6, 0);
  for (int i = 0; i < n; ++i) count[s.sample(kLogits.data(), 6)]++;
  double z = 0;
  for (float l : kLogits) z += std::exp(l / temp);
  for (int i = 0; i < 6; ++i) {
    const double want = std::exp(kLogits[i] / temp) / z;
    EXPECT_NEAR(count[i] / static_cast<double>(n), want, 0.01) << "token " << i;
  }
}

TEST(Sampler, NucleusCutsTheTail) {
  // Probabilities at temperature 1: token 1 and 4 ~0.33 each, 3 ~0.2; top-p 0.7 keeps {1, 4, 3}.
  Sampler s({1.0f, 0, 0.7f, 3});
  for (int i = 0; i < 2000; ++i) {
    const int t = s.sample(kLogits.data(), 6);
    EXPECT_TRUE(t == 1 || t == 3 || t == 4) << t;
  }
}

TEST(Sampler, RejectsBadOptions) {
  EXPECT_THROW(Sampler({-1.0f, 0, 1.0f, 0}), Error);
  EXPECT_THROW(Sampler({1.0f, -2, 1.0f, 0}), Error);
  EXPECT_THROW(Sampler({1.0f, 0, 0.0f, 0}), Error);
  EXPECT_THROW(Sampler({1.0f, 0, 1.5f, 0}), Error);
  EXPECT_THROW(Sampler({std::numeric_limits<float>::infinity(), 0, 1.0f, 0}), Error);
}

}  // namespace
}  // namespace starattn
