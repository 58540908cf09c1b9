#include "engine/context_encoder.h"

#include <algorithm>
#include <numeric>

#include "engine/block_attention.h"
#include "engine/layout.h"
#include "engine/ring_attention.h"
#include "starattn/error.h"

namespace starattn {
namespace {

int chunk_of(const RunConfig& rc, const Backend& b) {
  return rc.chunk > 0 ? rc.chunk : b.preferred_chunk();
}

// Block 0 needs no anchor (it is the anchor's own text), so with one block none is made.
bool needs_anchor(const RunConfig& rc, int64_t n_context) {
  return rc.attn == AttnMode::Star && rc.anchor_size > 0 && n_context > rc.block_size;
}

}  // namespace

int64_t ContextEncoder::anchor_rows(const RunConfig& rc, int64_t n_context) {
  return needs_anchor(rc, n_context) ? rc.anchor_size : 0;
}

int64_t ContextEncoder::max_call_tokens(const RunConfig& rc, int64_t n_context, int ranks,
                                        int rank) {
  if (rc.attn == AttnMode::Ring) return context_rows_of_rank(rc, n_context, ranks, rank);
  int64_t most = rc.chunk;  // 0 (the backend's choice) is resolved by the caller
  // A broadcast anchor is sent (and received) in one call as long as the anchor.
  if (rc.anchor == AnchorMode::Broadcast) most = std::max(most, anchor_rows(rc, n_context));
  return most;
}

double ContextEncoder::work_of_rank(const RunConfig& rc, const ModelConfig& c, int64_t n_context,
                                    int ranks, int rank) {
  double work = 0;
  for (const Call& call : plan(rc, c, n_context, ranks, rank)) work += call.work;
  return work;
}

double ContextEncoder::slowest_rank_work(const RunConfig& rc, const ModelConfig& c,
                                         int64_t n_context, int ranks) {
  double most = 0;
  for (int r = 0; r < ranks; ++r) most = std::max(most, work_of_rank(rc, c, n_context, ranks, r));
  return most;
}

ContextEncoder::ContextEncoder(Backend& backend, TensorComm& tensors, const RunConfig& rc,
                               const std::vector<int>& context, KvCache& dst)
    : b_(backend),
      tensors_(tensors),
      rc_(rc),
      context_(context),
      dst_(dst),
      n_context_(static_cast<int64_t>(context.size())) {
  SA_CHECK(dst.size() == 0, "phase 1: the context cache is not empty");
  SA_CHECK(dst.type() == backend.kv_row_format(rc.kv_type).type,
           "phase 1: the context cache holds ", kv_type_name(dst.type()),
           " rows but the run asks for ", kv_type_name(rc.kv_type));
  rc_.chunk = chunk_of(rc, backend);
  const ModelConfig& cfg = b_.config();
  const int ranks = tensors.size(), rank = tensors.rank();
  const int64_t rows = context_rows_of_rank(rc_, n_context_, ranks, rank);
  SA_CHECK(dst.capacity() >= rows, "phase 1: the context cache has room for ", dst.capacity(),
           " rows, this rank needs ", rows);
  const int64_t A = anchor_rows(rc_, n_context_);
  if (A > 0) anchor_ = std::make_unique<KvCache>(b_, cfg.n_layers, cfg.kv_dim(), A, 0, rc_.kv_type);
  const bool broadcast = A > 0 && rc_.anchor == AnchorMode::Broadcast && ranks > 1;
  send_anchor_ = broadcast && rank == 0;
  receive_anchor_ = broadcast && rank != 0;
  calls_ = plan(rc_, cfg, n_context_, ranks, rank);
  for (const Call& c : calls_) {
    if (c.kind == Kind::Block || c.kind == Kind::Ring) tokens_total_ += c.n;
    work_total_ += c.work;
  }
}

std::vector<ContextEncoder::Call> ContextEncoder::plan(const RunConfig& rc, const ModelConfig& c,
                                                       int64_t n_context, int ranks, int rank) {
  std::vector<Call> calls;
  switch (rc.attn) {
    case AttnMode::Dense:
      if (rank == 0) add_chunks(rc, c, Call{}, 0, n_context, rc.chunk, calls);
      break;
    case AttnMode::Ring: {
      // One call for the rank's share; its attention reads every earlier token of the context,
      // the other ranks' as they come round the ring.
      Call ring{Kind::Ring, 0, context_rows_of_rank(rc, n_context, ranks, rank)};
      double pairs = 0;
      for (const Span& sp : zigzag_spans(n_context, ranks, rank))
        pairs += static_cast<double>(sp.size()) * static_cast<double>(sp.begin + sp.end + 1) / 2;
      ring.work = projection_work(c, ring.n) + attention_work(c, pairs);
      calls.push_back(ring);
      break;
    }
    case AttnMode::Star:
      plan_star(rc, c, n_context, ranks, rank, calls);
      break;
  }
  return calls;
}

void ContextEncoder::add_chunks(const RunConfig& rc, const ModelConfig& c, Call proto,
                                int64_t begin, int64_t n, int64_t first_chunk,
                                std::vector<Call>& calls) {
  for (int64_t i = 0; i < n;) {
    Call call = proto;
    call.pos = begin + i;
    call.n = std::min<int64_t>(i == 0 ? first_chunk : rc.chunk, n - i);
    call.restart = proto.restart && i == 0;
    call.keys_before = proto.keys_before + i;
    call.work = forward_work(c, call.n, call.keys_before);
    calls.push_back(call);
    i += call.n;
  }
}

void ContextEncoder::plan_star(const RunConfig& rc, const ModelConfig& c, int64_t n_context,
                               int ranks, int rank, std::vector<Call>& calls) {
  const std::vector<Span> blocks = star_blocks(n_context, rc.block_size);
  const Span mine = blocks_of_rank(static_cast<int64_t>(blocks.size()), ranks, rank);
  const int64_t A = anchor_rows(rc, n_context);
  const bool broadcast = A > 0 && rc.anchor == AnchorMode::Broadcast && ranks > 1;
  const bool send_anchor = broadcast && rank == 0, receive_anchor = broadcast && rank != 0;
  const bool recompute = rc.anchor == AnchorMode::Recompute;
  // Block 0's first rows are the anchor only when the anchor is the context's own start.
  const bool from_block0 = !recompute && rc.anchor_source == AnchorSource::First;

  bool have_anchor = false;
  if (send_anchor && !from_block0) {
    // Rank 0 computes another source's anchor first, in one call, and sends it as it goes.
    Call anchor;
    anchor.kind = Kind::Anchor;
    anchor.restart = true;
    anchor.block = 1;
    add_chunks(rc, c, anchor, 0, A, A, calls);
    have_anchor = true;
  }
  int64_t row = 0;
  for (int64_t b = mine.begin; b < mine.end; ++b) {
    const Span blk = blocks[b];
    Call proto;
    proto.kind = Kind::Block;
    proto.block = b;
    proto.block_row = row;
    proto.anchored = A > 0 && b > 0;
    proto.keys_before = proto.anchored ? A : 0;
    int64_t first_chunk = rc.chunk;
    if (proto.anchored && !receive_anchor && (recompute || !have_anchor)) {
      Call anchor;
      anchor.kind = Kind::Anchor;
      anchor.restart = true;
      anchor.block = b;
      add_chunks(rc, c, anchor, 0, A, rc.chunk, calls);
      have_anchor = true;
    }
    if (proto.anchored && receive_anchor && !have_anchor) {
      // A receiver's layer l waits for rank 0's layer l over all A anchor rows; a first call as
      // long as the anchor keeps it in step instead of idling (a short chunk would wait most of
      // each layer).
      first_chunk = std::max<int64_t>(rc.chunk, A);
      have_anchor = true;
    }
    if (b == 0 && A > 0 && from_block0) {
      // Block 0's first A rows are exactly the anchor's KV (same tokens, same positions, nothing
      // before them): keep them for this rank's later blocks and send them to the other ranks,
      // in a first call exactly as long as the anchor so every receiver's sizes match.
      proto.anchor_from_kv = true;
      if (send_anchor) first_chunk = A;
      have_anchor = true;
    }
    add_chunks(rc, c, proto, blk.begin, blk.size(), first_chunk, calls);
    row += blk.size();
  }
  // A receiver with no block of its own still takes part in the broadcast.
  if (receive_anchor && mine.size() == 0) calls.push_back(Call{Kind::ReceiveAnchor});
}

bool ContextEncoder::advance() {
  if (done()) return false;
  const Call call = calls_[next_++];
  switch (call.kind) {
    case Kind::Anchor:
      run_anchor(call);
      break;
    case Kind::Block:
      run_block(call);
      tokens_done_ += call.n;
      break;
    case Kind::ReceiveAnchor:
      for (int l = 0; l < b_.config().n_layers; ++l) receive_anchor_layer(l);
      receive_anchor_ = false;
      break;
    case Kind::Ring:
      run_ring();
      tokens_done_ += call.n;
      break;
  }
  work_done_ += call.work;
  return true;
}

void ContextEncoder::receive_anchor_layer(int layer) {
  const int64_t A = anchor_->capacity();
  const int a = static_cast<int>(A);
  tensors_.broadcast(anchor_->mutable_k_row(layer, 0, a), A * anchor_->row_bytes(), 0);
  tensors_.broadcast(anchor_->mutable_v_row(layer, 0, a), A * anchor_->row_bytes(), 0);
}

void ContextEncoder::run_anchor(const Call& call) {
  if (call.restart) {
    anchor_->truncate(0);
    anchor_tokens_ = anchor_tokens(rc_, context_, call.block, b_.config().vocab_size);
  }
  BlockAttention hook(b_, *anchor_);
  if (send_anchor_) {
    // The call is the whole anchor (planned so), so every receiver's sizes match. The rows go as
    // the anchor cache holds them (compressed when fp8).
    hook.on_kv = [this](int, int64_t, int n, const void* k, const void* v) {
      tensors_.broadcast(const_cast<void*>(k), n * anchor_->row_bytes(), 0);
      tensors_.broadcast(const_cast<void*>(v), n * anchor_->row_bytes(), 0);
    };
  }
  std::vector<int> positions(call.n);
  std::iota(positions.begin(), positions.end(), static_cast<int>(call.pos));
  b_.forward(anchor_tokens_.data() + call.pos, positions.data(), static_cast<int>(call.n), hook, 0,
             nullptr);
  anchor_->commit(static_cast<int>(call.n));
}

void ContextEncoder::run_block(const Call& call) {
  const ModelConfig& cfg = b_.config();
  BlockAttention hook(b_, dst_, call.block_row, call.anchored ? anchor_.get() : nullptr);
  if (call.anchored && receive_anchor_) {
    // The anchor's rows are filled layer by layer during this call, each before it is read.
    receive_anchor_ = false;
    anchor_->commit(static_cast<int>(anchor_->capacity()));
    hook.before_attend = [this](int layer) { receive_anchor_layer(layer); };
  }
  if (call.anchor_from_kv) {
    const int64_t A = anchor_->capacity();
    hook.on_kv = [this, A, &cfg](int layer, int64_t at, int n, const void* k, const void* v) {
      // Block 0 starts at dst row 0 and position 0, so dst row `at` is anchor row `at`.
      const int m = static_cast<int>(std::clamp<int64_t>(A - at, 0, n));
      if (m == 0) return;
      anchor_->put_rows(layer, at, m, k, v);  // the block's rows as stored: no second rounding
      if (layer == cfg.n_layers - 1) anchor_->commit(m);
      if (!send_anchor_) return;
      tensors_.broadcast(const_cast<void*>(k), m * anchor_->row_bytes(), 0);
      tensors_.broadcast(const_cast<void*>(v), m * anchor_->row_bytes(), 0);
    };
  }
  std::vector<int> positions(call.n);
  std::iota(positions.begin(), positions.end(), static_cast<int>(call.pos));
  b_.forward(context_.data() + call.pos, positions.data(), static_cast<int>(call.n), hook, 0,
             nullptr);
  dst_.commit(static_cast<int>(call.n));
}

void ContextEncoder::run_ring() {
  const std::vector<Span> s = zigzag_spans(n_context_, tensors_.size(), tensors_.rank());
  std::vector<int> tokens, positions;
  for (const Span& sp : s) {
    for (int64_t p = sp.begin; p < sp.end; ++p) {
      tokens.push_back(context_[p]);
      positions.push_back(static_cast<int>(p));
    }
  }
  RingAttention hook(b_, tensors_, dst_, n_context_);
  const int n = static_cast<int>(tokens.size());
  if (n == 0) {
    // No tokens here (a context shorter than 2 * ranks), but the ring still passes through.
    for (int l = 0; l < b_.config().n_layers; ++l)
      hook.attend(l, 0, nullptr, nullptr, nullptr, nullptr);
    return;
  }
  b_.forward(tokens.data(), positions.data(), n, hook, 0, nullptr);
  dst_.commit(n);
}

}  // namespace starattn
