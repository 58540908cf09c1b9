// The device argmax and sampling ops (backend/cuda/sampling.h) against the host Sampler's
// arithmetic (engine/sampler.h) on the same logits and the same uniform draws.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "backend/cuda/sampling.h"
#include "cuda/cuda_test_util.h"
#include "engine/sampler.h"
#include "test_util.h"

namespace starattn {
namespace {

using test::DevBuf;

TEST(CudaSampling, Argmax) {
  SA_REQUIRE_GPU();
  std::mt19937 rng(8);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int vocab : {1, 37, 49152, 128256}) {
    const int n = 5;
    std::vector<float> x = test::random_vec(size_t{1} * n * vocab, rng);
    if (vocab > 2) {
      x[1] = 50.0f;  // row 0: a tie, the lower index wins
      x[vocab - 1] = 50.0f;
      x[vocab + 0] = nan;  // row 1: NaN never wins
      x[vocab + 2] = 60.0f;
      x[vocab + 1] = nan;
    }
    DevBuf<float> dx(x);
    DevBuf<int> out(n);
    cuda::argmax({dx.get(), vocab, n, vocab, out.get()}, nullptr);
    const std::vector<int> got = out.host();
    for (int i = 0; i < n; ++i)
      EXPECT_EQ(got[i], argmax(x.data() + int64_t{i} * vocab, vocab))
          << "row " << i << " of " << vocab;
  }
}

// Sampler::sample's arithmetic with its draw replaced by u: the device op's definition.
int host_sample(const float* logits, int vocab, float temp, int top_k, float top_p, double u) {
  std::vector<int> idx(vocab);
  std::iota(idx.begin(), idx.end(), 0);
  int keep = top_k > 0 ? std::min(top_k, vocab) : vocab;
  std::partial_sort(idx.begin(), idx.begin() + keep, idx.end(),
                    [&](int a, int b) { return logits[a] > logits[b]; });
  std::vector<double> prob(keep);
  const double m = logits[idx[0]];
  double sum = 0.0;
  for (int i = 0; i < keep; ++i) sum += prob[i] = std::exp((logits[idx[i]] - m) / temp);
  if (top_p < 1.0f) {
    double acc = 0.0;
    int cut = keep;
    for (int i = 0; i < keep; ++i) {
      acc += prob[i] / sum;
      if (acc >= top_p) {
        cut = i + 1;
        break;
      }
    }
    keep = cut;
    sum = std::accumulate(prob.begin(), prob.begin() + keep, 0.0);
  }
  double r = u * sum;
  for (int i = 0; i < keep; ++i) {
    r -= prob[i];
    if (r <= 0.0) return idx[i];
  }
  return idx[keep - 1];
}

TEST(CudaSampling, SampleTemperatureTopKTopP) {
  SA_REQUIRE_GPU();
  std::mt19937 rng(9);
  const int vocab = 50000, n = 48;
  // Distinct logits (no ties at a cut), spread like a model's.
  const std::vector<float> x = test::random_vec(size_t{1} * n * vocab, rng, 3.0f);
  DevBuf<float> dx(x);
  struct Case {
    float temp;
    int top_k;
    float top_p;
  };
  int differ = 0, total = 0;
  for (Case c : {Case{1.0f, 0, 1.0f}, Case{0.7f, 40, 1.0f}, Case{1.3f, 0, 0.9f},
                 Case{0.8f, 50, 0.5f}, Case{1.0f, 1, 1.0f}, Case{2.0f, 0, 0.05f}}) {
    DevBuf<int> out(n);
    cuda::SampleParams p;
    p.logits = dx.get();
    p.stride = vocab;
    p.n = n;
    p.vocab = vocab;
    p.temperature = c.temp;
    p.top_k = c.top_k;
    p.top_p = c.top_p;
    p.seed = 1234 + total;
    p.out = out.get();
    cuda::sample(p, nullptr);
    const std::vector<int> got = out.host();
    for (int i = 0; i < n; ++i) {
      const int want = host_sample(x.data() + int64_t{i} * vocab, vocab, c.temp, c.top_k, c.top_p,
                                   cuda::sample_uniform(p.seed, i));
      differ += got[i] != want;
      EXPECT_EQ(got[i], want) << "row " << i << " T " << c.temp << " k " << c.top_k << " p "
                              << c.top_p;
    }
    total += n;
  }
  EXPECT_EQ(differ, 0) << "of " << total;
  // Rows of the sample spread over several tokens (the draw depends on the row).
  DevBuf<int> out(n);
  cuda::SampleParams p;
  p.logits = dx.get();
  p.stride = 0;  // every row is row 0
  p.n = n;
  p.vocab = vocab;
  p.temperature = 5.0f;
  p.out = out.get();
  cuda::sample(p, nullptr);
  std::vector<int> got = out.host();
  std::sort(got.begin(), got.end());
  EXPECT_GT(std::unique(got.begin(), got.end()) - got.begin(), 10);
}

}  // namespace
}  // namespace starattn
