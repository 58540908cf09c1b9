#include "backend/backend.h"

#include "starattn/error.h"

namespace starattn {

int64_t Backend::kv_rows_that_fit(KvType kv_type, int max_tokens, size_t scratch_bytes) const {
  (void)max_tokens, (void)scratch_bytes;
  const size_t per_row =
      2 * static_cast<size_t>(config().n_layers) * kv_row_format(kv_type).row_bytes();
  return static_cast<int64_t>(memory_available() / per_row);
}

void Backend::attention_merge_items(const AttnParams& batch, const AttnItem* items, int n_items,
                                    void* scratch_out, float* scratch_lse) {
  SA_CHECK(batch.lse, "attention_merge_items: the batch needs an lse to merge into");
  const size_t act = dtype_bytes(act_dtype());
  const int64_t row = static_cast<int64_t>(batch.n_heads) * batch.head_dim;
  SA_CHECK(batch.out_stride == row,
           "attention_merge_items: out must be [rows, heads, head_dim] contiguous");
  for (int i = 0; i < n_items; ++i) {
    const AttnItem& it = items[i];
    if (it.n_q == 0) continue;
    AttnParams p = batch;
    p.q = static_cast<const char*>(batch.q) + it.q_row * batch.q_stride * act;
    p.k = it.k;
    p.v = it.v;
    p.n_q = it.n_q;
    p.n_kv = it.n_kv;
    p.out = scratch_out;
    p.out_stride = row;
    p.lse = scratch_lse;
    p.causal = true;
    p.causal_offset = it.causal_offset;
    p.n_kv_at = nullptr;
    attention(p);
    merge(static_cast<char*>(batch.out) + it.q_row * row * act,
          batch.lse + static_cast<int64_t>(it.q_row) * batch.n_heads, scratch_out, scratch_lse,
          it.n_q, batch.n_heads, batch.head_dim);
  }
}

}  // namespace starattn
