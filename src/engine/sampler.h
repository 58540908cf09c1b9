// Picks the next token from logits, with the logits processors of Hugging Face transformers'
// generate(), in its order:
//
//   repetition penalty -> temperature -> top-k -> top-p -> min-p -> draw (seeded RNG)
//
// Greedy (temperature 0) is the argmax after the repetition penalty; the other steps cannot
// change it. Every step has transformers' meaning (tests/fixtures/sampler/ holds its own output,
// from tools/make_sampler_fixtures.py):
//   - repetition penalty (RepetitionPenaltyLogitsProcessor): a token seen among the last
//     repeat_last_n accepted tokens (0 = all of them; each counted once) has its logit divided by
//     the penalty when positive and multiplied by it otherwise. The window is llama.cpp's; the
//     tokens are whatever the caller accept()s: generate() accepts the prompt (context and
//     query) and every generated token, as transformers and llama.cpp both do.
//   - temperature: logits / temperature.
//   - top-k: keeps every token whose logit is at least the k-th largest (ties at the cut stay).
//   - top-p: removes the least likely tokens whose probabilities (over what top-k kept) add up to
//     at most 1 - top_p, keeping at least one.
//   - min-p: removes tokens less likely than min_p times the most likely one.
#pragma once

#include <cstdint>
#include <deque>
#include <random>
#include <vector>

#include "backend/argmax.h"  // argmax: greedy

namespace starattn {

struct SamplerOptions {
  float temperature = 0;     // 0 = greedy (argmax)
  int top_k = 0;             // 0 = no top-k cut
  float top_p = 1;           // in (0, 1]; 1 = no nucleus cut
  float min_p = 0;           // in [0, 1]; 0 = no min-p cut
  float repeat_penalty = 1;  // > 0; 1 = none, > 1 discourages repeats, < 1 encourages them
  int repeat_last_n = 64;    // tokens the penalty looks back over; 0 = all accepted tokens
  uint64_t seed = 0;
};

// Throws Error naming the flag (--temp, --top-k, --top-p, --min-p, --repeat-penalty,
// --repeat-last-n) of the first value out of range.
void validate(const SamplerOptions& o);

class Sampler {
 public:
  explicit Sampler(const SamplerOptions& o);  // validates o
  // logits: [vocab]; returns the chosen token id. Greedy ties go to the lowest id.
  int sample(const float* logits, int vocab);
  // Records a token (prompt or generated) for the repetition penalty.
  void accept(int id);

  // True when sample() is the plain argmax of the raw logits (greedy without a penalty), so the
  // caller may let the device pick instead (Engine::run_greedy).
  bool is_plain_argmax() const;

  struct Candidate {
    int id;
    float logit;  // after the penalty and the temperature
  };
  // The tokens that survive every cut, with their processed logits: the distribution sample()
  // draws from (softmax over these). Best first when a cut needed sorting, else by id. Greedy
  // options give the one argmax token. NaN logits never survive.
  std::vector<Candidate> candidates(const float* logits, int vocab) const;

 private:
  // Logits after the repetition penalty, [vocab].
  std::vector<float> penalized(const float* logits, int vocab) const;

  SamplerOptions o_;
  std::mt19937_64 rng_;
  std::deque<int> window_;  // the last repeat_last_n accepted ids (all, when repeat_last_n = 0)
  std::vector<int> seen_;   // [max id + 1] how often each id occurs in window_
};

// Log-probabilities of the model's own distribution: the natural log of the softmax of the raw
// logits, before the repetition penalty, temperature or any cut (what OpenAI's API reports as
// `logprobs`). NaN logits count as -inf.
struct TokenLogprob {
  int id = -1;
  float logprob = 0;
};
inline constexpr int kMaxTopLogprobs = 20;  // OpenAI's limit for top_logprobs
// The k most likely tokens (k <= vocab), best first, ties to the lower id. logits: [vocab].
std::vector<TokenLogprob> top_logprobs(const float* logits, int vocab, int k);
// The log-probability of one token. logits: [vocab].
float token_logprob(const float* logits, int vocab, int id);

}  // namespace starattn
