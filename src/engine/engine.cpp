#include "engine/engine.h"

#include <algorithm>
#include <numeric>

#include "engine/context_encoder.h"
#include "engine/engine_memory.h"
#include "engine/layout.h"
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
  const int64_t anchor_rows = ContextEncoder::anchor_rows(rc_, n_context_);
  // Tokens per forward call: a chunk, a ring rank's whole share, or (broadcast anchor) the anchor.
  const int64_t max_tokens =
      ContextEncoder::max_call_tokens(rc_, n_context_, comm_.size(), comm_.rank());
  plan_engine_memory(b_,
                     local_context_rows() + anchor_rows + (is_query_host() ? query_capacity : 0),
                     static_cast<int>(std::max<int64_t>(max_tokens, 1)), rc_.kv_type);
  context_ = std::make_unique<KvCache>(b_, c.n_layers, c.kv_dim(), local_context_rows(),
                                       is_query_host() ? query_capacity : 0, rc_.kv_type);
  if (is_query_host()) query_ = std::make_unique<KvCache>(KvCache::TailOf{*context_});
  phase2_ =
      std::make_unique<Phase2Attention>(b_, *tensors_, *context_, query_.get(), rc_.replay_steps);
}

int64_t Engine::local_context_rows() const {
  return context_rows_of_rank(rc_, n_context_, comm_.size(), comm_.rank());
}

void Engine::encode_context(const std::vector<int>& context, const ProgressFn& progress) {
  SA_CHECK(static_cast<int64_t>(context.size()) == n_context_, "engine: context has ",
           context.size(), " tokens, expected ", n_context_);
  SA_CHECK(context_->size() == 0, "engine: the context is already encoded");
  ContextEncoder encoder(b_, *tensors_, rc_, context, *context_);
  Progress p;
  if (progress) {
    p.tokens_total = encoder.tokens_total();
    p.work_total = ContextEncoder::slowest_rank_work(rc_, b_.config(), n_context_, comm_.size());
    progress(p);
  }
  while (encoder.advance()) {
    if (!progress) continue;
    p.tokens_done = encoder.tokens_done();
    p.work_done = encoder.work_done();
    progress(p);
  }
  b_.synchronize();  // phase 1 is over when its work is, not when it is queued
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
  // Each chunk reads the context (the most any rank holds: the ranks go in step) and the query
  // rows before it.
  int64_t widest = 0;
  for (int r = 0; r < comm_.size(); ++r)
    widest = std::max(widest, context_rows_of_rank(rc_, n_context_, comm_.size(), r));
  const int64_t queried = n_query_;
  const auto chunk_work = [&](int64_t i, int64_t m) {
    return forward_work(c, m, widest + queried + i);
  };
  Progress p;
  if (progress) {
    p.tokens_total = n;
    for (int64_t i = 0; i < n; i += rc_.chunk)
      p.work_total += chunk_work(i, std::min<int64_t>(rc_.chunk, n - i));
    progress(p);
  }
  for (int64_t i = 0; i < n; i += rc_.chunk) {
    const int m = static_cast<int>(std::min<int64_t>(rc_.chunk, n - i));
    const double work = progress ? chunk_work(i, m) : 0.0;
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
    if (progress) {
      p.tokens_done = i + m;
      p.work_done += work;
      progress(p);
    }
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
