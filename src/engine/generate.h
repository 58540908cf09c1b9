// One request from start to end on every rank: phase 1 over the context, phase 2 over the query,
// then sampling until an end-of-generation token or the limit. Used by `starattn generate`,
// `starattn eval` and `starattn bench`; every rank calls it with the same arguments.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "comm/comm.h"
#include "engine/engine.h"
#include "engine/run_config.h"
#include "engine/sampler.h"

namespace starattn {

struct GenerateRequest {
  std::vector<int> context;  // phase 1 tokens (may be empty)
  std::vector<int> query;    // phase 2 tokens (not empty)
  int max_new_tokens = 0;
  SamplerOptions sampler;
  std::function<bool(int)> is_end;  // end-of-generation token test (not emitted)
  // Optional, rank 0 only: each new token as it is chosen; phase-1 / query progress.
  std::function<void(int)> on_token;
  ProgressFn on_phase1_progress, on_query_progress;
};

struct GenerateResult {
  std::vector<int> tokens;  // generated ids, without the end token
  bool stopped_at_end = false;
  double phase1_s = 0, query_s = 0, decode_s = 0;  // wall time; phase 1 waits for every rank
  // Tensor transfers inside those times: phase 1 (ring, broadcast anchor), and query + decode.
  double phase1_comm_s = 0, comm_s = 0;
};

// rc must be resolved for request.context.size() tokens and comm.size() ranks. tensors: as for
// Engine (null = host-staged over comm).
GenerateResult generate(Backend& backend, Comm& comm, const RunConfig& rc,
                        const GenerateRequest& request, TensorComm* tensors = nullptr);

}  // namespace starattn
