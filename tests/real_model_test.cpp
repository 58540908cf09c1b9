// The default real model (SmolLM2-135M-Instruct, Q4_1 GGUF) against Hugging Face transformers:
// greedy continuations of fixed prompts (tools/make_real_model_fixtures.py) must be identical for
// all 40 tokens, through the dense path and through Star Attention with one block (B >= N).
// Skipped, with a message, when scripts/setup.sh has not fetched the model.
#include <gtest/gtest.h>

#include <filesystem>

#include "backend/cpu/cpu_backend.h"
#include "comm/comm.h"
#include "engine/engine.h"
#include "engine/sampler.h"
#include "model/loader.h"
#include "test_util.h"

namespace starattn {
namespace {

class RealModel : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!std::filesystem::exists(test::real_model_path())) return;
    model_ = new Model(load_model(test::real_model_path()));
  }
  static void TearDownTestSuite() {
    delete model_;
    model_ = nullptr;
  }
  void SetUp() override {
    if (!model_) GTEST_SKIP() << "no " << test::real_model_path() << " (run scripts/setup.sh)";
  }

  // Greedy ids after prompt: the prompt's last n_query tokens run as the phase-2 query.
  static std::vector<int> greedy(const RunConfig& rc, const std::vector<int>& prompt, int n_query,
                                 int n_new) {
    const int n_ctx = static_cast<int>(prompt.size()) - n_query;
    CpuBackend backend(model_->config, model_->weights);
    auto comm = make_local_comm();
    Engine e(backend, *comm, rc.resolved(n_ctx, 1), n_ctx, n_query + n_new);
    e.encode_context(std::vector<int>(prompt.begin(), prompt.begin() + n_ctx));
    std::vector<float> logits = e.run(std::vector<int>(prompt.begin() + n_ctx, prompt.end()));
    std::vector<int> out;
    for (int i = 0; i < n_new; ++i) {
      out.push_back(argmax(logits.data(), model_->config.vocab_size));
      if (i + 1 < n_new) logits = e.run({out.back()});
    }
    return out;
  }

  static Model* model_;
};
Model* RealModel::model_ = nullptr;

TEST_F(RealModel, ConfigIsSmolLM2) {
  const ModelConfig& c = model_->config;
  EXPECT_EQ(c.n_layers, 30);
  EXPECT_EQ(c.d_model, 576);
  EXPECT_EQ(c.n_heads, 9);
  EXPECT_EQ(c.n_kv_heads, 3);
  EXPECT_TRUE(c.tied_embeddings);
}

TEST_F(RealModel, GreedyContinuationsEqualTransformers) {
  const nlohmann::json cases = test::read_json(test::fixture("smollm2/greedy.json"));
  ASSERT_GE(cases.size(), 3u);
  for (const auto& c : cases) {
    const std::vector<int> prompt = c["prompt_ids"].get<std::vector<int>>();
    const std::vector<int> want = c["greedy_ids"].get<std::vector<int>>();
    ASSERT_GE(want.size(), 32u);
    const int n = static_cast<int>(want.size());
    RunConfig dense;
    dense.attn = AttnMode::Dense;
    dense.chunk = 7;  // several chunks of context
    EXPECT_EQ(greedy(dense, prompt, 4, n), want) << c["name"] << " (dense)";
    RunConfig star;  // one block: Star Attention reduces to exact attention
    star.block_size = static_cast<int64_t>(prompt.size());
    EXPECT_EQ(greedy(star, prompt, 1, n), want) << c["name"] << " (star, B >= N)";
  }
}

}  // namespace
}  // namespace starattn
