#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "starattn/error.h"

namespace starattn {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Best first; equal logits by id, so every order below is deterministic.
bool better(const Sampler::Candidate& a, const Sampler::Candidate& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

float max_logit(const std::vector<Sampler::Candidate>& c) {
  float m = kNegInf;
  for (const Sampler::Candidate& x : c) m = std::max(m, x.logit);
  return m;
}

// exp(l - m), exactly 1 for the maximum itself (also when m is +inf).
double weight(float l, float m) {
  return l == m ? 1.0 : std::exp(static_cast<double>(l) - static_cast<double>(m));
}

// Top-p over candidates c (any order): sorts c best first and drops the tail whose probability
// adds up to at most 1 - top_p. Only the prefix that can matter is sorted: first 256, then 8x
// more while the kept mass has not reached top_p yet.
void cut_top_p(std::vector<Sampler::Candidate>& c, float top_p) {
  const size_t n = c.size();
  const float m = max_logit(c);
  double total = 0.0;
  for (const Sampler::Candidate& x : c) total += weight(x.logit, m);
  const double tail_limit = (1.0 - static_cast<double>(top_p)) * total;
  size_t sorted = std::min<size_t>(n, 256);
  for (;;) {
    std::partial_sort(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(sorted), c.end(), better);
    double before = 0.0;  // mass of the candidates ranked above i
    for (size_t i = 0; i < sorted; ++i) {
      // transformers removes a token when the mass of it and everything below it is
      // <= 1 - top_p; the best token always stays.
      if (i > 0 && total - before <= tail_limit) {
        c.resize(i);
        return;
      }
      before += weight(c[i].logit, m);
    }
    if (sorted == n) return;
    sorted = std::min(n, sorted * 8);
  }
}

// log sum_i exp(x_i) in double; NaN entries count as -inf.
double log_sum_exp(const float* x, int n) {
  float m = kNegInf;
  for (int i = 0; i < n; ++i)
    if (x[i] > m) m = x[i];
  if (!std::isfinite(m)) return m;
  double s = 0.0;
  for (int i = 0; i < n; ++i)
    if (!std::isnan(x[i])) s += std::exp(static_cast<double>(x[i]) - m);
  return m + std::log(s);
}

}  // namespace

void validate(const SamplerOptions& o) {
  SA_CHECK(o.temperature >= 0.0f && std::isfinite(o.temperature),
           "--temp must be a finite number >= 0, got ", o.temperature);
  SA_CHECK(o.top_k >= 0, "--top-k must be >= 0, got ", o.top_k);
  SA_CHECK(o.top_p > 0.0f && o.top_p <= 1.0f, "--top-p must be in (0, 1], got ", o.top_p);
  SA_CHECK(o.min_p >= 0.0f && o.min_p <= 1.0f, "--min-p must be in [0, 1], got ", o.min_p);
  SA_CHECK(o.repeat_penalty > 0.0f && std::isfinite(o.repeat_penalty),
           "--repeat-penalty must be a finite number > 0 (1 = off), got ", o.repeat_penalty);
  SA_CHECK(o.repeat_last_n >= 0, "--repeat-last-n must be >= 0 (0 = every token), got ",
           o.repeat_last_n);
}

Sampler::Sampler(const SamplerOptions& o) : o_(o), rng_(o.seed) {
  validate(o);
}

bool Sampler::is_plain_argmax() const {
  return o_.temperature == 0.0f && o_.repeat_penalty == 1.0f;
}

void Sampler::accept(int id) {
  SA_CHECK(id >= 0, "sampler: negative token id ", id);
  if (o_.repeat_penalty == 1.0f) return;  // nothing reads the window
  if (static_cast<size_t>(id) >= seen_.size()) seen_.resize(static_cast<size_t>(id) + 1, 0);
  ++seen_[static_cast<size_t>(id)];
  if (o_.repeat_last_n == 0) return;  // every token counts: no need to remember the order
  window_.push_back(id);
  if (static_cast<int>(window_.size()) > o_.repeat_last_n) {
    --seen_[static_cast<size_t>(window_.front())];
    window_.pop_front();
  }
}

std::vector<float> Sampler::penalized(const float* logits, int vocab) const {
  std::vector<float> s(logits, logits + vocab);
  const float p = o_.repeat_penalty;
  const size_t n = std::min(seen_.size(), static_cast<size_t>(vocab));
  for (size_t id = 0; id < n; ++id) {
    if (seen_[id] == 0) continue;
    s[id] = s[id] < 0.0f ? s[id] * p : s[id] / p;
  }
  return s;
}

std::vector<Sampler::Candidate> Sampler::candidates(const float* logits, int vocab) const {
  SA_CHECK(vocab > 0, "sampler: empty logits");
  std::vector<float> pen;
  const float* s = logits;
  if (o_.repeat_penalty != 1.0f) {
    pen = penalized(logits, vocab);
    s = pen.data();
  }
  if (o_.temperature == 0.0f) {
    const int id = argmax(s, vocab);
    return {{id, s[id]}};
  }
  std::vector<Candidate> c;
  c.reserve(static_cast<size_t>(vocab));
  for (int i = 0; i < vocab; ++i)
    if (!std::isnan(s[i])) c.push_back({i, s[i] / o_.temperature});
  if (c.empty()) return {{0, kNegInf}};  // nothing but NaN: a defined answer, not a crash

  if (o_.top_k > 0 && static_cast<size_t>(o_.top_k) < c.size()) {
    const auto kth = c.begin() + (o_.top_k - 1);
    std::nth_element(c.begin(), kth, c.end(), better);
    const float cut = kth->logit;
    std::erase_if(c, [cut](const Candidate& x) { return x.logit < cut; });
  }
  if (o_.top_p < 1.0f) cut_top_p(c, o_.top_p);
  if (o_.min_p > 0.0f) {
    const float m = max_logit(c);
    const double min_p = o_.min_p;
    std::erase_if(c, [&](const Candidate& x) { return weight(x.logit, m) < min_p; });
  }
  return c;
}

int Sampler::sample(const float* logits, int vocab) {
  const std::vector<Candidate> c = candidates(logits, vocab);
  if (o_.temperature == 0.0f) return c[0].id;
  const float m = max_logit(c);
  std::vector<double> w(c.size());
  double sum = 0.0;
  for (size_t i = 0; i < c.size(); ++i) sum += w[i] = weight(c[i].logit, m);
  std::uniform_real_distribution<double> u(0.0, sum);
  double r = u(rng_);
  for (size_t i = 0; i < c.size(); ++i) {
    r -= w[i];
    if (r <= 0.0 && w[i] > 0.0) return c[i].id;
  }
  // Rounding left r a hair above 0: the last candidate with any weight.
  for (size_t i = c.size(); i-- > 0;)
    if (w[i] > 0.0) return c[i].id;
  return c[0].id;
}

std::vector<TokenLogprob> top_logprobs(const float* logits, int vocab, int k) {
  SA_CHECK(vocab > 0, "top_logprobs: empty logits");
  SA_CHECK(k >= 0 && k <= vocab, "top_logprobs: k = ", k, " for a vocabulary of ", vocab);
  const double lse = log_sum_exp(logits, vocab);
  auto value = [&](int i) { return std::isnan(logits[i]) ? kNegInf : logits[i]; };
  std::vector<int> idx(static_cast<size_t>(vocab));
  std::iota(idx.begin(), idx.end(), 0);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int a, int b) {
    return value(a) > value(b) || (value(a) == value(b) && a < b);
  });
  std::vector<TokenLogprob> out(static_cast<size_t>(k));
  for (int i = 0; i < k; ++i)
    out[i] = {idx[i], static_cast<float>(static_cast<double>(value(idx[i])) - lse)};
  return out;
}

float token_logprob(const float* logits, int vocab, int id) {
  SA_CHECK(vocab > 0 && id >= 0 && id < vocab, "token_logprob: id ", id, " outside the vocab of ",
           vocab);
  if (std::isnan(logits[id])) return kNegInf;
  return static_cast<float>(static_cast<double>(logits[id]) - log_sum_exp(logits, vocab));
}

}  // namespace starattn
