#include "engine/generate.h"

#include <chrono>

#include "starattn/error.h"

namespace starattn {
namespace {
double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

GenerateResult generate(Backend& backend, Comm& comm, const RunConfig& rc, const GenerateRequest& r,
                        TensorComm* tensors) {
  SA_CHECK(!r.query.empty(), "generate: the query is empty");
  SA_CHECK(r.max_new_tokens >= 0, "generate: negative token limit");
  const bool root = comm.rank() == 0;
  const int vocab = backend.config().vocab_size;
  GenerateResult out;
  Engine engine(backend, comm, rc, static_cast<int64_t>(r.context.size()),
                static_cast<int64_t>(r.query.size()) + r.max_new_tokens, tensors);

  double t0 = now();
  engine.encode_context(r.context, root ? r.on_phase1_progress : nullptr);
  comm.barrier();  // phase 1 ends when the slowest rank is done
  out.phase1_s = now() - t0;
  out.phase1_comm_s = engine.comm_seconds();

  // Greedy decoding picks on the backend (only the id leaves the device); sampling needs the
  // logits on the host.
  const bool greedy = r.sampler.temperature == 0.0f;
  const ProgressFn on_query = root ? r.on_query_progress : nullptr;
  std::vector<float> logits;
  int id = -1;
  t0 = now();
  if (greedy) {
    id = engine.run_greedy(r.query, on_query);
  } else {
    logits = engine.run(r.query, on_query);
  }
  out.query_s = now() - t0;

  Sampler sampler(r.sampler);
  t0 = now();
  for (int i = 0; i < r.max_new_tokens; ++i) {
    // The query host chooses; every rank needs the token for the next phase-2 step.
    if (!greedy) id = root ? sampler.sample(logits.data(), vocab) : 0;
    comm.broadcast(&id, sizeof id, 0);
    if (r.is_end && r.is_end(id)) {
      out.stopped_at_end = true;
      break;
    }
    out.tokens.push_back(id);
    if (root && r.on_token) r.on_token(id);
    if (i + 1 == r.max_new_tokens) break;
    if (greedy) {
      id = engine.run_greedy({id});
    } else {
      logits = engine.run({id});
    }
  }
  out.decode_s = now() - t0;
  out.comm_s = engine.comm_seconds() - out.phase1_comm_s;
  return out;
}

}  // namespace starattn
