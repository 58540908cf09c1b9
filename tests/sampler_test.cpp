// Sampling: the surviving candidates and their processed logits equal transformers' own logits
// processors (tests/fixtures/sampler/cases.json, from tools/make_sampler_fixtures.py); greedy is
// argmax after the repetition penalty; seeded sampling is reproducible; frequencies follow the
// softmax over the candidates; log-probabilities equal torch's log_softmax of the raw logits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <vector>

#include "engine/sampler.h"
#include "starattn/error.h"
#include "test_util.h"

namespace starattn {
namespace {

const std::vector<float> kLogits = {0.1f, 2.0f, -1.0f, 1.5f, 2.0f, 0.0f};

SamplerOptions options_of(const nlohmann::json& c) {
  SamplerOptions o;
  o.temperature = c["temperature"].get<float>();
  o.top_k = c["top_k"].get<int>();
  o.top_p = c["top_p"].get<float>();
  o.min_p = c["min_p"].get<float>();
  o.repeat_penalty = c["repeat_penalty"].get<float>();
  o.repeat_last_n = c["repeat_last_n"].get<int>();
  o.seed = 5;
  return o;
}

const nlohmann::json& fixture() {
  static const nlohmann::json j = test::read_json(test::fixture("sampler/cases.json"));
  return j;
}

// A sampler from a fixture case, having accepted the case's tokens.
Sampler sampler_of(const nlohmann::json& c) {
  Sampler s(options_of(c));
  for (int id : c["seen"].get<std::vector<int>>()) s.accept(id);
  return s;
}

TEST(Sampler, CandidatesMatchTransformers) {
  ASSERT_GE(fixture()["cases"].size(), 10u);
  for (const auto& c : fixture()["cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    const std::vector<float> logits = c["logits"].get<std::vector<float>>();
    const int vocab = static_cast<int>(logits.size());
    Sampler s = sampler_of(c);
    if (c.contains("argmax")) {
      EXPECT_EQ(s.sample(logits.data(), vocab), c["argmax"].get<int>());
      continue;
    }
    std::vector<Sampler::Candidate> got = s.candidates(logits.data(), vocab);
    std::sort(got.begin(), got.end(), [](auto& a, auto& b) { return a.id < b.id; });
    const auto& want = c["candidates"];
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].id, want[i][0].get<int>()) << "candidate " << i;
      // Same float32 operations as torch (one multiply or divide each): equal to the last bits.
      EXPECT_FLOAT_EQ(got[i].logit, want[i][1].get<float>()) << "token " << got[i].id;
    }
  }
}

TEST(Sampler, DrawsFollowTheSoftmaxOverTheCandidates) {
  for (const char* name : {"all_cuts_with_penalty", "min_p_after_top_k"}) {
    SCOPED_TRACE(name);
    const auto& cases = fixture()["cases"];
    const auto c =
        *std::find_if(cases.begin(), cases.end(), [&](const auto& x) { return x["name"] == name; });
    const std::vector<float> logits = c["logits"].get<std::vector<float>>();
    Sampler s = sampler_of(c);
    std::map<int, double> want;
    double z = 0;
    for (const auto& w : c["candidates"]) z += std::exp(w[1].get<double>());
    for (const auto& w : c["candidates"]) want[w[0].get<int>()] = std::exp(w[1].get<double>()) / z;
    const int n = 40000;
    std::map<int, int> count;
    for (int i = 0; i < n; ++i) count[s.sample(logits.data(), static_cast<int>(logits.size()))]++;
    for (const auto& [id, k] : count) EXPECT_TRUE(want.count(id)) << "drew a cut token " << id;
    for (const auto& [id, p] : want) EXPECT_NEAR(count[id] / double(n), p, 0.01) << "token " << id;
  }
}

TEST(Sampler, GreedyIsArgmaxWithLowestIndexOnTies) {
  Sampler s({});
  EXPECT_TRUE(s.is_plain_argmax());
  EXPECT_EQ(s.sample(kLogits.data(), 6), 1);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> with_nan = {nan, 1.0f, 3.0f};
  EXPECT_EQ(argmax(with_nan.data(), 3), 2);
}

TEST(Sampler, GreedyWithPenaltyAvoidsTheRepeatWithinTheWindow) {
  SamplerOptions o;
  o.repeat_penalty = 2.0f;
  o.repeat_last_n = 2;
  Sampler s(o);
  EXPECT_FALSE(s.is_plain_argmax());
  s.accept(1);
  s.accept(4);  // both tied best tokens penalised: 2.0 / 2 = 1.0 < 1.5 (token 3)
  EXPECT_EQ(s.sample(kLogits.data(), 6), 3);
  s.accept(0);  // token 1 leaves the two-token window
  EXPECT_EQ(s.sample(kLogits.data(), 6), 1);
  s.accept(2);
  s.accept(1);  // token 4 leaves it too, token 1 comes back
  EXPECT_EQ(s.sample(kLogits.data(), 6), 4);

  o.repeat_last_n = 0;  // every accepted token counts, however long ago
  Sampler all(o);
  all.accept(1);
  for (int i = 0; i < 500; ++i) all.accept(5);
  EXPECT_EQ(all.sample(kLogits.data(), 6), 4);
  EXPECT_THROW(all.accept(-1), Error);
}

