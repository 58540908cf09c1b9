#include "engine/batch_phase2.h"

#include <algorithm>

#include "starattn/error.h"

namespace starattn {

BatchPhase2::BatchPhase2(Backend& backend, TensorComm& comm, bool share_context)
    : b_(backend),
      comm_(comm),
      share_context_(share_context),
      packed_(backend),
      gathered_(backend),
      lse_(backend),
      own_out_(backend),
      own_lse_(backend) {}

void BatchPhase2::begin(std::vector<SeqStep> seqs) {
  rows_ = 0;
  for (const SeqStep& s : seqs) {
    SA_CHECK(s.context && s.n > 0, "batch step: a sequence without a context or tokens");
    SA_CHECK(!s.own || s.own->size() + s.n <= s.own->capacity(), "batch step: a sequence's KV has ",
             s.own ? s.own->capacity() : 0, " rows, ", s.own ? s.own->size() + s.n : 0,
             " needed");
    rows_ += s.n;
  }
  seqs_ = std::move(seqs);
}

void BatchPhase2::end() {
  for (SeqStep& s : seqs_) {
    if (s.own) s.own->commit(s.n);
  }
  seqs_.clear();
  rows_ = 0;
}

void BatchPhase2::attend(int layer, int n, const void* q, const void* k, const void* v,
                         void* out) {
  SA_CHECK(n == rows_, "batch step: forward ran ", n, " rows, the step has ", rows_);
  const ModelConfig& c = b_.config();
  const size_t act = dtype_bytes(b_.act_dtype());
  const int heads = c.n_heads, hd = c.head_dim, ranks = comm_.size();
  const size_t q_row = static_cast<size_t>(c.q_dim()) * act;   // bytes of one row of q and out
  const size_t kv_row = static_cast<size_t>(c.kv_dim()) * act;  // bytes of a row of the new k, v
  const size_t out_bytes = static_cast<size_t>(n) * q_row;
  const size_t lse_bytes = static_cast<size_t>(n) * heads * sizeof(float);
  const size_t each = out_bytes + lse_bytes;  // out_bytes is a multiple of 4: lse stays aligned
  // With several ranks the partials are built in place in the allgather's send buffer
  // [out | lse]; alone, out is the layer's output and only the lse needs scratch.
  char* my_out = static_cast<char*>(out);
  float* my_lse = nullptr;
  if (ranks > 1) {
    packed_.reserve(each);
    my_out = packed_.as<char>();
    my_lse = reinterpret_cast<float*>(packed_.as<char>() + out_bytes);
  } else {
    lse_.reserve(lse_bytes);
    my_lse = lse_.as<float>();
  }
  const auto* qc = static_cast<const char*>(q);
  const auto* kc = static_cast<const char*>(k);
  const auto* vc = static_cast<const char*>(v);

  // Context part: one call per run of sequences on the same context, over that context's shard.
  for (size_t i = 0, row = 0; i < seqs_.size();) {
    const KvCache* ctx = seqs_[i].context;
    size_t j = i, rows = 0;
    for (; j < seqs_.size() && seqs_[j].context == ctx && (share_context_ || j == i); ++j)
      rows += seqs_[j].n;
    b_.attention(kv_attn_params(c, *ctx, layer, 0, qc + row * q_row, my_out + row * q_row,
                                my_lse + row * heads, static_cast<int>(rows), ctx->size()));
    row += rows;
    i = j;
  }
  // Own part (query host): causal over the sequence's earlier tokens and these, all sequences
  // in one batch call merged into the context part.
  items_.clear();
  int widest = 0;
  const KvCache* first_own = nullptr;  // the items share one batch's KV format
  for (size_t i = 0, row = 0; i < seqs_.size(); row += seqs_[i].n, ++i) {
    const SeqStep& s = seqs_[i];
    if (!s.own) continue;
    if (!first_own) first_own = s.own;
    SA_CHECK(s.own->type() == first_own->type(),
             "batch step: sequences with different KV types in one step");
    const int64_t past = s.own->size();
    s.own->write(layer, past, s.n, kc + row * kv_row, vc + row * kv_row);
    AttnItem it;
    it.k = s.own->k(layer);
    it.v = s.own->v(layer);
    it.q_row = static_cast<int>(row);
    it.n_q = s.n;
    it.n_kv = static_cast<int>(past + s.n);
    it.causal_offset = past;
    items_.push_back(it);
    widest = std::max(widest, s.n);
  }
  if (!items_.empty()) {
    const size_t part_rows = static_cast<size_t>(widest) * heads;
    own_out_.reserve(part_rows * hd * act);
    own_lse_.reserve(part_rows * sizeof(float));
    AttnParams batch =
        kv_attn_params(c, first_own->format(), q, nullptr, nullptr, my_out, my_lse, n, 0);
    b_.attention_merge_items(batch, items_.data(), static_cast<int>(items_.size()),
                             own_out_.get(), own_lse_.as<float>());
  }
  if (ranks == 1) return;

  // Everyone's partials, merged over the ranks in order in one pass, so every rank ends with the
  // same bits.
  gathered_.reserve(each * ranks);
  comm_.allgather(packed_.get(), gathered_.get(), each);
  b_.merge_parts(out, nullptr, gathered_.get(), each, ranks, n, heads, hd);
}

}  // namespace starattn
