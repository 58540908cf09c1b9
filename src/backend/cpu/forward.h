// The Llama-family forward pass on the CPU in fp32. Attention is not done here: each layer hands
// its rotated q, k, v (float) to an AttentionHook (backend/attention_hook.h).
#pragma once

#include <vector>

#include "backend/attention_hook.h"
#include "model/config.h"
#include "model/weights.h"

namespace starattn {

class CpuForward {
 public:
  CpuForward(const ModelConfig& config, const Weights& weights);

  // Runs n tokens at the given positions through every layer. When hidden_out is not null it
  // receives the final normalised hidden states of the last n_out rows: [n_out, d_model].
  void run(const int* tokens, const int* positions, int n, AttentionHook& hook, int n_out,
           float* hidden_out);

  // logits[n, vocab] = hidden[n, d_model] @ lm_head^T.
  void logits(const float* hidden, int n, float* out) const;

  const ModelConfig& config() const { return c_; }

 private:
  // run() on the threads it chose.
  void layers(const int* tokens, const int* positions, int n, AttentionHook& hook, int n_out,
              float* hidden_out);

  const ModelConfig& c_;
  const Weights& w_;
  std::vector<float> inv_freq_;  // [head_dim / 2]
};

}  // namespace starattn
