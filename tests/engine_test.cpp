// Star Attention engine invariants on one process; tests/mpi/ repeats the
// multi-rank ones under mpirun.
#include <gtest/gtest.h>

#include <limits>
#include <numeric>

#include "backend/cpu/cpu_backend.h"
#include "comm/comm.h"
#include "engine/engine.h"
#include "engine/layout.h"
#include "engine/phase2.h"
#include "model/loader.h"
#include "test_util.h"

namespace starattn {
namespace {

class EngineTest : public testing::Test {
 protected:
  void SetUp() override {
    const std::string dir = test::fixture("tiny/llama_gqa");
    model_ = load_model(dir);
    ids_ = test::read_json(dir + "/ids.json").get<std::vector<int>>();
    ref_ = test::read_f32_file(dir + "/logits.bin");
    backend_ = std::make_unique<CpuBackend>(model_.config, model_.weights);
    comm_ = make_local_comm();
  }

  // Logits of every query row after encoding ids[0, n_ctx) as context.
  std::vector<float> query_logits(RunConfig rc, int n_ctx) {
    const std::vector<int> ctx(ids_.begin(), ids_.begin() + n_ctx);
    const std::vector<int> query(ids_.begin() + n_ctx, ids_.end());
    Engine e(*backend_, *comm_, rc.resolved(n_ctx, 1), n_ctx, static_cast<int64_t>(query.size()));
    e.encode_context(ctx);
    return e.run_all_logits(query);
  }
  std::vector<float> ref_rows(int from) const {
    return {ref_.begin() + static_cast<int64_t>(from) * model_.config.vocab_size, ref_.end()};
  }

