#include "engine/engine.h"

#include <algorithm>
#include <numeric>

#include "engine/block_attention.h"
#include "engine/layout.h"
#include "engine/ring_attention.h"
#include "starattn/error.h"

namespace starattn {

Engine::Engine(Backend& backend, Comm& comm, const RunConfig& rc, int64_t n_context,
               int64_t query_capacity, TensorComm* tensors)
    : b_(backend),
      comm_(comm),
      own_tensors_(tensors ? nullptr : make_host_tensor_comm(comm, backend)),
      tensors_(tensors ? tensors : own_tensors_.get()),
      rc_(rc),
      n_context_(n_context) {
  SA_CHECK(tensors_->size() == comm_.size() && tensors_->rank() == comm_.rank(),
           "engine: the tensor comm and the comm disagree on ranks");
  if (rc_.chunk == 0) rc_.chunk = b_.preferred_chunk();
  const ModelConfig& c = b_.config();
  // Star's anchor is one more KV set of A rows while phase 1 runs.
  const int64_t anchor_rows =
      rc_.attn == AttnMode::Star ? std::max<int64_t>(rc_.anchor_size, 0) : 0;
  // Tokens per forward call: a chunk, a ring rank's whole share, or (broadcast anchor) the anchor.
  int64_t max_tokens = rc_.chunk;
  if (rc_.attn == AttnMode::Ring) max_tokens = local_context_rows();
  if (rc_.attn == AttnMode::Star && rc_.anchor == AnchorMode::Broadcast)
    max_tokens = std::max(max_tokens, anchor_rows);
  b_.plan_memory(local_context_rows() + anchor_rows + (is_query_host() ? query_capacity : 0),
                 static_cast<int>(std::max<int64_t>(max_tokens, 1)));
  context_ = std::make_unique<KvCache>(b_, c.n_layers, c.kv_dim(), local_context_rows(),
                                       is_query_host() ? query_capacity : 0);
  if (is_query_host()) query_ = std::make_unique<KvCache>(KvCache::TailOf{*context_});
  phase2_ =
      std::make_unique<Phase2Attention>(b_, *tensors_, *context_, query_.get(), rc_.replay_steps);
}

int64_t Engine::local_context_rows() const {
  const int ranks = comm_.size(), rank = comm_.rank();
  switch (rc_.attn) {
    case AttnMode::Dense:
      return rank == 0 ? n_context_ : 0;
    case AttnMode::Ring: {
      const std::vector<Span> s = zigzag_spans(n_context_, ranks, rank);
      return s[0].size() + s[1].size();
    }
    case AttnMode::Star: {
      const std::vector<Span> blocks = star_blocks(n_context_, rc_.block_size);
      const Span mine = blocks_of_rank(static_cast<int64_t>(blocks.size()), ranks, rank);
      int64_t rows = 0;
      for (int64_t b = mine.begin; b < mine.end; ++b) rows += blocks[b].size();
      return rows;
    }
  }
  return 0;
}

void Engine::run_chunks(const int* tokens, int64_t n, int64_t pos, AttentionHook& hook,
                        KvCache& cache, const ProgressFn& progress, int64_t done0, int64_t total,
                        int64_t first_chunk) {
  std::vector<int> positions;
  for (int64_t i = 0; i < n;) {
    const int64_t size = (i == 0 && first_chunk > 0) ? first_chunk : rc_.chunk;
    const int m = static_cast<int>(std::min<int64_t>(size, n - i));
    positions.resize(m);
    std::iota(positions.begin(), positions.end(), static_cast<int>(pos + i));
    b_.forward(tokens + i, positions.data(), m, hook, 0, nullptr);
    cache.commit(m);
    i += m;
    if (progress) progress(done0 + i, total);
  }
}

void Engine::encode_context(const std::vector<int>& context, const ProgressFn& progress) {
  SA_CHECK(static_cast<int64_t>(context.size()) == n_context_, "engine: context has ",
           context.size(), " tokens, expected ", n_context_);
  SA_CHECK(context_->size() == 0, "engine: the context is already encoded");
  switch (rc_.attn) {
    case AttnMode::Dense:
      encode_dense(context, progress);
      break;
    case AttnMode::Star:
      encode_star(context, progress);
      break;
    case AttnMode::Ring:
      encode_ring(context);
      break;
  }
  b_.synchronize();  // phase 1 is over when its work is, not when it is queued
}

void Engine::encode_dense(const std::vector<int>& context, const ProgressFn& progress) {
  if (comm_.rank() != 0) return;
  BlockAttention hook(b_, *context_);
  run_chunks(context.data(), n_context_, 0, hook, *context_, progress, 0, n_context_);
}

void Engine::encode_star(const std::vector<int>& context, const ProgressFn& progress) {
  const ModelConfig& c = b_.config();
  const int ranks = comm_.size(), rank = comm_.rank();
  const std::vector<Span> blocks = star_blocks(n_context_, rc_.block_size);
  const Span mine = blocks_of_rank(static_cast<int64_t>(blocks.size()), ranks, rank);
  const int64_t A = rc_.anchor_size;
  // Block 0 needs no anchor (it is the anchor's own text), so with one block none is made.
  const bool need_anchor = A > 0 && blocks.size() > 1;
  const bool broadcast = need_anchor && rc_.anchor == AnchorMode::Broadcast && ranks > 1;
  KvCache anchor(b_, c.n_layers, c.kv_dim(), need_anchor ? A : 0);
  bool have_anchor = false;
  // Broadcast: rank 0 encodes block 0's first A rows (the anchor) in one forward call and sends
  // each layer's anchor KV as soon as it exists; a receiver takes layer l just before its own
  // layer-l attention, straight into its anchor cache, so its first chunk runs in step with
  // rank 0 instead of waiting for it.
  auto receive_anchor_layer = [&](int layer) {
    const int a = static_cast<int>(A);
    tensors_->broadcast(anchor.mutable_k_row(layer, 0, a), A * anchor.row_bytes(), 0);
    tensors_->broadcast(anchor.mutable_v_row(layer, 0, a), A * anchor.row_bytes(), 0);
  };
  bool receiving = broadcast && rank != 0;
  if (receiving && mine.size() == 0) {  // nothing to overlap with: just take the broadcasts
    for (int l = 0; l < c.n_layers; ++l) receive_anchor_layer(l);
    receiving = false;
  }

  int64_t total = 0, done = 0;
  for (int64_t b = mine.begin; b < mine.end; ++b) total += blocks[b].size();
  for (int64_t b = mine.begin; b < mine.end; ++b) {
    const Span blk = blocks[b];
    const bool anchored = need_anchor && b > 0;
    if (anchored && !receiving && (!have_anchor || rc_.anchor == AnchorMode::Recompute)) {
      anchor.truncate(0);
      BlockAttention hook(b_, anchor);
      run_chunks(context.data(), A, 0, hook, anchor, nullptr, 0, 0);
      have_anchor = true;
    }
    BlockAttention hook(b_, *context_, context_->size(), anchored ? &anchor : nullptr);
    if (anchored && receiving) {
      // Rows are filled layer by layer during the first forward call, each before it is read.
      anchor.commit(static_cast<int>(A));
      hook.before_attend = [&](int layer) {
        if (!receiving) return;
        receive_anchor_layer(layer);
        if (layer == c.n_layers - 1) receiving = false;
      };
      have_anchor = true;
    }
    int64_t first_chunk = rc_.chunk;
    // A receiver's layer l waits for rank 0's layer l over all A anchor rows; a first call as
    // long as the anchor keeps it in step instead of idling (a short chunk would wait most of
    // each layer). The memory plan already allows A tokens per call in broadcast mode.
    if (anchored && receiving) first_chunk = std::max<int64_t>(rc_.chunk, A);
    if (b == 0 && need_anchor && rc_.anchor != AnchorMode::Recompute) {
      // Block 0's first A rows are exactly the anchor's KV (same tokens, same positions, nothing
      // before them): keep them for this rank's later blocks and send them to the other ranks.
      if (broadcast) first_chunk = A;
      hook.on_kv = [&](int layer, int64_t at, int n, const void* k, const void* v) {
        const int m = static_cast<int>(std::clamp<int64_t>(A - at, 0, n));
        if (m == 0) return;
        anchor.write(layer, at, m, k, v);
        if (layer == c.n_layers - 1) anchor.commit(m);
        if (!broadcast) return;
        // The first chunk is exactly the anchor, so m == A: the receivers' sizes match.
        tensors_->broadcast(const_cast<void*>(k), m * anchor.row_bytes(), 0);
        tensors_->broadcast(const_cast<void*>(v), m * anchor.row_bytes(), 0);
      };
    }
    run_chunks(context.data() + blk.begin, blk.size(), blk.begin, hook, *context_, progress, done,
               total, first_chunk);
    done += blk.size();
    if (b == 0 && need_anchor && rc_.anchor != AnchorMode::Recompute) have_anchor = true;
  }
}

void Engine::encode_ring(const std::vector<int>& context) {
  const std::vector<Span> s = zigzag_spans(n_context_, comm_.size(), comm_.rank());
  std::vector<int> tokens, positions;
  for (const Span& sp : s) {
    for (int64_t p = sp.begin; p < sp.end; ++p) {
      tokens.push_back(context[p]);
      positions.push_back(static_cast<int>(p));
    }
  }
  RingAttention hook(b_, *tensors_, *context_, n_context_);
  const int n = static_cast<int>(tokens.size());
  if (n == 0) {
    // No tokens here (a context shorter than 2 * ranks), but the ring still passes through.
    for (int l = 0; l < b_.config().n_layers; ++l)
      hook.attend(l, 0, nullptr, nullptr, nullptr, nullptr);
    return;
  }
  b_.forward(tokens.data(), positions.data(), n, hook, 0, nullptr);
  context_->commit(n);
}

std::vector<float> Engine::run_phase2(const std::vector<int>& tokens, Phase2Out what,
                                      const ProgressFn& progress, int* greedy_id) {
  SA_CHECK(!tokens.empty(), "engine: nothing to run in phase 2");
  const ModelConfig& c = b_.config();
  const bool all_logits = what == Phase2Out::AllLogits;
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t pos = n_context_ + n_query_;
  std::vector<float> hidden, logits;
  std::vector<int> positions;
  const int64_t keep_rows = all_logits ? n : 1;
  if (is_query_host() && what != Phase2Out::Greedy)
    hidden.resize(static_cast<size_t>(keep_rows) * c.d_model);
  for (int64_t i = 0; i < n; i += rc_.chunk) {
    const int m = static_cast<int>(std::min<int64_t>(rc_.chunk, n - i));
    positions.resize(m);
    std::iota(positions.begin(), positions.end(), static_cast<int>(pos + i));
    const bool last = i + m == n;
    phase2_->begin(m);
    if (is_query_host() && last && what == Phase2Out::Greedy) {
      *greedy_id = b_.forward_greedy(tokens.data() + i, positions.data(), m, *phase2_);
    } else {
      int n_out = 0;
      float* out = nullptr;
      if (is_query_host() && (all_logits || last)) {
        n_out = all_logits ? m : 1;
        out = hidden.data() + (all_logits ? i : 0) * c.d_model;
      }
      b_.forward(tokens.data() + i, positions.data(), m, *phase2_, n_out, out);
    }
    if (query_) query_->commit(m);
    n_query_ += m;
    if (progress) progress(i + m, n);
  }
  if (!is_query_host() || what == Phase2Out::Greedy) return {};
  logits.resize(static_cast<size_t>(keep_rows) * c.vocab_size);
  b_.logits(hidden.data(), static_cast<int>(keep_rows), logits.data());
  return logits;
}

std::vector<float> Engine::run(const std::vector<int>& tokens, const ProgressFn& progress) {
  return run_phase2(tokens, Phase2Out::LastLogits, progress);
}

std::vector<float> Engine::run_all_logits(const std::vector<int>& tokens) {
  return run_phase2(tokens, Phase2Out::AllLogits, nullptr);
}

int Engine::run_greedy(const std::vector<int>& tokens, const ProgressFn& progress) {
  int id = -1;
  run_phase2(tokens, Phase2Out::Greedy, progress, &id);
  return id;
}

}  // namespace starattn