TEST(Sampler, NegativeLogitsArePushedDownNotUp) {
  // -1.0 * 3 = -3.0: penalised token 2 goes from above token 5's -2.5 to below it.
  const std::vector<float> neg = {-4.0f, -5.0f, -1.0f, -6.0f, -7.0f, -2.5f};
  SamplerOptions o;
  o.repeat_penalty = 3.0f;
  Sampler s(o);
  s.accept(2);
  EXPECT_EQ(s.sample(neg.data(), 6), 5);
}

TEST(Sampler, SameSeedSameTokens) {
  SamplerOptions o{.temperature = 0.8f, .seed = 42};
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

TEST(Sampler, TopKKeepsTiesAtTheCut) {
  // transformers keeps every token at least as likely as the k-th: top-1 over a tie keeps both.
  Sampler k1({.temperature = 5.0f, .top_k = 1, .seed = 1});
  Sampler k3({.temperature = 5.0f, .top_k = 3, .seed = 1});
  std::map<int, int> n1, n3;
  for (int i = 0; i < 600; ++i) {
    n1[k1.sample(kLogits.data(), 6)]++;
    n3[k3.sample(kLogits.data(), 6)]++;
  }
  EXPECT_EQ(n1.size(), 2u);
  EXPECT_GT(n1[1], 200);
  EXPECT_GT(n1[4], 200);
  EXPECT_EQ(n3.size(), 3u);
  EXPECT_GT(n3[3], 100);
}

TEST(Sampler, FrequenciesFollowTheSoftmax) {
  const float temp = 0.7f;
  Sampler s({.temperature = temp, .seed = 7});
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

TEST(Sampler, NaNIsNeverDrawn) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> l = {nan, 0.0f, nan, 0.5f};
  Sampler s({.temperature = 1.0f, .seed = 2});
  for (int i = 0; i < 500; ++i) {
    const int t = s.sample(l.data(), 4);
    EXPECT_TRUE(t == 1 || t == 3) << t;
  }
}

TEST(Sampler, RejectsBadOptions) {
  const float inf = std::numeric_limits<float>::infinity();
  auto rejects = [](SamplerOptions o, const std::string& flag) {
    try {
      Sampler s(o);
      ADD_FAILURE() << flag << " accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(flag), std::string::npos) << e.what();
    }
  };
  rejects({.temperature = -1.0f}, "--temp");
  rejects({.temperature = inf}, "--temp");
  rejects({.top_k = -2}, "--top-k");
  rejects({.top_p = 0.0f}, "--top-p");
  rejects({.top_p = 1.5f}, "--top-p");
  rejects({.min_p = -0.1f}, "--min-p");
  rejects({.min_p = 1.01f}, "--min-p");
  rejects({.repeat_penalty = 0.0f}, "--repeat-penalty");
  rejects({.repeat_penalty = -1.0f}, "--repeat-penalty");
  rejects({.repeat_penalty = std::numeric_limits<float>::quiet_NaN()}, "--repeat-penalty");
  rejects({.repeat_last_n = -1}, "--repeat-last-n");
  EXPECT_NO_THROW(validate({.temperature = 1.0f, .top_p = 1.0f, .min_p = 1.0f}));
}

TEST(Logprobs, MatchTorchLogSoftmax) {
  for (const auto& lp : fixture()["logprobs"]) {
    SCOPED_TRACE(lp["case"].get<std::string>());
    const auto& cases = fixture()["cases"];
    const auto c = *std::find_if(cases.begin(), cases.end(),
                                 [&](const auto& x) { return x["name"] == lp["case"]; });
    const std::vector<float> logits = c["logits"].get<std::vector<float>>();
    const int vocab = static_cast<int>(logits.size());
    const int k = lp["k"].get<int>();
    const std::vector<TokenLogprob> top = top_logprobs(logits.data(), vocab, k);
    ASSERT_EQ(top.size(), static_cast<size_t>(k));
    for (int i = 0; i < k; ++i) {
      EXPECT_EQ(top[i].id, lp["top"][i][0].get<int>()) << "rank " << i;
      EXPECT_NEAR(top[i].logprob, lp["top"][i][1].get<double>(), 1e-5) << "rank " << i;
    }
    if (!lp.contains("all")) continue;
    for (int id = 0; id < vocab; ++id)
      EXPECT_NEAR(token_logprob(logits.data(), vocab, id), lp["all"][id].get<double>(), 1e-5);
  }
}

TEST(Logprobs, TiesAndNaNAndLimits) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> l = {1.0f, nan, 3.0f, 3.0f, 0.0f};
  const std::vector<TokenLogprob> top = top_logprobs(l.data(), 5, 5);
  ASSERT_EQ(top.size(), 5u);
  EXPECT_EQ(top[0].id, 2);  // the tie goes to the lower id
  EXPECT_EQ(top[1].id, 3);
  EXPECT_EQ(top[0].logprob, top[1].logprob);
  EXPECT_EQ(top[4].id, 1);  // NaN is -inf: last, with no probability
  EXPECT_EQ(top[4].logprob, -std::numeric_limits<float>::infinity());
  EXPECT_EQ(token_logprob(l.data(), 5, 1), -std::numeric_limits<float>::infinity());
  double mass = 0;
  for (const TokenLogprob& t : top) mass += std::exp(static_cast<double>(t.logprob));
  EXPECT_NEAR(mass, 1.0, 1e-6);
  EXPECT_TRUE(top_logprobs(l.data(), 5, 0).empty());
  EXPECT_THROW(top_logprobs(l.data(), 5, 6), Error);
  EXPECT_THROW(token_logprob(l.data(), 5, 5), Error);
}

}  // namespace
}  // namespace starattn
