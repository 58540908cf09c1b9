#include "engine/block_attention.h"

namespace starattn {

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
  if (on_kv) on_kv(layer, row, n, cache_.k_row(layer, row), cache_.v_row(layer, row));
  const bool has_prefix = prefix_ && prefix_->size() > 0;
  const size_t rows = static_cast<size_t>(n) * c.n_heads;
  if (has_prefix) lse_.reserve(rows * sizeof(float));

  // The segment's keys, the new ones included, are read back from the cache: attention sees
  // every key as the cache holds it (quantised in an fp8 cache), however the segment was chunked.
  AttnParams p = kv_attn_params(c, cache_, layer, first_row_, q, out,
                                has_prefix ? lse_.as<float>() : nullptr, n, row + n - first_row_);
  p.causal = true;
  p.causal_offset = row - first_row_;
  b_.attention(p);
  if (!has_prefix) return;

  out2_.reserve(rows * c.head_dim * dtype_bytes(b_.act_dtype()));
  lse2_.reserve(rows * sizeof(float));
  b_.attention(
      kv_attn_params(c, *prefix_, layer, 0, q, out2_.get(), lse2_.as<float>(), n, prefix_->size()));
  b_.merge(out, lse_.as<float>(), out2_.get(), lse2_.as<float>(), n, c.n_heads, c.head_dim);
}

}  // namespace starattn
