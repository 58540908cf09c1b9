// A small random model whose attention the GPU kernels take (head_dim 64 or 128), with weights
// large enough that a wrong mask or merge moves the logits well past bf16 noise. Shared by the
// GPU tests and the multi-rank engine test's GPU run.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "model/loader.h"

namespace starattn::test {

inline Model random_model(int heads, int kv_heads, int head_dim, bool bias, bool tied,
                          uint64_t seed) {
  Model m;
  ModelConfig& c = m.config;
  c.arch = bias ? "qwen2" : "llama";
  c.n_layers = 2;
  c.d_model = 256 + 64 * (head_dim / 128);
  c.n_heads = heads;
  c.n_kv_heads = kv_heads;
  c.head_dim = head_dim;
  c.d_ffn = 384 + 96 * (head_dim / 128);
  c.vocab_size = 300 - 43 * (head_dim / 128);
  c.max_positions = 1 << 20;
  c.rope_theta = 500000.0f;
  c.rope_scaling.llama3 = head_dim == 128;
  c.rope_scaling.factor = 8.0f;
  c.rope_scaling.low_freq_factor = 1.0f;
  c.rope_scaling.high_freq_factor = 4.0f;
  c.rope_scaling.original_max_positions = 256;
  c.qkv_bias = bias;
  c.tied_embeddings = tied;
  std::mt19937 rng(static_cast<uint32_t>(seed));
  const auto r = [&](int64_t n, float sd, float mean = 0.0f) {
    std::normal_distribution<float> dist(mean, sd);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = dist(rng);
    return v;
  };
  const int64_t d = c.d_model, q = c.q_dim(), kv = c.kv_dim(), f = c.d_ffn;
  Weights& w = m.weights;
  const auto mat = [&](int64_t rows, int64_t cols, float sd) {
    return WeightMatrix::f32(r(rows * cols, sd), rows, cols);
  };
  w.tok_embd = mat(c.vocab_size, d, 0.5f);
  if (!tied) w.output = mat(c.vocab_size, d, 0.05f);
  w.output_norm = r(d, 0.1f, 1.0f);
  w.layers.resize(c.n_layers);
  for (LayerWeights& L : w.layers) {
    L.attn_norm = r(d, 0.1f, 1.0f);
    L.ffn_norm = r(d, 0.1f, 1.0f);
    L.wq = mat(q, d, 0.06f);
    L.wk = mat(kv, d, 0.06f);
    L.wv = mat(kv, d, 0.06f);
    if (bias) {
      L.bq = r(q, 0.2f);
      L.bk = r(kv, 0.2f);
      L.bv = r(kv, 0.2f);
    }
    L.wo = mat(d, q, 0.04f);
    L.w_gate = mat(f, d, 0.06f);
    L.w_up = mat(f, d, 0.06f);
    L.w_down = mat(d, f, 0.05f);
  }
  return m;
}

}  // namespace starattn::test
