// Weights of a Llama-family model in fp32, as the CPU backend computes with them.
// Every matrix is row-major [out_features, in_features], the Hugging Face (PyTorch Linear) layout.
// Q and K rows are in Hugging Face order: RoPE rotates pairs (i, i + head_dim/2) ("neox" style).
// The GGUF reader un-permutes llama-arch Q/K rows to reach this order, so one RoPE serves all.
#pragma once

#include <vector>

#include "model/config.h"

namespace starattn {

struct LayerWeights {
  std::vector<float> attn_norm;  // [d_model]
  std::vector<float> wq;         // [q_dim, d_model]
  std::vector<float> wk;         // [kv_dim, d_model]
  std::vector<float> wv;         // [kv_dim, d_model]
  std::vector<float> bq;         // [q_dim] or empty
  std::vector<float> bk;         // [kv_dim] or empty
  std::vector<float> bv;         // [kv_dim] or empty
  std::vector<float> wo;         // [d_model, q_dim]
  std::vector<float> ffn_norm;   // [d_model]
  std::vector<float> w_gate;     // [d_ffn, d_model]
  std::vector<float> w_up;       // [d_ffn, d_model]
  std::vector<float> w_down;     // [d_model, d_ffn]
};

struct Weights {
  std::vector<float> tok_embd;     // [vocab, d_model]
  std::vector<float> output_norm;  // [d_model]
  std::vector<float> output;       // [vocab, d_model]; empty when tied to tok_embd
  std::vector<LayerWeights> layers;

  const std::vector<float>& lm_head() const { return output.empty() ? tok_embd : output; }
};

}  // namespace starattn
