// One request from start to end on every rank: phase 1 over the context, phase 2 over the query,
// then sampling until an end-of-generation token, a stop the caller asks for (a stop string), or
// the limit. Used by `starattn generate`, `starattn eval` and `starattn bench`; every rank calls
// it with the same arguments. continue_generation() is the part after phase 1, for callers that
// keep one Engine across several turns.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "comm/comm.h"
#include "engine/engine.h"
#include "engine/run_config.h"
#include "engine/sampler.h"
#include "util/enum_names.h"

namespace starattn {

enum class StopReason {
  Eos,     // an end-of-generation token (not emitted)
  Stop,    // the caller's should_stop said so (a stop string in the text)
  Length,  // max_new_tokens reached
};
// The names `generate --json` prints.
inline constexpr EnumName<StopReason> kStopReasonNames[] = {
    {StopReason::Eos, "eos"}, {StopReason::Stop, "stop"}, {StopReason::Length, "length"}};
const char* stop_reason_name(StopReason r);

// A generated token's log-probability and its most likely alternatives (sampler.h's
// top_logprobs: the model's raw distribution, before any sampling processor).
struct GeneratedLogprobs {
  int id = -1;
  float logprob = 0;
  std::vector<TokenLogprob> top;  // best first
};

struct GenerateRequest {
  std::vector<int> context;  // phase 1 tokens (may be empty)
  std::vector<int> query;    // phase 2 tokens (not empty)
  int max_new_tokens = 0;
  SamplerOptions sampler;
  int logprobs = 0;  // 0..kMaxTopLogprobs alternatives per generated token; 0 = no logprobs
  std::function<bool(int)> is_end;  // end-of-generation token test (not emitted)
  // Optional, rank 0 only: each new token as it is chosen; phase-1 / query progress.
  std::function<void(int)> on_token;
  // Optional, rank 0 only, asked after on_token: true ends generation there (StopReason::Stop).
  std::function<bool()> should_stop;
  ProgressFn on_phase1_progress, on_query_progress;
};

struct GenerateResult {
  std::vector<int> tokens;  // generated ids, without the end token
  StopReason stop_reason = StopReason::Length;
  bool stopped_at_end = false;  // stop_reason == Eos
  // The last generated id when generation ended before running it through the model (a stop or
  // the limit), else -1: the engine holds every generated token but this one, so a later turn on
  // the same engine runs it first.
  int pending_token = -1;
  // Rank 0, when request.logprobs > 0: one entry per token in `tokens`.
  std::vector<GeneratedLogprobs> logprobs;
  double phase1_s = 0, query_s = 0, decode_s = 0;  // wall time; phase 1 waits for every rank
  // Tensor transfers inside those times: phase 1 (ring, broadcast anchor), and query + decode.
  double phase1_comm_s = 0, comm_s = 0;
};

// rc must be resolved for request.context.size() tokens and comm.size() ranks. tensors: as for
// Engine (null = host-staged over comm).
GenerateResult generate(Backend& backend, Comm& comm, const RunConfig& rc,
                        const GenerateRequest& request, TensorComm* tensors = nullptr);

// The part of generate() after phase 1: runs request.query in phase 2 after everything `engine`
// holds already (context, earlier turns), then samples up to request.max_new_tokens tokens.
// request.context and request.on_phase1_progress are not used. `sampler` (meaningful on rank 0)
// accepts the query and every generated token, so its repetition penalty spans the turns;
// request.sampler is not used either; every rank passes a sampler made from the same options.
// Fills neither phase1_s nor phase1_comm_s; comm_s counts
// from this call's start. The engine needs room for query + max_new_tokens more tokens.
GenerateResult continue_generation(Engine& engine, Comm& comm, Sampler& sampler,
                                   const GenerateRequest& request);

}  // namespace starattn
