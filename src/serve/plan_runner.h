// Runs the plans of a served job on one rank: every rank holds its share of every cached
// context's KV here (the rows phase 1 left on it) and runs the same plans in the same order.
// Rank 0 also passes each stepped sequence's own KV and receives the final hidden states.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "comm/comm.h"
#include "comm/tensor_comm.h"
#include "engine/batch_phase2.h"
#include "engine/context_encoder.h"
#include "engine/kv_cache.h"
#include "serve/plan.h"

namespace starattn::serve {

class PlanRunner {
 public:
  PlanRunner(Backend& backend, Comm& comm, TensorComm& tensors);

  // Runs `plan` on this rank, in this order: drops, new encodes, one phase-1 call for each
  // context in plan.advance, then the phase-2 step. On rank 0, own(sequence) gives a stepped
  // sequence's KV and `hidden` receives the final normalised hidden state of every step row
  // ([rows, d_model], fp32); other ranks pass nullptr for both.
  void run(const Plan& plan, const std::function<KvCache*(uint64_t)>& own,
           std::vector<float>* hidden);

  // Contexts whose phase 1 ended on every rank during the last run().
  const std::vector<uint64_t>& encoded() const { return encoded_; }

 private:
  struct Shard {
    std::vector<int> tokens;  // the whole context (the encoder reads it)
    RunConfig rc;
    std::unique_ptr<KvCache> kv;
    std::unique_ptr<ContextEncoder> encoder;  // until phase 1 ends on every rank
  };
  Shard& shard(uint64_t id, const char* what);
  void advance(const std::vector<uint64_t>& ids);
  void step(const std::vector<StepSeq>& seqs, const std::function<KvCache*(uint64_t)>& own,
            std::vector<float>* hidden);

  Backend& b_;
  Comm& comm_;
  TensorComm& tensors_;
  std::map<uint64_t, Shard> shards_;
  BatchPhase2 phase2_;
  std::vector<uint64_t> encoded_;
};

// The loop of every rank but 0: run rank 0's plans until it says to shut down.
void run_worker(PlanRunner& runner, Comm& comm);

}  // namespace starattn::serve
