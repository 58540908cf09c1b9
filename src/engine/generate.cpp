#include "engine/generate.h"

#include <chrono>

#include "starattn/error.h"

namespace starattn {
namespace {
double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

const char* stop_reason_name(StopReason r) {
  return enum_name(kStopReasonNames, r, "length");
}

GenerateResult generate(Backend& backend, Comm& comm, const RunConfig& rc, const GenerateRequest& r,
                        TensorComm* tensors) {
  SA_CHECK(!r.query.empty(), "generate: the query is empty");
  SA_CHECK(r.max_new_tokens >= 0, "generate: negative token limit");
  Engine engine(backend, comm, rc, static_cast<int64_t>(r.context.size()),
                static_cast<int64_t>(r.query.size()) + r.max_new_tokens, tensors);
  Sampler sampler(r.sampler);
  // The repetition penalty looks back over the prompt too (context included), as transformers
  // and llama.cpp do.
  if (comm.rank() == 0)
    for (int id : r.context) sampler.accept(id);

  const double t0 = now();
  engine.encode_context(r.context, comm.rank() == 0 ? r.on_phase1_progress : nullptr);
  comm.barrier();  // phase 1 ends when the slowest rank is done
  const double phase1_s = now() - t0;
  const double phase1_comm_s = engine.comm_seconds();

  GenerateResult out = continue_generation(engine, comm, sampler, r);
  out.phase1_s = phase1_s;
  out.phase1_comm_s = phase1_comm_s;
  return out;
}

GenerateResult continue_generation(Engine& engine, Comm& comm, Sampler& sampler,
                                   const GenerateRequest& r) {
  SA_CHECK(!r.query.empty(), "generate: the query is empty");
  SA_CHECK(r.max_new_tokens >= 0, "generate: negative token limit");
  SA_CHECK(r.logprobs >= 0 && r.logprobs <= kMaxTopLogprobs, "--logprobs must be in 0..",
           kMaxTopLogprobs, ", got ", r.logprobs);
  const bool root = comm.rank() == 0;
  const double comm0 = engine.comm_seconds();
  GenerateResult out;

  // Plain greedy decoding picks on the backend (only the id leaves the device); a penalty,
  // sampling or log-probabilities need the logits on the host.
  const bool on_device = sampler.is_plain_argmax() && r.logprobs == 0;
  const ProgressFn on_query = root ? r.on_query_progress : nullptr;
  if (root)
    for (int id : r.query) sampler.accept(id);
  std::vector<float> logits;
  int id = -1;
  double t0 = now();
  if (on_device) {
    id = engine.run_greedy(r.query, on_query);
  } else {
    logits = engine.run(r.query, on_query);
  }
  out.query_s = now() - t0;

  t0 = now();
  constexpr int kGoOn = -1;
  for (int i = 0; i < r.max_new_tokens; ++i) {
    // The query host chooses the token and whether to go on; every rank needs both for the next
    // phase-2 step. {token, kGoOn or a StopReason}
    int step[2] = {id, kGoOn};
    if (root) {
      const int vocab = static_cast<int>(logits.size());
      if (!on_device) step[0] = id = sampler.sample(logits.data(), vocab);
      if (r.is_end && r.is_end(id)) {
        step[1] = static_cast<int>(StopReason::Eos);
      } else {
        if (r.logprobs > 0)
          out.logprobs.push_back({id, token_logprob(logits.data(), vocab, id),
                                  top_logprobs(logits.data(), vocab, std::min(r.logprobs, vocab))});
        sampler.accept(id);
        if (r.on_token) r.on_token(id);
        if (r.should_stop && r.should_stop()) step[1] = static_cast<int>(StopReason::Stop);
      }
    }
    comm.broadcast(step, sizeof step, 0);
    id = step[0];
    if (step[1] == static_cast<int>(StopReason::Eos)) {
      out.stop_reason = StopReason::Eos;
      out.stopped_at_end = true;
      break;
    }
    out.tokens.push_back(id);
    if (step[1] == static_cast<int>(StopReason::Stop)) {
      out.stop_reason = StopReason::Stop;
      break;
    }
    if (i + 1 == r.max_new_tokens) break;
    if (on_device) {
      id = engine.run_greedy({id});
    } else {
      logits = engine.run({id});
    }
  }
  if (out.stop_reason != StopReason::Eos && !out.tokens.empty())
    out.pending_token = out.tokens.back();
  out.decode_s = now() - t0;
  out.comm_s = engine.comm_seconds() - comm0;
  return out;
}

}  // namespace starattn
