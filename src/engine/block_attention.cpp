#include "engine/block_attention.h"

#include <cmath>

namespace starattn {

AttnParams kv_attn_params(const ModelConfig& c, const void* q, const void* k, const void* v,
                          void* out, float* lse, int n, int64_t n_kv) {
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

BlockAttention::BlockAttention(Backend& backend, KvCache& cache, int64_t first_row,
                               const KvCache* prefix)
    : b_(backend),
      cache_(cache),
      first_row_(first_row),
      prefix_(prefix),
      lse_(backend),
      out2_(backend),
      lse2_(backend) {}

void BlockAttention::attend(int layer, int n, const void* q, const void* k, const void* v,
                            void* out) {
  const ModelConfig& c = b_.config();
  if (before_attend) before_attend(layer);
  const int64_t row = cache_.size();
  cache_.write(layer, row, n, k, v);
  if (on_kv) on_kv(layer, row, n, k, v);
  const bool has_prefix = prefix_ && prefix_->size() > 0;
  const size_t rows = static_cast<size_t>(n) * c.n_heads;
  if (has_prefix) lse_.reserve(rows * sizeof(float));

  AttnParams p =
      kv_attn_params(c, q, cache_.k_row(layer, first_row_), cache_.v_row(layer, first_row_), out,
                     has_prefix ? lse_.as<float>() : nullptr, n, row + n - first_row_);
  p.causal = true;
  p.causal_offset = row - first_row_;
  b_.attention(p);
  if (!has_prefix) return;

  out2_.reserve(rows * c.head_dim * dtype_bytes(b_.act_dtype()));
  lse2_.reserve(rows * sizeof(float));
  b_.attention(kv_attn_params(c, q, prefix_->k(layer), prefix_->v(layer), out2_.get(),
                              lse2_.as<float>(), n, prefix_->size()));
  b_.merge(out, lse_.as<float>(), out2_.get(), lse2_.as<float>(), n, c.n_heads, c.head_dim);
}

}  // namespace starattn
