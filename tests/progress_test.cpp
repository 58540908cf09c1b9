// The progress bar's arithmetic (engine/progress.h): the work model that makes an ETA account for
// attention's growth within a block, each rank's phase-1 work and the slowest rank's, the ETA
// itself, and the frames a bar prints.
#include "engine/progress.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "comm/comm.h"
#include "engine/context_encoder.h"
#include "engine/engine.h"
#include "model/loader.h"
#include "test_util.h"

namespace starattn {
namespace {

// Llama-3.2-1B's shape: where attention's share of the work is large at a few thousand tokens.
ModelConfig llama_1b() {
  ModelConfig c;
  c.n_layers = 16;
  c.d_model = 2048;
  c.n_heads = 32;
  c.n_kv_heads = 8;
  c.head_dim = 64;
  c.d_ffn = 8192;
  c.vocab_size = 128256;
  return c;
}

RunConfig resolved(AttnMode mode, int64_t n, int ranks, int chunk = 512) {
  RunConfig rc;
  rc.attn = mode;
  rc.chunk = chunk;
  return rc.resolved(n, ranks);
}

TEST(ProgressWork, AttentionGrowsWithTheKeysBefore) {
  const ModelConfig c = llama_1b();
  // A chunk late in a block reads more keys than the first one, so it costs more...
  EXPECT_GT(forward_work(c, 512, 3584), 1.2 * forward_work(c, 512, 0));
  // ...and the two parts add up: projections per token, attention per query-key pair.
  EXPECT_DOUBLE_EQ(forward_work(c, 512, 100),
                   projection_work(c, 512) + attention_work(c, 512.0 * 100 + 512.0 * 513 / 2));
  // Chunking a block changes nothing: the chunks' pairs add up to the block's n(n+1)/2.
  double chunks = 0;
  for (int64_t i = 0; i < 4096; i += 512) chunks += forward_work(c, 512, i);
  EXPECT_NEAR(chunks, forward_work(c, 4096, 0), 1e-9 * chunks);
}

TEST(ProgressEta, NoRateBeforeAnyWork) {
  EXPECT_FALSE(eta_seconds(0.0, 0.0, 100.0).has_value());
  EXPECT_FALSE(eta_seconds(3.0, 0.0, 100.0).has_value());
  EXPECT_FALSE(eta_seconds(0.0, 10.0, 100.0).has_value());
  EXPECT_DOUBLE_EQ(*eta_seconds(2.0, 25.0, 100.0), 6.0);
  EXPECT_DOUBLE_EQ(*eta_seconds(2.0, 100.0, 100.0), 0.0);
}

TEST(ProgressEta, HalfABlockIsLessThanHalfTheTime) {
  // A machine whose time is proportional to the work: after the first half of an 8K block the
  // ETA must be the true remaining time, longer than a token count's guess (the elapsed time
  // again), because the second half's attention reads twice as many keys.
  const ModelConfig c = llama_1b();
  const double per_flop = 1e-11;  // seconds
  double done = 0;
  for (int64_t i = 0; i < 4096; i += 512) done += forward_work(c, 512, i);
  const double total = forward_work(c, 8192, 0);
  const double elapsed = done * per_flop;
  const double eta = *eta_seconds(elapsed, done, total);
  EXPECT_NEAR(eta, (total - done) * per_flop, 1e-9 * eta);
  EXPECT_GT(eta, 1.15 * elapsed);
}

TEST(ProgressWork, SlowestRankOfEachLayout) {
  const ModelConfig c = llama_1b();
  const int64_t n = 8000;
  // Dense: rank 0 does everything.
  const RunConfig dense = resolved(AttnMode::Dense, n, 2);
  EXPECT_GT(ContextEncoder::work_of_rank(dense, c, n, 2, 0), 0);
  EXPECT_EQ(ContextEncoder::work_of_rank(dense, c, n, 2, 1), 0);
  EXPECT_EQ(ContextEncoder::slowest_rank_work(dense, c, n, 2),
            ContextEncoder::work_of_rank(dense, c, n, 2, 0));
  // One rank, one block: star is dense.
  EXPECT_DOUBLE_EQ(ContextEncoder::work_of_rank(resolved(AttnMode::Star, n, 1), c, n, 1, 0),
                   ContextEncoder::work_of_rank(resolved(AttnMode::Dense, n, 1), c, n, 1, 0));
  // Star on 2 ranks: rank 1 computes the anchor and its block attends over it, so it is the
  // slowest; rank 0's block 0 has no anchor.
  const RunConfig star = resolved(AttnMode::Star, n, 2);
  const double r0 = ContextEncoder::work_of_rank(star, c, n, 2, 0);
  const double r1 = ContextEncoder::work_of_rank(star, c, n, 2, 1);
  EXPECT_GT(r1, 1.5 * r0);
  EXPECT_EQ(ContextEncoder::slowest_rank_work(star, c, n, 2), r1);
  // Recomputing the anchor per block costs more than sharing it (4 blocks on 2 ranks).
  RunConfig rec;
  rec.attn = AttnMode::Star;
  rec.block_size = 2000;
  rec.chunk = 512;
  rec.anchor = AnchorMode::Recompute;
  RunConfig shared = rec;
  shared.anchor = AnchorMode::Shared;
  EXPECT_GT(ContextEncoder::work_of_rank(rec.resolved(n, 2), c, n, 2, 1),
            ContextEncoder::work_of_rank(shared.resolved(n, 2), c, n, 2, 1));
  // Ring's zigzag shards give every rank the same causal work.
  const RunConfig ring = resolved(AttnMode::Ring, n, 4);
  const double w0 = ContextEncoder::work_of_rank(ring, c, n, 4, 0);
  for (int r = 1; r < 4; ++r)
    EXPECT_NEAR(ContextEncoder::work_of_rank(ring, c, n, 4, r), w0, 1e-3 * w0);
  // And together they do the causal work of one dense pass.
  double sum = 0;
  for (int r = 0; r < 4; ++r) sum += ContextEncoder::work_of_rank(ring, c, n, 4, r);
  const double one = ContextEncoder::work_of_rank(resolved(AttnMode::Dense, n, 1), c, n, 1, 0);
  EXPECT_NEAR(sum, one, 1e-9 * one);
}

TEST(ProgressWork, EncoderReportsWhatThePlanSays) {
  // A real phase 1 (tiny model, one rank, star with two anchored blocks, the anchor recomputed
  // for each): a first frame before any work, frames that only grow, and a last one at the
  // plan's work and token count.
  const std::string dir = test::fixture("tiny/llama_gqa");
  const Model model = load_model(dir);
  CpuBackend backend(model.config, model.weights);
  auto comm = make_local_comm();
  RunConfig rc;
  rc.attn = AttnMode::Star;
  rc.block_size = 7;
  rc.anchor_size = 3;
  rc.chunk = 4;
  rc.anchor = AnchorMode::Recompute;
  rc = rc.resolved(20, 1);
  std::vector<int> ctx(20);
  for (int i = 0; i < 20; ++i) ctx[i] = (i * 7 + 3) % model.config.vocab_size;
  Engine e(backend, *comm, rc, 20, 1);
  std::vector<Progress> frames;
  e.encode_context(ctx, [&](const Progress& p) { frames.push_back(p); });
  ASSERT_GE(frames.size(), 3u);
  EXPECT_EQ(frames.front().tokens_done, 0);
  EXPECT_EQ(frames.front().work_done, 0);
  for (size_t i = 1; i < frames.size(); ++i) {
    EXPECT_GT(frames[i].work_done, frames[i - 1].work_done);
    EXPECT_EQ(frames[i].work_total, frames.front().work_total);
  }
  EXPECT_EQ(frames.back().tokens_done, 20);
  EXPECT_EQ(frames.back().tokens_total, 20);
  const double plan = ContextEncoder::work_of_rank(rc, model.config, 20, 1, 0);
  EXPECT_DOUBLE_EQ(frames.back().work_done, plan);
  EXPECT_DOUBLE_EQ(frames.back().work_total, plan);
  // The recomputed anchors are work but not context tokens.
  RunConfig shared = rc;
  shared.anchor = AnchorMode::Shared;
  EXPECT_GT(plan, ContextEncoder::work_of_rank(shared, model.config, 20, 1, 0));
}

TEST(ProgressFrame, TheFirstFrameHasNoRate) {
  Progress p;
  p.tokens_total = 4096;
  p.work_total = 1e12;
  const std::string first = progress_frame("phase 1", p, 0.0, 1);
  EXPECT_EQ(first, "phase 1 [..............................] 0%, 0/4096 tokens");
  p.tokens_done = 1024;
  p.work_done = 2e11;
  const std::string later = progress_frame("phase 1", p, 2.0, 1);
  EXPECT_EQ(later,
            "phase 1 [######........................] 20%, 1024/4096 tokens, 512 tok/s, ETA 8s");
  const std::string ranks = progress_frame("phase 1", p, 2.0, 2);
  EXPECT_NE(ranks.find("20% of the slowest of 2 ranks, rank 0: 1024/4096 tokens"),
            std::string::npos)
      << ranks;
}

TEST(ProgressFrame, ShortDurations) {
  EXPECT_EQ(short_duration(0.4), "0s");
  EXPECT_EQ(short_duration(59.4), "59s");
  EXPECT_EQ(short_duration(185), "3m05s");
  EXPECT_EQ(short_duration(3725), "1h02m");
  EXPECT_EQ(short_duration(-3), "0s");
}

}  // namespace
}  // namespace starattn
