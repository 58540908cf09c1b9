#include "backend/cpu/forward.h"

#include <algorithm>

#include "backend/cpu/ops.h"
#include "backend/cpu/parallel.h"
#include "backend/cpu/quant_matmul.h"
#include "model/rope_freq.h"
#include "starattn/error.h"

namespace starattn {

CpuForward::CpuForward(const ModelConfig& config, const Weights& weights)
    : c_(config), w_(weights), inv_freq_(rope_inv_freq(config)) {
  const int64_t d = c_.d_model, q = c_.q_dim(), kv = c_.kv_dim(), f = c_.d_ffn;
  const auto check = [](const WeightMatrix& m, int64_t rows, int64_t cols, const char* what) {
    SA_CHECK(m.rows() == rows && m.cols() == cols, "cpu backend: weight ", what, " is [", m.rows(),
             ", ", m.cols(), "], the config implies [", rows, ", ", cols, "]");
  };
  // No weights at all is an attention-only backend (its forward is never run); anything else must
  // be the config's shape, since the kernels take their sizes from the matrices.
  if (w_.layers.empty() && w_.tok_embd.empty()) return;
  SA_CHECK(static_cast<int>(w_.layers.size()) == c_.n_layers, "cpu backend: ", w_.layers.size(),
           " layers of weights for a ", c_.n_layers, "-layer model");
  check(w_.tok_embd, c_.vocab_size, d, "tok_embd");
  check(w_.lm_head(), c_.vocab_size, d, "output");
  for (const LayerWeights& L : w_.layers) {
    check(L.wq, q, d, "wq");
    check(L.wk, kv, d, "wk");
    check(L.wv, kv, d, "wv");
    check(L.wo, d, q, "wo");
    check(L.w_gate, f, d, "w_gate");
    check(L.w_up, f, d, "w_up");
    check(L.w_down, d, f, "w_down");
  }
}

void CpuForward::run(const int* tokens, const int* positions, int n, AttentionHook& hook, int n_out,
                     float* hidden_out) {
  if (n == 0) return;
  // A decode step is a long series of short loops: one thread team for all of them
  // (cpu/parallel.h). Prefill's loops are long enough for a team each.
  if (n <= cpu::kGemvMaxRows) {
    cpu::with_team([&] { layers(tokens, positions, n, hook, n_out, hidden_out); });
  } else {
    layers(tokens, positions, n, hook, n_out, hidden_out);
  }
}

void CpuForward::layers(const int* tokens, const int* positions, int n, AttentionHook& hook,
                        int n_out, float* hidden_out) {
  const int d = c_.d_model, qd = c_.q_dim(), kvd = c_.kv_dim(), f = c_.d_ffn;
  const int64_t nd = static_cast<int64_t>(n) * d;
  std::vector<float> x(nd), h(nd), q(static_cast<size_t>(n) * qd), k(static_cast<size_t>(n) * kvd),
      v(static_cast<size_t>(n) * kvd), att(static_cast<size_t>(n) * qd),
      gate(static_cast<size_t>(n) * f), up(static_cast<size_t>(n) * f);

  for (int i = 0; i < n; ++i) {
    SA_CHECK(tokens[i] >= 0 && tokens[i] < c_.vocab_size, "token id ", tokens[i],
             " is outside the vocabulary of ", c_.vocab_size);
    w_.tok_embd.dequantize_rows(tokens[i], 1, x.data() + static_cast<int64_t>(i) * d);
  }
  const cpu::RopeTable rope = cpu::rope_table(inv_freq_, positions, n);

  for (int l = 0; l < c_.n_layers; ++l) {
    const LayerWeights& L = w_.layers[l];
    cpu::rmsnorm(x.data(), L.attn_norm.data(), h.data(), n, d, c_.rms_eps);
    auto bias = [](const std::vector<float>& b) { return b.empty() ? nullptr : b.data(); };
    cpu::linear_group(h.data(),
                      {{&L.wq, bias(L.bq), q.data()},
                       {&L.wk, bias(L.bk), k.data()},
                       {&L.wv, bias(L.bv), v.data()}},
                      n);
    cpu::apply_rope(q.data(), rope, n, c_.n_heads, c_.head_dim);
    cpu::apply_rope(k.data(), rope, n, c_.n_kv_heads, c_.head_dim);
    hook.attend(l, n, q.data(), k.data(), v.data(), att.data());
    cpu::linear(att.data(), L.wo, nullptr, h.data(), n);
    cpu::add_inplace(x.data(), h.data(), nd);

    cpu::rmsnorm(x.data(), L.ffn_norm.data(), h.data(), n, d, c_.rms_eps);
    cpu::linear_group(h.data(), {{&L.w_gate, nullptr, gate.data()}, {&L.w_up, nullptr, up.data()}},
                      n);
    cpu::swiglu(gate.data(), up.data(), static_cast<int64_t>(n) * f);
    cpu::linear(gate.data(), L.w_down, nullptr, h.data(), n);
    cpu::add_inplace(x.data(), h.data(), nd);
  }

  if (hidden_out) {
    SA_CHECK(n_out >= 0 && n_out <= n, "forward: asked for ", n_out, " rows of ", n);
    const int64_t first = static_cast<int64_t>(n - n_out) * d;
    cpu::rmsnorm(x.data() + first, w_.output_norm.data(), hidden_out, n_out, d, c_.rms_eps);
  }
}

void CpuForward::logits(const float* hidden, int n, float* out) const {
  cpu::linear(hidden, w_.lm_head(), nullptr, out, n);
}

}  // namespace starattn
