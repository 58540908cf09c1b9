#include "backend/cpu/forward.h"

#include <algorithm>

#include "backend/cpu/ops.h"
#include "model/rope_freq.h"
#include "starattn/error.h"

namespace starattn {

CpuForward::CpuForward(const ModelConfig& config, const Weights& weights)
    : c_(config), w_(weights), inv_freq_(rope_inv_freq(config)) {}

void CpuForward::run(const int* tokens, const int* positions, int n, AttentionHook& hook, int n_out,
                     float* hidden_out) {
  if (n == 0) return;
  const int d = c_.d_model, qd = c_.q_dim(), kvd = c_.kv_dim(), f = c_.d_ffn;
  const int64_t nd = static_cast<int64_t>(n) * d;
  std::vector<float> x(nd), h(nd), q(static_cast<size_t>(n) * qd), k(static_cast<size_t>(n) * kvd),
      v(static_cast<size_t>(n) * kvd), att(static_cast<size_t>(n) * qd),
      gate(static_cast<size_t>(n) * f), up(static_cast<size_t>(n) * f);

  for (int i = 0; i < n; ++i) {
    SA_CHECK(tokens[i] >= 0 && tokens[i] < c_.vocab_size, "token id ", tokens[i],
             " is outside the vocabulary of ", c_.vocab_size);
    std::copy_n(w_.tok_embd.data() + static_cast<int64_t>(tokens[i]) * d, d,
                x.data() + static_cast<int64_t>(i) * d);
  }
  const cpu::RopeTable rope = cpu::rope_table(inv_freq_, positions, n);

  for (int l = 0; l < c_.n_layers; ++l) {
    const LayerWeights& L = w_.layers[l];
    cpu::rmsnorm(x.data(), L.attn_norm.data(), h.data(), n, d, c_.rms_eps);
    auto bias = [](const std::vector<float>& b) { return b.empty() ? nullptr : b.data(); };
    cpu::linear(h.data(), L.wq.data(), bias(L.bq), q.data(), n, d, qd);
    cpu::linear(h.data(), L.wk.data(), bias(L.bk), k.data(), n, d, kvd);
    cpu::linear(h.data(), L.wv.data(), bias(L.bv), v.data(), n, d, kvd);
    cpu::apply_rope(q.data(), rope, n, c_.n_heads, c_.head_dim);
    cpu::apply_rope(k.data(), rope, n, c_.n_kv_heads, c_.head_dim);
    hook.attend(l, n, q.data(), k.data(), v.data(), att.data());
    cpu::linear(att.data(), L.wo.data(), nullptr, h.data(), n, qd, d);
    cpu::add_inplace(x.data(), h.data(), nd);

    cpu::rmsnorm(x.data(), L.ffn_norm.data(), h.data(), n, d, c_.rms_eps);
    cpu::linear(h.data(), L.w_gate.data(), nullptr, gate.data(), n, d, f);
    cpu::linear(h.data(), L.w_up.data(), nullptr, up.data(), n, d, f);
    cpu::swiglu(gate.data(), up.data(), static_cast<int64_t>(n) * f);
    cpu::linear(gate.data(), L.w_down.data(), nullptr, h.data(), n, f, d);
    cpu::add_inplace(x.data(), h.data(), nd);
  }

  if (hidden_out) {
    SA_CHECK(n_out >= 0 && n_out <= n, "forward: asked for ", n_out, " rows of ", n);
    const int64_t first = static_cast<int64_t>(n - n_out) * d;
    cpu::rmsnorm(x.data() + first, w_.output_norm.data(), hidden_out, n_out, d, c_.rms_eps);
  }
}

void CpuForward::logits(const float* hidden, int n, float* out) const {
  cpu::linear(hidden, w_.lm_head().data(), nullptr, out, n, c_.d_model, c_.vocab_size);
}

}  // namespace starattn
