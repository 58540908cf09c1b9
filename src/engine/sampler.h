// Picks the next token from logits: greedy, or temperature / top-k / top-p with a seeded RNG
// (applied in that order, as Hugging Face's generate does).
#pragma once

#include <cstdint>
#include <random>

#include "backend/argmax.h"  // argmax: greedy

namespace starattn {

struct SamplerOptions {
  float temperature = 0.0f;  // 0 = greedy (argmax)
  int top_k = 0;             // 0 = no top-k cut
  float top_p = 1.0f;        // 1 = no nucleus cut
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplerOptions& o);
  // logits[vocab]; returns the chosen token id. Ties in greedy mode go to the lowest id.
  int sample(const float* logits, int vocab);

 private:
  SamplerOptions o_;
  std::mt19937_64 rng_;
};

}  // namespace starattn