  Model model_;
  std::vector<int> ids_;
  std::vector<float> ref_;
  std::unique_ptr<CpuBackend> backend_;
  std::unique_ptr<Comm> comm_;
};

RunConfig star(int64_t b, int64_t a, AnchorMode m = AnchorMode::Shared, int chunk = 512) {
  RunConfig rc;
  rc.attn = AttnMode::Star;
  rc.block_size = b;
  rc.anchor_size = a;
  rc.anchor = m;
  rc.chunk = chunk;
  return rc;
}
RunConfig mode(AttnMode m) {
  RunConfig rc;
  rc.attn = m;
  return rc;
}

// Phase 2 (context unmasked, query causal on the query host) after a dense phase 1 is exact
// causal attention: the query rows match transformers' logits for the same positions.
TEST_F(EngineTest, DenseContextPlusQueryMatchesTransformers) {
  for (int n_ctx : {1, 11, 20, 28}) {
    EXPECT_LT(test::rel_l2(query_logits(mode(AttnMode::Dense), n_ctx), ref_rows(n_ctx)), 1e-4)
        << "context " << n_ctx;
  }
}

// Phase 2 one token at a time (the path a backend may record and replay: KV row and key count
// read from backend memory), mixed with multi-token calls, still matches transformers row by row.
TEST_F(EngineTest, TokenByTokenPhase2MatchesTransformers) {
  const int n_ctx = 11, n = static_cast<int>(ids_.size());
  const int vocab = model_.config.vocab_size;
  for (const bool replay : {true, false}) {
    RunConfig rc = mode(AttnMode::Dense);
    rc.replay_steps = replay;
    Engine e(*backend_, *comm_, rc.resolved(n_ctx, 1), n_ctx, n - n_ctx);
    e.encode_context(std::vector<int>(ids_.begin(), ids_.begin() + n_ctx));
    for (int i = n_ctx; i < n;) {
      const int m = (i % 3 == 0 && i + 2 <= n) ? 2 : 1;  // a 2-token call now and then
      const std::vector<float> got =
          e.run(std::vector<int>(ids_.begin() + i, ids_.begin() + i + m));
      i += m;
      const std::vector<float> want(ref_.begin() + int64_t{i - 1} * vocab,
                                    ref_.begin() + int64_t{i} * vocab);
      EXPECT_LT(test::rel_l2(got, want), 1e-4) << "token " << i - 1 << ", replay " << replay;
    }
    EXPECT_EQ(e.query_kv()->size(), n - n_ctx);
  }
}

TEST_F(EngineTest, StarWithOneBlockEqualsDense) {
  const std::vector<float> dense = query_logits(mode(AttnMode::Dense), 20);
  for (int64_t b : {20, 21, 1000})
    EXPECT_LT(test::rel_l2(query_logits(star(b, -1), 20), dense), 1e-5) << "B " << b;
  EXPECT_LT(test::rel_l2(query_logits(star(-1, -1), 20), dense), 1e-5) << "default B";
}

TEST_F(EngineTest, RingOnOneRankEqualsDense) {
  EXPECT_LT(
      test::rel_l2(query_logits(mode(AttnMode::Ring), 20), query_logits(mode(AttnMode::Dense), 20)),
      1e-5);
}

TEST_F(EngineTest, AnchorModesAgree) {
  // B = 6, A = 4 over 23 tokens: 4 blocks; chunk 3 splits the anchor and blocks across calls.
  const std::vector<float> recompute = query_logits(star(6, 4, AnchorMode::Recompute, 3), 23);
  EXPECT_LT(test::rel_l2(query_logits(star(6, 4, AnchorMode::Shared, 3), 23), recompute), 1e-6);
  EXPECT_LT(test::rel_l2(query_logits(star(6, 4, AnchorMode::Broadcast, 3), 23), recompute), 1e-6);
  EXPECT_LT(test::rel_l2(query_logits(star(6, 4, AnchorMode::Shared, 512), 23), recompute), 1e-5);
}

TEST_F(EngineTest, StarIsAnApproximationAndTheAnchorMatters) {
  const std::vector<float> dense = query_logits(mode(AttnMode::Dense), 23);
  const std::vector<float> with_anchor = query_logits(star(6, 6), 23);
  const std::vector<float> no_anchor = query_logits(star(6, 0), 23);
  // Several blocks: star differs from dense (else blocks are not local) ...
  EXPECT_GT(test::rel_l2(with_anchor, dense), 1e-4);
  // ... and dropping the anchor changes the result.
  EXPECT_GT(test::rel_l2(no_anchor, with_anchor), 1e-4);
  // A = 0 and the anchor equal to a whole block both run; with B = 1 there is no room for one.
  EXPECT_NO_THROW(query_logits(star(1, 0), 23));
  EXPECT_NO_THROW(query_logits(star(1, 1), 23));
}

TEST_F(EngineTest, OnlyTheQueryHostStoresQueryKv) {
  Engine e(*backend_, *comm_, star(6, 6).resolved(20, 1), 20, 12);
  e.encode_context(std::vector<int>(ids_.begin(), ids_.begin() + 20));
  EXPECT_EQ(e.context_kv().size(), 20);
  e.run(std::vector<int>(ids_.begin() + 20, ids_.end()));
  e.run({5});
  ASSERT_NE(e.query_kv(), nullptr);
  EXPECT_EQ(e.query_kv()->size(), 10);
  EXPECT_EQ(e.context_kv().size(), 20);  // phase 2 never adds to the context KV
}

TEST(RunConfig, RejectsBadSizes) {
  EXPECT_THROW(star(-3, -1).resolved(100, 2), Error);
  EXPECT_THROW(star(0, -1).resolved(100, 2), Error);
  EXPECT_THROW(star(10, 11).resolved(100, 2), Error);
  EXPECT_THROW(star(10, -2).resolved(100, 2), Error);
  RunConfig c = star(-1, -1);
  c.chunk = -1;
  EXPECT_THROW(c.resolved(100, 2), Error);
  c.chunk = 0;  // the backend's choice
  EXPECT_NO_THROW(c.resolved(100, 2));
  const RunConfig r = star(-1, -1).resolved(101, 4);
  EXPECT_EQ(r.block_size, 26);
  EXPECT_EQ(r.anchor_size, 26);
  EXPECT_THROW(parse_attn_mode("flash"), Error);
}

TEST(Layout, BlocksCoverTheContextOnceAndRanksGetContiguousGroups) {
  for (int64_t n : {0, 1, 7, 64, 101}) {
    for (int64_t b : {1, 3, 64, 200}) {
      const std::vector<Span> blocks = star_blocks(n, b);
      int64_t next = 0;
      for (const Span& s : blocks) {
        EXPECT_EQ(s.begin, next);
        EXPECT_GT(s.size(), 0);
        EXPECT_LE(s.size(), b);
        next = s.end;
      }
      EXPECT_EQ(next, n);
      for (int ranks : {1, 2, 3, 4, 7}) {
        int64_t covered = 0;
        for (int r = 0; r < ranks; ++r) {
          const Span g = blocks_of_rank(static_cast<int64_t>(blocks.size()), ranks, r);
          EXPECT_EQ(g.begin, covered);
          covered = g.end;
        }
        EXPECT_EQ(covered, static_cast<int64_t>(blocks.size()));
      }
    }
  }
}

TEST(Layout, ZigzagSpansPartitionTheContext) {
  for (int64_t n : {0, 1, 5, 8, 33, 1000}) {
    for (int ranks : {1, 2, 3, 4}) {
      std::vector<int> seen(n, 0);
      for (int r = 0; r < ranks; ++r)
        for (const Span& s : zigzag_spans(n, ranks, r))
          for (int64_t p = s.begin; p < s.end; ++p) seen[p]++;
      for (int64_t p = 0; p < n; ++p) EXPECT_EQ(seen[p], 1) << "n " << n << " pos " << p;
    }
  }
}

// The public reference's phase-2 bug: a bottom-right causal mask over context-only KV hides the
// last keys of the block from early query rows. Here the last context key is the only one any
// query matches; every query row must return its value.
TEST(Phase2, EveryQueryRowSeesTheLastContextKey) {
  Model m;  // attention only: the hook never runs the model's weights
  ModelConfig& c = m.config;
  c.n_layers = 1;
  c.d_model = 8;
  c.n_heads = 2;
  c.n_kv_heads = 1;
  c.head_dim = 4;
  CpuBackend backend(m.config, m.weights);
  const int n_ctx = 16, n_q = 5;
  KvCache ctx(backend, 1, c.kv_dim(), n_ctx, n_q), query(KvCache::TailOf{ctx});
  std::vector<float> k(n_ctx * 4, 0.0f), v(n_ctx * 4, 0.0f);
  k[(n_ctx - 1) * 4 + 0] = 100.0f;  // the last key points along dim 0
  for (int d = 0; d < 4; ++d) v[(n_ctx - 1) * 4 + d] = 7.0f;
  ctx.write(0, 0, n_ctx, k.data(), v.data());
  ctx.commit(n_ctx);
  std::vector<float> q(n_q * 8, 0.0f), qk(n_q * 4, 0.0f), qv(n_q * 4, 0.0f);
  for (int i = 0; i < n_q; ++i) q[i * 8 + 0] = q[i * 8 + 4] = 1.0f;  // both heads along dim 0
  auto comm = make_local_comm();
  auto tensors = make_host_tensor_comm(*comm, backend);
  // All query rows in one call, then one token at a time through the replayable path (its row
  // and key count read from backend memory).
  for (const bool one_by_one : {false, true}) {
    query.truncate(0);
    Phase2Attention hook(backend, *tensors, ctx, &query, one_by_one);
    std::vector<float> out(n_q * 8, std::numeric_limits<float>::quiet_NaN());
    for (int i = 0; i < n_q;) {
      const int n = one_by_one ? 1 : n_q;
      hook.begin(n);
      EXPECT_EQ(hook.replay_key() != 0, one_by_one);
      hook.attend(0, n, q.data() + i * 8, qk.data() + i * 4, qv.data() + i * 4, out.data() + i * 8);
      query.commit(n);
      i += n;
    }
    for (int i = 0; i < n_q; ++i)
      for (int e = 0; e < 8; ++e)
        EXPECT_NEAR(out[i * 8 + e], 7.0f, 1e-3) << "row " << i << ", one by one " << one_by_one;
  }
}

}  // namespace
}  // namespace starattn
