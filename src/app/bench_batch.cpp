#include "app/bench_batch.h"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <random>

#include "app/common.h"
#include "engine/batch_phase2.h"
#include "engine/context_encoder.h"
#include "engine/engine_memory.h"
#include "engine/layout.h"
#include "starattn/error.h"

namespace starattn::app {
namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

struct Run {
  double first_s = 0;  // the step that prefills every question, with its logits
  double step_ms = 0;  // median decode step, with its logits
};

// S sequences on one encoded context: one step over all their questions, then `decode` steps of
// one token each. Each step ends with the logits of every sequence's last row, as a server's.
Run run_sequences(Backend& b, Comm& comm, TensorComm& tensors, const KvCache& ctx, int64_t n_ctx,
                  int s, const BatchBenchArgs& a, bool share, std::mt19937& rng) {
  const ModelConfig& c = b.config();
  std::uniform_int_distribution<int> tok(0, c.vocab_size - 1);
  const bool root = comm.rank() == 0;
  std::vector<std::unique_ptr<KvCache>> own;
  if (root)
    for (int i = 0; i < s; ++i)
      own.push_back(std::make_unique<KvCache>(b, c.n_layers, c.kv_dim(), a.query + a.decode, 0,
                                              a.run.kv_type));
  BatchPhase2 hook(b, tensors, share);
  std::vector<float> hidden, logits;
  auto step = [&](int per_seq) {
    std::vector<int> tokens, positions;
    std::vector<SeqStep> parts;
    for (int i = 0; i < s; ++i) {
      const int64_t past = root ? own[i]->size() : 0;
      for (int j = 0; j < per_seq; ++j) {
        tokens.push_back(tok(rng));
        positions.push_back(static_cast<int>(n_ctx + past + j));
      }
      parts.push_back({&ctx, root ? own[i].get() : nullptr, per_seq});
    }
    const int n = static_cast<int>(tokens.size());
    hidden.resize(static_cast<size_t>(n) * c.d_model);
    hook.begin(std::move(parts));
    b.forward(tokens.data(), positions.data(), n, hook, root ? n : 0,
              root ? hidden.data() : nullptr);
    hook.end();
    if (root) {  // each sequence's last row picks its next token
      std::vector<float> last(static_cast<size_t>(s) * c.d_model);
      for (int i = 0; i < s; ++i)
        std::copy_n(hidden.data() + static_cast<size_t>((i + 1) * per_seq - 1) * c.d_model,
                    c.d_model, last.data() + static_cast<size_t>(i) * c.d_model);
      logits.resize(static_cast<size_t>(s) * c.vocab_size);
      b.logits(last.data(), s, logits.data());
    }
    b.synchronize();
    comm.barrier();
  };
  Run r;
  comm.barrier();
  double t0 = now_seconds();
  step(a.query);
  r.first_s = now_seconds() - t0;
  std::vector<double> t;
  for (int i = 0; i < a.decode; ++i) {
    t0 = now_seconds();
    step(1);
    t.push_back(now_seconds() - t0);
  }
  r.step_ms = 1e3 * median(t);
  return r;
}

}  // namespace

void bench_sequences(Backend& b, Comm& comm, TensorComm& tensors, const BatchBenchArgs& a,
                     nlohmann::json& out) {
  const ModelConfig& c = b.config();
  const bool root = comm.rank() == 0;
  SA_CHECK(a.context >= 1 && a.query >= 1 && a.decode >= 1,
           "--sequences needs a context (the last --prefill), --query and --decode of at least 1");
  const int most = *std::max_element(a.sequences.begin(), a.sequences.end());
  SA_CHECK(a.context + a.query + a.decode <= c.max_positions, "--sequences: context ", a.context,
           " + query ", a.query, " + decode ", a.decode, " exceed the model's ", c.max_positions,
           " positions");
  std::mt19937 rng(11);  // same seed on every rank: the same tokens everywhere
  std::uniform_int_distribution<int> tok(0, c.vocab_size - 1);
  std::vector<int> context(a.context);
  for (int& x : context) x = tok(rng);
  const RunConfig rc = a.run.resolved(a.context, comm.size());
  const int64_t rows = context_rows_of_rank(rc, a.context, comm.size(), comm.rank());
  const int step_rows = std::max(most * a.query, b.preferred_chunk());
  plan_engine_memory(
      b,
      rows + ContextEncoder::anchor_rows(rc, a.context) +
          (root ? static_cast<int64_t>(most) * (a.query + a.decode) : 0),
      static_cast<int>(std::max<int64_t>(
          step_rows, ContextEncoder::max_call_tokens(rc, a.context, comm.size(), comm.rank()))),
      rc.kv_type);
  KvCache ctx(b, c.n_layers, c.kv_dim(), rows, 0, rc.kv_type);
  comm.barrier();
  double t0 = now_seconds();
  {
    ContextEncoder enc(b, tensors, rc, context, ctx);
    while (enc.advance()) {
    }
    b.synchronize();
  }
  comm.barrier();
  const double phase1 = now_seconds() - t0;
  out["sequences"]["context"] = a.context;
  out["sequences"]["query"] = a.query;
  out["sequences"]["phase1_seconds"] = phase1;
  if (root && !a.json) {
    std::printf("\n%d-token context encoded once in %.3f s; %d-token questions, %d decode steps\n",
                a.context, phase1, a.query, a.decode);
    std::printf("%10s %14s %12s %14s %18s\n", "sequences", "first step (s)", "ms/step", "tokens/s",
                "unshared ms/step");
  }
  double base_tok_s = 0;
  for (int s : a.sequences) {
    const Run shared = run_sequences(b, comm, tensors, ctx, a.context, s, a, true, rng);
    const Run alone = run_sequences(b, comm, tensors, ctx, a.context, s, a, false, rng);
    const double tok_s = s * 1e3 / shared.step_ms;
    if (s == 1) base_tok_s = tok_s;
    out["sequences"]["runs"].push_back({{"sequences", s},
                                        {"first_step_seconds", shared.first_s},
                                        {"ms_per_step", shared.step_ms},
                                        {"tokens_per_second", tok_s},
                                        {"unshared_ms_per_step", alone.step_ms}});
    if (root && !a.json) {
      char gain[48] = "";
      if (base_tok_s > 0 && s > 1)
        std::snprintf(gain, sizeof gain, "   (%.1fx the tokens/s of S=1)", tok_s / base_tok_s);
      std::printf("%10d %14.3f %12.2f %14.1f %18.2f%s\n", s, shared.first_s, shared.step_ms, tok_s,
                  alone.step_ms, gain);
    }
  }
}

}  // namespace starattn::app
