#include "engine/phase2.h"

#include <algorithm>
#include <chrono>

#include "attention/merge.h"
#include "engine/block_attention.h"

namespace starattn {

void Phase2Attention::attend(int layer, int n, const float* q, const float* k, const float* v,
                             float* out) {
  const int hd = c_.head_dim, heads = c_.n_heads;
  const size_t rows = static_cast<size_t>(n) * heads;
  lse_.resize(rows);
  // Context: every key visible (causal = false). This is where the public reference went wrong:
  // a bottom-right causal mask here hides the last keys of the block from early query rows.
  attention_cpu(kv_attn_params(c_, q, context_.k(layer), context_.v(layer), out, lse_.data(), n,
                               context_.size()));
  if (query_kv_) {
    const int64_t past = query_kv_->size();
    query_kv_->write(layer, past, n, k, v);
    out2_.resize(rows * hd);
    lse2_.resize(rows);
    AttnParams p = kv_attn_params(c_, q, query_kv_->k(layer), query_kv_->v(layer), out2_.data(),
                                  lse2_.data(), n, past + n);
    p.causal = true;
    p.causal_offset = past;
    attention_cpu(p);
    merge_attention(out, lse_.data(), out2_.data(), lse2_.data(), n, heads, hd);
  }
  const int ranks = comm_.size();
  if (ranks == 1) return;

  // Pack [out | lse] per rank, gather everyone's, merge in rank order.
  const size_t each = rows * hd + rows;
  packed_.resize(each);
  std::copy_n(out, rows * hd, packed_.begin());
  std::copy_n(lse_.begin(), rows, packed_.begin() + rows * hd);
  gathered_.resize(each * ranks);
  const auto t0 = std::chrono::steady_clock::now();
  comm_.allgather(packed_.data(), gathered_.data(), each * sizeof(float));
  comm_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::copy_n(gathered_.begin(), rows * hd, out);
  std::copy_n(gathered_.begin() + rows * hd, rows, lse_.begin());
  for (int r = 1; r < ranks; ++r) {
    const float* part = gathered_.data() + each * r;
    merge_attention(out, lse_.data(), part, part + rows * hd, n, heads, hd);
  }
}

}  // namespace starattn
