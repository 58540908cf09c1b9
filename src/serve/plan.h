// The control plane of a served job. Rank 0 (the HTTP listener and the scheduler) decides what
// every rank runs next and sends it to all of them as one Plan per scheduler iteration, over MPI
// (Comm). Every rank then runs the same plan in the same order (PlanRunner); the tensors that
// move inside it (phase-2 partials, ring shards, the broadcast anchor) go through TensorComm as
// they do in `generate`.
//
// The wire format is versioned: a worker that receives a message of another version, or a
// malformed one, fails loudly instead of running something else.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "comm/comm.h"
#include "engine/run_config.h"

namespace starattn::serve {

// A context to encode: every rank allocates its shard and starts phase 1.
struct EncodeOrder {
  uint64_t context = 0;
  RunConfig rc;             // resolved for tokens.size() and the job's ranks
  std::vector<int> tokens;  // the whole context, on every rank
};

// One sequence's part of a phase-2 step: n tokens at positions [first_pos, first_pos + n).
struct StepSeq {
  uint64_t sequence = 0;  // rank 0's handle of the sequence's own KV
  uint64_t context = 0;   // the context it attends to
  int64_t first_pos = 0;
  std::vector<int> tokens;
};

struct Plan {
  static constexpr uint32_t kVersion = 3;
  std::vector<EncodeOrder> encode;  // new contexts
  std::vector<uint64_t> advance;    // contexts whose phase 1 runs one more call on every rank
  std::vector<uint64_t> drop;       // contexts to free on every rank
  std::vector<StepSeq> step;        // one phase-2 step over these sequences, rows in this order
  bool shutdown = false;

  bool empty() const {
    return encode.empty() && advance.empty() && drop.empty() && step.empty() && !shutdown;
  }
};

std::vector<char> serialize(const Plan& plan);
// Throws starattn::Error for a message of another version or a malformed one.
Plan deserialize(const std::vector<char>& bytes);

// Rank 0: sends the plan to every rank (collective).
void send_plan(Comm& comm, const Plan& plan);
// Other ranks: waits for rank 0's next plan without spinning (a worker may wait for hours).
Plan receive_plan(Comm& comm);

}  // namespace starattn::serve
