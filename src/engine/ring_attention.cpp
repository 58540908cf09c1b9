#include "engine/ring_attention.h"

#include "engine/block_attention.h"

namespace starattn {

RingAttention::RingAttention(Backend& backend, TensorComm& comm, KvCache& cache, int64_t n_context)
    : b_(backend),
      comm_(comm),
      cache_(cache),
      n_context_(n_context),
      lse_(backend),
      part_out_(backend),
      part_lse_(backend),
      shard_a_(backend),
      shard_b_(backend) {}

void RingAttention::attend_pair(const void* q, const Span& qs, int64_t q_row, const void* k,
                                const void* v, const Span& ks, int64_t k_row, void* out,
                                bool first) {
  if (qs.size() == 0 || ks.size() == 0 || ks.begin >= qs.end) return;  // all keys in the future
  const ModelConfig& c = b_.config();
  const size_t act = dtype_bytes(b_.act_dtype());
  const int n = static_cast<int>(qs.size());
  char* o = static_cast<char*>(out) + q_row * c.q_dim() * act;
  float* l = lse_.as<float>() + q_row * c.n_heads;
  const size_t row = cache_.row_bytes();
  AttnParams p =
      kv_attn_params(c, cache_.format(), static_cast<const char*>(q) + q_row * c.q_dim() * act,
                     static_cast<const char*>(k) + k_row * row,
                     static_cast<const char*>(v) + k_row * row, o, l, n, ks.size());
  // Spans are disjoint position ranges: either the keys all precede the queries (no mask), or
  // they are the same span (ordinary causal mask).
  p.causal = ks.end > qs.begin;
  p.causal_offset = qs.begin - ks.begin;
  if (first) {
    b_.attention(p);
    return;
  }
  part_out_.reserve(static_cast<size_t>(n) * c.q_dim() * act);
  part_lse_.reserve(static_cast<size_t>(n) * c.n_heads * sizeof(float));
  p.out = part_out_.get();
  p.lse = part_lse_.as<float>();
  b_.attention(p);
  b_.merge(o, l, part_out_.get(), part_lse_.as<float>(), n, c.n_heads, c.head_dim);
}

void RingAttention::attend(int layer, int n, const void* q, const void* k, const void* v,
                           void* out) {
  const ModelConfig& c = b_.config();
  const int ranks = comm_.size(), rank = comm_.rank();
  const int to = (rank + 1) % ranks, from = (rank - 1 + ranks) % ranks;
  const size_t row = cache_.row_bytes();
  cache_.write(layer, 0, n, k, v);
  // From here on this rank's keys are read back from the cache, as the cache holds them: the
  // shards travel and are attended to compressed when the cache is fp8, exactly as dense reads
  // its keys.
  k = cache_.k_row(layer, 0);
  v = cache_.v_row(layer, 0);
  lse_.reserve(static_cast<size_t>(n) * c.n_heads * sizeof(float));
  auto shard_bytes = [&](int r) {
    const std::vector<Span> s = zigzag_spans(n_context_, ranks, r);
    return 2 * (s[0].size() + s[1].size()) * row;
  };

  // The first shard to travel is this rank's own [K rows | V rows]; it leaves before the rank
  // attends to its own keys, so the first transfer overlaps that work.
  BackendBuffer* cur = &shard_a_;
  BackendBuffer* next = &shard_b_;
  if (ranks > 1) {
    cur->reserve(2 * n * row);
    b_.copy(cur->get(), k, n * row);
    b_.copy(cur->as<char>() + n * row, v, n * row);
    next->reserve(shard_bytes(from));
    comm_.start_exchange(cur->get(), 2 * n * row, to, next->get(), shard_bytes(from), from);
  }

  const std::vector<Span> mine = zigzag_spans(n_context_, ranks, rank);
  // Step 0, own keys: each span attends causally to itself (this always exists, so it writes the
  // result directly), then the later span sees all of the earlier one.
  attend_pair(q, mine[0], 0, k, v, mine[0], 0, out, true);
  attend_pair(q, mine[1], mine[0].size(), k, v, mine[1], mine[0].size(), out, true);
  attend_pair(q, mine[1], mine[0].size(), k, v, mine[0], 0, out, false);

  for (int step = 1; step < ranks; ++step) {
    comm_.wait_exchange();
    std::swap(cur, next);
    const int src = (rank - step + ranks) % ranks;  // whose shard `cur` now holds
    if (step + 1 < ranks) {
      // Pass it on while attending to it. `next` was last read by step - 1's attention, which is
      // queued before this exchange, so the exchange waits for it.
      const int src_next = (rank - step - 1 + ranks) % ranks;
      next->reserve(shard_bytes(src_next));
      comm_.start_exchange(cur->get(), shard_bytes(src), to, next->get(), shard_bytes(src_next),
                           from);
    }
    const std::vector<Span> theirs = zigzag_spans(n_context_, ranks, src);
    const int64_t rows = theirs[0].size() + theirs[1].size();
    const char* sk = cur->as<char>();
    const char* sv = sk + rows * row;
    for (int a = 0; a < 2; ++a) {
      const int64_t q_row = a == 0 ? 0 : mine[0].size();
      attend_pair(q, mine[a], q_row, sk, sv, theirs[0], 0, out, false);
      attend_pair(q, mine[a], q_row, sk, sv, theirs[1], theirs[0].size(), out, false);
    }
  }
}

}  // namespace starattn
