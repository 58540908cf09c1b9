#include "engine/block_attention.h"

#include <cmath>

#include "attention/merge.h"

namespace starattn {

AttnParams kv_attn_params(const ModelConfig& c, const float* q, const float* k, const float* v,
                          float* out, float* lse, int n, int64_t n_kv) {
  AttnParams p;
  p.q = q;
  p.k = k;
  p.v = v;
  p.out = out;
  p.lse = lse;
  p.n_q = n;
  p.n_kv = static_cast<int>(n_kv);
  p.n_heads = c.n_heads;
  p.n_kv_heads = c.n_kv_heads;
  p.head_dim = c.head_dim;
  p.q_stride = c.q_dim();
  p.kv_stride = c.kv_dim();
  p.out_stride = c.q_dim();
  p.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  return p;
}

void BlockAttention::attend(int layer, int n, const float* q, const float* k, const float* v,
                            float* out) {
  const int64_t row = cache_.size();
  cache_.write(layer, row, n, k, v);
  if (on_kv) on_kv(layer, row, n, k, v);
  const bool has_prefix = prefix_ && prefix_->size() > 0;
  const size_t rows = static_cast<size_t>(n) * c_.n_heads;
  if (has_prefix) lse_.resize(rows);

  const int64_t kv_dim = c_.kv_dim();
  AttnParams p = kv_attn_params(c_, q, cache_.k(layer) + first_row_ * kv_dim,
                                cache_.v(layer) + first_row_ * kv_dim, out,
                                has_prefix ? lse_.data() : nullptr, n, row + n - first_row_);
  p.causal = true;
  p.causal_offset = row - first_row_;
  attention_cpu(p);
  if (!has_prefix) return;

  out2_.resize(rows * c_.head_dim);
  lse2_.resize(rows);
  attention_cpu(kv_attn_params(c_, q, prefix_->k(layer), prefix_->v(layer), out2_.data(),
                               lse2_.data(), n, prefix_->size()));
  merge_attention(out, lse_.data(), out2_.data(), lse2_.data(), n, c_.n_heads, c_.head_dim);
}

}  // namespace starattn
