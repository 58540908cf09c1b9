#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "starattn/error.h"

namespace starattn {

Sampler::Sampler(const SamplerOptions& o) : o_(o), rng_(o.seed) {
  SA_CHECK(o.temperature >= 0.0f && std::isfinite(o.temperature),
           "--temp must be a finite number >= 0, got ", o.temperature);
  SA_CHECK(o.top_k >= 0, "--top-k must be >= 0, got ", o.top_k);
  SA_CHECK(o.top_p > 0.0f && o.top_p <= 1.0f, "--top-p must be in (0, 1], got ", o.top_p);
}

int Sampler::sample(const float* logits, int vocab) {
  if (o_.temperature == 0.0f) return argmax(logits, vocab);
  std::vector<int> idx(vocab);
  std::iota(idx.begin(), idx.end(), 0);
  // Candidates sorted by logit, best first; top-k keeps a prefix.
  int keep = (o_.top_k > 0) ? std::min(o_.top_k, vocab) : vocab;
  std::partial_sort(idx.begin(), idx.begin() + keep, idx.end(),
                    [&](int a, int b) { return logits[a] > logits[b]; });
  std::vector<double> prob(keep);
  const double m = logits[idx[0]];
  double sum = 0.0;
  for (int i = 0; i < keep; ++i) {
    prob[i] = std::exp((logits[idx[i]] - m) / o_.temperature);
    sum += prob[i];
  }
  // Nucleus: the smallest prefix whose probability reaches top_p (at least one token).
  if (o_.top_p < 1.0f) {
    double acc = 0.0;
    int cut = keep;
    for (int i = 0; i < keep; ++i) {
      acc += prob[i] / sum;
      if (acc >= o_.top_p) {
        cut = i + 1;
        break;
      }
    }
    keep = cut;
    sum = std::accumulate(prob.begin(), prob.begin() + keep, 0.0);
  }
  std::uniform_real_distribution<double> u(0.0, sum);
  double r = u(rng_);
  for (int i = 0; i < keep; ++i) {
    r -= prob[i];
    if (r <= 0.0) return idx[i];
  }
  return idx[keep - 1];
}

}  // namespace starattn
