#include "serve/plan_runner.h"

#include <numeric>

#include "engine/layout.h"
#include "starattn/error.h"

namespace starattn::serve {

PlanRunner::PlanRunner(Backend& backend, Comm& comm, TensorComm& tensors)
    : b_(backend), comm_(comm), tensors_(tensors), phase2_(backend, tensors) {}

PlanRunner::Shard& PlanRunner::shard(uint64_t id, const char* what) {
  const auto it = shards_.find(id);
  SA_CHECK(it != shards_.end(), "serve: ", what, " names context ", id, ", which rank ",
           comm_.rank(), " does not hold");
  return it->second;
}

void PlanRunner::run(const Plan& plan, const std::function<KvCache*(uint64_t)>& own,
                     std::vector<float>* hidden) {
  encoded_.clear();
  for (uint64_t id : plan.drop) shards_.erase(id);
  const ModelConfig& c = b_.config();
  for (const EncodeOrder& e : plan.encode) {
    SA_CHECK(!shards_.count(e.context), "serve: context ", e.context, " is encoded twice");
    Shard s;
    s.tokens = e.tokens;
    s.rc = e.rc;
    const int64_t rows = context_rows_of_rank(e.rc, static_cast<int64_t>(e.tokens.size()),
                                              comm_.size(), comm_.rank());
    s.kv = std::make_unique<KvCache>(b_, c.n_layers, c.kv_dim(), rows, 0, e.rc.kv_type);
    Shard& placed = shards_.emplace(e.context, std::move(s)).first->second;
    placed.encoder =
        std::make_unique<ContextEncoder>(b_, tensors_, placed.rc, placed.tokens, *placed.kv);
  }
  if (!plan.advance.empty()) advance(plan.advance);
  if (!plan.step.empty()) step(plan.step, own, hidden);
}

void PlanRunner::advance(const std::vector<uint64_t>& ids) {
  // One call of each context's phase 1 on every rank, then one collective to learn which
  // contexts every rank has finished (ranks hold different shares).
  std::vector<float> left(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    Shard& s = shard(ids[i], "phase 1");
    SA_CHECK(s.encoder, "serve: context ", ids[i], " is already encoded");
    s.encoder->advance();
    left[i] = s.encoder->done() ? 0.0f : 1.0f;
  }
  b_.synchronize();  // a context is encoded when its work is done, not when it is queued
  comm_.allreduce_max(left.data(), left.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    if (left[i] != 0.0f) continue;
    Shard& s = shard(ids[i], "phase 1");
    s.encoder.reset();  // frees the anchor
    s.tokens.clear();
    s.tokens.shrink_to_fit();
    encoded_.push_back(ids[i]);
  }
}

void PlanRunner::step(const std::vector<StepSeq>& seqs,
                      const std::function<KvCache*(uint64_t)>& own, std::vector<float>* hidden) {
  const bool query_host = comm_.rank() == 0;
  std::vector<int> tokens, positions;
  std::vector<SeqStep> parts;
  for (const StepSeq& s : seqs) {
    Shard& sh = shard(s.context, "a phase-2 step");
    SA_CHECK(!sh.encoder, "serve: a phase-2 step on context ", s.context,
             " before its phase 1 ended");
    SA_CHECK(!s.tokens.empty(), "serve: a phase-2 step with no tokens");
    SeqStep part;
    part.context = sh.kv.get();
    part.own = query_host ? own(s.sequence) : nullptr;
    SA_CHECK(!query_host || part.own, "serve: no KV for sequence ", s.sequence);
    part.n = static_cast<int>(s.tokens.size());
    parts.push_back(part);
    tokens.insert(tokens.end(), s.tokens.begin(), s.tokens.end());
    const size_t at = positions.size();
    positions.resize(at + s.tokens.size());
    std::iota(positions.begin() + at, positions.end(), static_cast<int>(s.first_pos));
  }
  const int n = static_cast<int>(tokens.size());
  const int n_out = query_host && hidden ? n : 0;
  if (n_out > 0) hidden->resize(static_cast<size_t>(n) * b_.config().d_model);
  phase2_.begin(std::move(parts));
  b_.forward(tokens.data(), positions.data(), n, phase2_, n_out,
             n_out > 0 ? hidden->data() : nullptr);
  phase2_.end();
}

void run_worker(PlanRunner& runner, Comm& comm) {
  for (;;) {
    const Plan plan = receive_plan(comm);
    if (plan.shutdown) return;
    runner.run(plan, nullptr, nullptr);
  }
}

}  // namespace starattn::serve
