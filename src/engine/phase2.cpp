#include "engine/phase2.h"

#include <atomic>

#include "engine/block_attention.h"
#include "starattn/error.h"

namespace starattn {
namespace {
std::atomic<uint64_t> next_replay_key{1};
}  // namespace

Phase2Attention::Phase2Attention(Backend& backend, TensorComm& comm, const KvCache& context,
                                 KvCache* query_kv, bool replayable)
    : b_(backend),
      comm_(comm),
      context_(context),
      query_kv_(query_kv),
      replayable_(replayable && comm.size() == 1 && query_kv != nullptr),
      key_(next_replay_key++),
      packed_(backend),
      gathered_(backend),
      step_(backend) {}

void Phase2Attention::begin(int n) {
  // The query keys continue the context's rows; a gap of unwritten rows would be attended to.
  SA_CHECK(context_.size() == context_.capacity(), "phase 2: the context has ", context_.size(),
           " of its ", context_.capacity(), " rows encoded");
  dynamic_ = replayable_ && n == 1;
  if (!dynamic_) return;
  const int64_t past = query_kv_->size();
  SA_CHECK(past + n <= query_kv_->capacity(), "KV cache full: ", past + n,
           " query tokens needed, capacity ", query_kv_->capacity());
  const int at[2] = {static_cast<int>(past), static_cast<int>(context_.size() + past + n)};
  step_.reserve(sizeof at);
  b_.from_host(step_.get(), at, sizeof at);
}

void Phase2Attention::attend(int layer, int n, const void* q, const void* k, const void* v,
                             void* out) {
  const ModelConfig& c = b_.config();
  const int hd = c.head_dim, heads = c.n_heads, ranks = comm_.size();
  const size_t rows = static_cast<size_t>(n) * heads;
  const size_t out_bytes = rows * hd * dtype_bytes(b_.act_dtype());
  const size_t lse_bytes = rows * sizeof(float);
  const size_t each = out_bytes + lse_bytes;  // out_bytes is a multiple of 4: lse stays aligned
  // With several ranks this rank's partial is built in place in the allgather's send buffer
  // [out | lse]; alone, it is the layer's output and needs no lse.
  void* my_out = out;
  float* my_lse = nullptr;
  if (ranks > 1) {
    packed_.reserve(each);
    my_out = packed_.get();
    my_lse = reinterpret_cast<float*>(packed_.as<char>() + out_bytes);
  }
  const int64_t ctx = context_.size();
  // Context keys: every one visible. This is where the public reference went wrong: a
  // bottom-right causal mask here hides the last keys of the block from early query rows.
  AttnParams p = kv_attn_params(c, context_, layer, 0, q, my_out, my_lse, n, ctx);
  if (query_kv_ && dynamic_) {
    // One token: it sees every key, its own included; its row and the count come from step_.
    const int* at = step_.as<int>();
    b_.write_kv_rows_at(query_kv_->mutable_k_row(layer, 0, 0),
                        query_kv_->mutable_v_row(layer, 0, 0), query_kv_->format(), at, k, v, n);
    p.n_kv = static_cast<int>(ctx + query_kv_->capacity());
    p.n_kv_at = at + 1;
  } else if (query_kv_) {
    // Query keys follow the context's: causal over them is a causal mask offset by ctx + past.
    const int64_t past = query_kv_->size();
    query_kv_->write(layer, past, n, k, v);
    p.n_kv = static_cast<int>(ctx + past + n);
    p.causal = true;
    p.causal_offset = ctx + past;
  }
  b_.attention(p);
  if (ranks == 1) return;

  // Everyone's partials, merged over the ranks in order in one pass, so every rank ends with the
  // same bits.
  gathered_.reserve(each * ranks);
  comm_.allgather(packed_.get(), gathered_.get(), each);
  b_.merge_parts(out, nullptr, gathered_.get(), each, ranks, n, heads, hd);
}

}  // namespace starattn
