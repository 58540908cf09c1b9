// The Llama-family forward pass on the CPU in fp32. Attention is not done here: each layer hands
// its rotated q, k, v to an AttentionHook, so the engine decides which keys a token sees (dense
// causal, Star Attention's [anchor + block], phase 2 across ranks, ring). The backend knows nothing
// about Star Attention.
#pragma once

#include <vector>

#include "model/config.h"
#include "model/weights.h"

namespace starattn {

class AttentionHook {
 public:
  virtual ~AttentionHook() = default;
  // Called once per layer, in layer order, for the same n tokens.
  // q: [n, n_heads, head_dim]; k, v: [n, n_kv_heads, head_dim] (q and k already rotated).
  // Must write out: [n, n_heads, head_dim].
  virtual void attend(int layer, int n, const float* q, const float* k, const float* v,
                      float* out) = 0;
};

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
  const ModelConfig& c_;
  const Weights& w_;
  std::vector<float> inv_freq_;  // [head_dim / 2]
};

}  // namespace starattn
