// A served step end to end on the GPU: BatchPhase2 (shared-context attention per context, the
// per-sequence items merged in one call) over two contexts encoded by phase 1, with sequences of
// different query lengths that join and leave between steps, against the same steps on the CPU
// backend (the oracle). Random models with head_dim 64 and 128, GQA 8 and 4, so that the context
// calls take the shared-context kernel (more than 16 packed rows) and the decode kernel (fewer).
// Skips without a GPU.
#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <sstream>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_factory.h"
#include "comm/comm.h"
#include "comm/tensor_comm.h"
#include "cuda/cuda_test_util.h"
#include "engine/batch_phase2.h"
#include "engine/context_encoder.h"
#include "engine/kv_cache.h"
#include "engine/layout.h"
#include "engine/run_config.h"
#include "random_model.h"
#include "test_util.h"

namespace starattn {
namespace {

constexpr double kTol = 2e-2;  // bf16 weights and activations vs the fp32 CPU

struct Context {
  std::vector<int> tokens;
  RunConfig rc;
};

// One sequence's part of a step: its index and its token count.
struct Part {
  int seq, n;
};

// Sequences 0-5 read context 0, 6-7 context 1 (adjacent in every step, as BatchPhase2 wants).
// Step 0: questions of different lengths; 5 and 7 join at step 2 with their questions while
// the others decode; 1 leaves after step 2.
const std::vector<std::vector<Part>> kSteps = {
    {{0, 5}, {1, 1}, {2, 9}, {3, 3}, {4, 2}, {6, 4}},
    {{0, 1}, {1, 1}, {2, 1}, {3, 1}, {4, 1}, {6, 1}},
    {{0, 1}, {1, 1}, {2, 1}, {3, 1}, {4, 1}, {5, 7}, {6, 1}, {7, 3}},
    {{0, 1}, {2, 1}, {3, 1}, {4, 1}, {5, 1}, {6, 1}, {7, 1}},
    {{0, 1}, {2, 1}, {3, 1}, {4, 1}, {5, 1}, {6, 1}, {7, 1}},
};
constexpr int kSeqs = 8, kOwnRows = 32;
int context_of(int seq) {
  return seq < 6 ? 0 : 1;
}

// Every step's hidden states and logits, [rows, d_model] and [rows, vocab], in step row order.
struct Trace {
  std::vector<std::vector<float>> hidden, logits;
};

Trace run_steps(Backend& b, const std::vector<Context>& contexts, uint64_t token_seed,
                bool share_context = true) {
  const ModelConfig& c = b.config();
  const std::unique_ptr<Comm> comm = make_local_comm();
  const std::unique_ptr<TensorComm> tensors = make_host_tensor_comm(*comm, b);
  std::vector<std::unique_ptr<KvCache>> ctx_kv;
  for (const Context& x : contexts) {
    const int64_t n = static_cast<int64_t>(x.tokens.size());
    ctx_kv.push_back(
        std::make_unique<KvCache>(b, c.n_layers, c.kv_dim(), context_rows_of_rank(x.rc, n, 1, 0)));
    ContextEncoder enc(b, *tensors, x.rc, x.tokens, *ctx_kv.back());
    while (!enc.done()) enc.advance();
  }
  std::vector<std::unique_ptr<KvCache>> own;
  for (int s = 0; s < kSeqs; ++s)
    own.push_back(std::make_unique<KvCache>(b, c.n_layers, c.kv_dim(), kOwnRows));

  BatchPhase2 phase2(b, *tensors, share_context);
  std::mt19937 rng(static_cast<uint32_t>(token_seed));  // the same tokens on both backends
  Trace t;
  for (const std::vector<Part>& step : kSteps) {
    std::vector<SeqStep> parts;
    std::vector<int> tokens, positions;
    for (const Part& p : step) {
      const KvCache* ctx = ctx_kv[context_of(p.seq)].get();
      parts.push_back({ctx, own[p.seq].get(), p.n});
      for (int i = 0; i < p.n; ++i) {
        tokens.push_back(static_cast<int>(rng() % c.vocab_size));
        positions.push_back(static_cast<int>(ctx->size() + own[p.seq]->size() + i));
      }
    }
    const int n = static_cast<int>(tokens.size());
    std::vector<float> hidden(static_cast<size_t>(n) * c.d_model);
    std::vector<float> logits(static_cast<size_t>(n) * c.vocab_size);
    phase2.begin(std::move(parts));
    b.forward(tokens.data(), positions.data(), n, phase2, n, hidden.data());
    phase2.end();
    b.logits(hidden.data(), n, logits.data());
    t.hidden.push_back(std::move(hidden));
    t.logits.push_back(std::move(logits));
  }
  return t;
}

struct GpuModel {
  int heads, kv_heads, head_dim;
  bool bias, tied;
};

class BatchPhase2OnGpu : public testing::TestWithParam<GpuModel> {};

TEST_P(BatchPhase2OnGpu, MatchesCpu) {
  SA_REQUIRE_GPU();
  const GpuModel g = GetParam();
  const Model m = test::random_model(g.heads, g.kv_heads, g.head_dim, g.bias, g.tied, 23);
  std::mt19937 rng(9);
  std::vector<Context> contexts(2);
  contexts[0].tokens.resize(90);
  contexts[1].tokens.resize(37);
  for (Context& x : contexts)
    for (int& id : x.tokens) id = static_cast<int>(rng() % m.config.vocab_size);
  // Context 0 by Star blocks with an anchor, context 1 dense: both are plain KV to phase 2.
  // Short contexts, so the sequences' own keys weigh in the result: skipping the per-sequence
  // part moves the logits by 12-21% (relative L2), against the 2% tolerance.
  RunConfig star;
  star.attn = AttnMode::Star;
  star.block_size = 64;
  star.anchor_size = 32;
  contexts[0].rc = star.resolved(90, 1);
  RunConfig dense;
  dense.attn = AttnMode::Dense;
  contexts[1].rc = dense.resolved(37, 1);

  CpuBackend cpu(m.config, m.weights);
  const std::unique_ptr<Backend> gpu = make_cuda_backend(m, 0);
  const Trace want = run_steps(cpu, contexts, 4);
  // Shared: one context call per run of sequences (the shared-context kernel); unshared: one
  // call per sequence (decode kernel), as bench --sequences compares them.
  for (bool share : {true, false}) {
    SCOPED_TRACE(share ? "shared context attention" : "one context call per sequence");
    const Trace got = run_steps(*gpu, contexts, 4, share);
    ASSERT_EQ(got.hidden.size(), kSteps.size());
    for (size_t s = 0; s < kSteps.size(); ++s) {
      std::ostringstream rows;
      for (const Part& p : kSteps[s]) rows << " seq " << p.seq << "x" << p.n;
      SCOPED_TRACE("step " + std::to_string(s) + ":" + rows.str());
      EXPECT_LT(test::rel_l2(got.hidden[s], want.hidden[s]), kTol) << "hidden states";
      EXPECT_LT(test::rel_l2(got.logits[s], want.logits[s]), kTol) << "logits";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(CudaBackend, BatchPhase2OnGpu,
                         testing::Values(GpuModel{8, 1, 64, false, false},
                                         GpuModel{8, 2, 128, true, true}),
                         [](const testing::TestParamInfo<GpuModel>& i) {
                           return "hd" + std::to_string(i.param.head_dim) + "_gqa" +
                                  std::to_string(i.param.heads / i.param.kv_heads);
                         });

}  // namespace
}  // namespace starattn
