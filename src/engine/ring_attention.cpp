#include "engine/ring_attention.h"

#include <algorithm>
#include <limits>

#include "attention/merge.h"
#include "engine/block_attention.h"

namespace starattn {

void RingAttention::attend_pair(const float* q, const Span& qs, int64_t q_row, const float* k,
                                const float* v, const Span& ks, int64_t k_row, float* out) {
  if (qs.size() == 0 || ks.size() == 0 || ks.begin >= qs.end) return;  // all keys in the future
  const int hd = c_.head_dim, heads = c_.n_heads;
  const int64_t kv_dim = c_.kv_dim();
  const int n = static_cast<int>(qs.size());
  part_out_.resize(static_cast<size_t>(n) * heads * hd);
  part_lse_.resize(static_cast<size_t>(n) * heads);
  AttnParams p = kv_attn_params(c_, q + q_row * c_.q_dim(), k + k_row * kv_dim, v + k_row * kv_dim,
                                part_out_.data(), part_lse_.data(), n, ks.size());
  // Spans are disjoint position ranges: either the keys all precede the queries (no mask), or
  // they are the same span (ordinary causal mask).
  p.causal = ks.end > qs.begin;
  p.causal_offset = qs.begin - ks.begin;
  attention_cpu(p);
  merge_attention(out + q_row * c_.q_dim(), lse_.data() + q_row * heads, part_out_.data(),
                  part_lse_.data(), n, heads, hd);
}

void RingAttention::attend(int layer, int n, const float* q, const float* k, const float* v,
                           float* out) {
  const int ranks = comm_.size(), rank = comm_.rank();
  const int64_t kv_dim = c_.kv_dim();
  cache_.write(layer, 0, n, k, v);
  std::fill_n(out, static_cast<size_t>(n) * c_.q_dim(), 0.0f);
  lse_.assign(static_cast<size_t>(n) * c_.n_heads, -std::numeric_limits<float>::infinity());

  const std::vector<Span> mine = zigzag_spans(n_context_, ranks, rank);
  // The shard in flight: [K rows | V rows] of the rank it came from.
  shard_.resize(2 * static_cast<size_t>(n) * kv_dim);
  std::copy_n(k, static_cast<size_t>(n) * kv_dim, shard_.begin());
  std::copy_n(v, static_cast<size_t>(n) * kv_dim, shard_.begin() + static_cast<size_t>(n) * kv_dim);
  for (int step = 0; step < ranks; ++step) {
    const int src = (rank - step + ranks) % ranks;
    const std::vector<Span> theirs = zigzag_spans(n_context_, ranks, src);
    const int64_t rows = theirs[0].size() + theirs[1].size();
    const float* sk = shard_.data();
    const float* sv = shard_.data() + rows * kv_dim;
    attend_pair(q, mine[0], 0, sk, sv, theirs[0], 0, out);
    attend_pair(q, mine[0], 0, sk, sv, theirs[1], theirs[0].size(), out);
    attend_pair(q, mine[1], mine[0].size(), sk, sv, theirs[0], 0, out);
    attend_pair(q, mine[1], mine[0].size(), sk, sv, theirs[1], theirs[0].size(), out);
    if (step + 1 == ranks) break;
    const std::vector<Span> next = zigzag_spans(n_context_, ranks, (src - 1 + ranks) % ranks);
    incoming_.resize(2 * static_cast<size_t>(next[0].size() + next[1].size()) * kv_dim);
    comm_.sendrecv(shard_.data(), shard_.size() * sizeof(float), (rank + 1) % ranks,
                   incoming_.data(), incoming_.size() * sizeof(float), (rank - 1 + ranks) % ranks,
                   layer);
    shard_.swap(incoming_);
  }
}

}  // namespace starattn
