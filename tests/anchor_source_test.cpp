// Anchor sources (the paper's Table 3 experiment): what each source puts in the anchor, and that
// the engine's phase 1 with each source equals Star Attention assembled by hand from its
// definition: block 0 alone; every later block after the source's anchor at positions 0..A-1.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <numeric>
#include <random>

#include "backend/cpu/cpu_backend.h"
#include "comm/comm.h"
#include "engine/batch_phase2.h"
#include "engine/block_attention.h"
#include "engine/engine.h"
#include "random_model.h"
#include "starattn/error.h"
#include "test_util.h"

namespace starattn {
namespace {

RunConfig star(int64_t b, int64_t a, AnchorSource src, AnchorMode mode = AnchorMode::Recompute) {
  RunConfig rc;
  rc.attn = AttnMode::Star;
  rc.block_size = b;
  rc.anchor_size = a;
  rc.anchor = mode;
  rc.anchor_source = src;
  rc.anchor_seed = 5;
  rc.chunk = 4;
  return rc;
}

std::vector<int> iota_ids(int n) {
  std::vector<int> v(n);
  std::iota(v.begin(), v.end(), 10);
  return v;
}

TEST(AnchorSource, TokensOfEachSource) {
  const std::vector<int> ctx = iota_ids(30);
  const auto first = anchor_tokens(star(8, 6, AnchorSource::First), ctx, 2, 100);
  EXPECT_EQ(first, std::vector<int>(ctx.begin(), ctx.begin() + 6));
  // Block 2's previous block is [8, 16): its last 6 tokens.
  EXPECT_EQ(anchor_tokens(star(8, 6, AnchorSource::Previous), ctx, 2, 100),
            std::vector<int>(ctx.begin() + 10, ctx.begin() + 16));
  EXPECT_EQ(anchor_tokens(star(8, 6, AnchorSource::Constant), ctx, 3, 100),
            std::vector<int>(6, ctx[0]));
  auto shuffled = anchor_tokens(star(8, 6, AnchorSource::Shuffled), ctx, 1, 100);
  EXPECT_NE(shuffled, first) << "seed 5 happens to give the identity: pick another";
  std::sort(shuffled.begin(), shuffled.end());
  EXPECT_EQ(shuffled, first);  // a permutation of the first tokens
  const auto random = anchor_tokens(star(8, 6, AnchorSource::Random), ctx, 1, 100);
  EXPECT_EQ(random, anchor_tokens(star(8, 6, AnchorSource::Random), ctx, 3, 100));  // every block
  for (int id : random) EXPECT_TRUE(id >= 0 && id < 100);
  RunConfig other = star(8, 6, AnchorSource::Random);
  other.anchor_seed = 6;
  EXPECT_NE(random, anchor_tokens(other, ctx, 1, 100));
}

TEST(AnchorSource, PreviousNeedsRecompute) {
  for (AnchorMode m : {AnchorMode::Shared, AnchorMode::Broadcast}) {
    try {
      (void)star(8, 8, AnchorSource::Previous, m).resolved(40, 2);
      FAIL() << "accepted --anchor-source previous with " << anchor_mode_name(m);
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("--anchor-mode recompute"), std::string::npos)
          << e.what();
    }
  }
}

// Star phase 1 assembled from the primitives: block 0 causal alone; block b after its anchor.
void by_hand(Backend& b, const RunConfig& rc, const std::vector<int>& ctx, KvCache& out) {
  const ModelConfig& c = b.config();
  const int64_t n = static_cast<int64_t>(ctx.size()), B = rc.block_size, A = rc.anchor_size;
  for (int64_t start = 0, blk = 0; start < n; start += B, ++blk) {
    const int m = static_cast<int>(std::min(B, n - start));
    std::vector<int> pos(m);
    std::iota(pos.begin(), pos.end(), static_cast<int>(start));
    KvCache anchor(b, c.n_layers, c.kv_dim(), A);
    if (blk > 0 && A > 0) {
      const std::vector<int> t = anchor_tokens(rc, ctx, blk, c.vocab_size);
      std::vector<int> apos(A);
      std::iota(apos.begin(), apos.end(), 0);
      BlockAttention hook(b, anchor);
      b.forward(t.data(), apos.data(), static_cast<int>(A), hook, 0, nullptr);
      anchor.commit(static_cast<int>(A));
    }
    BlockAttention hook(b, out, start, blk > 0 ? &anchor : nullptr);
    b.forward(ctx.data() + start, pos.data(), m, hook, 0, nullptr);
    out.commit(m);
  }
}

TEST(AnchorSource, EngineEqualsStarAssembledByHand) {
  const Model m = test::random_model(8, 2, 64, true, false, 3);
  CpuBackend b(m.config, m.weights);
  const ModelConfig& c = m.config;
  std::mt19937 rng(1);
  std::uniform_int_distribution<int> tok(0, c.vocab_size - 1);
  std::vector<int> ctx(37), query(5);
  for (int& x : ctx) x = tok(rng);
  for (int& x : query) x = tok(rng);
  auto local = make_local_comm();
  auto tensors = make_host_tensor_comm(*local, b);
  for (AnchorSource src : {AnchorSource::First, AnchorSource::Previous, AnchorSource::Random,
                           AnchorSource::Shuffled, AnchorSource::Constant}) {
    for (AnchorMode mode : {AnchorMode::Recompute, AnchorMode::Shared}) {
      if (src == AnchorSource::Previous && mode != AnchorMode::Recompute) continue;
      const RunConfig rc = star(9, 7, src, mode).resolved(37, 1);
      SCOPED_TRACE(rc.describe());
      Engine e(b, *local, rc, 37, 5, tensors.get());
      e.encode_context(ctx);
      const std::vector<float> want = e.run_all_logits(query);
      // The same query over the hand-made context, through the server's phase-2 path.
      KvCache hand(b, c.n_layers, c.kv_dim(), 37), own(b, c.n_layers, c.kv_dim(), 5);
      by_hand(b, rc, ctx, hand);
      BatchPhase2 hook(b, *tensors);
      hook.begin({{&hand, &own, 5}});
      std::vector<int> pos(5);
      std::iota(pos.begin(), pos.end(), 37);
      std::vector<float> hidden(5 * c.d_model), got(5 * static_cast<size_t>(c.vocab_size));
      b.forward(query.data(), pos.data(), 5, hook, 5, hidden.data());
      hook.end();
      b.logits(hidden.data(), 5, got.data());
      EXPECT_LT(test::rel_l2(got, want), 1e-5);
    }
  }
}

}  // namespace
}  // namespace starattn
