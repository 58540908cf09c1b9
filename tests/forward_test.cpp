// The CPU forward pass against Hugging Face transformers' fp32 logits on tiny random models
// (tools/make_tiny_models.py), loaded from safetensors folders and from GGUF files: one per model
// family starattn supports (README.md, "Supported models").
#include <gtest/gtest.h>

#include "backend/cpu/cpu_backend.h"
#include "comm/comm.h"
#include "engine/engine.h"
#include "model/loader.h"
#include "test_util.h"

namespace starattn {
namespace {

struct Source {
  std::string model;                  // folder under tests/fixtures/tiny
  std::string file;                   // "" = the HF folder itself, else a GGUF file in it
  double tol;                         // relative L2 against transformers' fp32 logits
  std::string logits = "logits.bin";  // transformers' logits for this file, [29, vocab]
  size_t n_tokens = 29;               // the first n_tokens ids are run and compared
};

struct FixtureRun {
  ModelConfig config;
  std::vector<float> logits;  // [n_tokens, vocab]
};

// The engine's logits for the first n_tokens ids of a fixture, dense attention in chunks of 8 (so
// the query KV cache is exercised across calls).
FixtureRun run_fixture(const std::string& model_path, const std::vector<int>& ids,
                       size_t n_tokens) {
  const Model m = load_model(model_path);
  CpuBackend backend(m.config, m.weights);
  auto comm = make_local_comm();
  RunConfig rc;
  rc.attn = AttnMode::Dense;
  rc.chunk = 8;
  const std::vector<int> head(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(n_tokens));
  Engine engine(backend, *comm, rc.resolved(0, 1), 0, static_cast<int64_t>(head.size()));
  return {m.config, engine.run_all_logits(head)};
}

class ForwardVsTransformers : public testing::TestWithParam<Source> {};

TEST_P(ForwardVsTransformers, LogitsMatch) {
  const Source s = GetParam();
  const std::string dir = test::fixture("tiny/" + s.model);
  const std::vector<int> ids = test::read_json(dir + "/ids.json").get<std::vector<int>>();
  std::vector<float> ref = test::read_f32_file(dir + "/" + s.logits);
  ASSERT_LE(s.n_tokens, ids.size());
  const FixtureRun r = run_fixture(s.file.empty() ? dir : dir + "/" + s.file, ids, s.n_tokens);
  ASSERT_EQ(ref.size(), ids.size() * r.config.vocab_size);
  ASSERT_LE(s.n_tokens, size_t(r.config.max_positions));  // what the loader allows is run
  ref.resize(s.n_tokens * r.config.vocab_size);
  EXPECT_LT(test::rel_l2(r.logits, ref), s.tol) << s.model << " " << s.file;
}

INSTANTIATE_TEST_SUITE_P(
    TinyModels, ForwardVsTransformers,
    testing::Values(Source{"llama_gqa", "", 1e-4}, Source{"llama_gqa", "model-f32.gguf", 1e-4},
                    // F16 storage rounds the weights, so only a bf16-scale tolerance holds.
                    Source{"llama_gqa", "model-f16.gguf", 1e-2}, Source{"qwen2_bias", "", 1e-4},
                    Source{"qwen2_bias", "model-f32.gguf", 1e-4}, Source{"llama3_rope", "", 1e-4},
                    Source{"llama3_rope", "model-f32.gguf", 1e-4},
                    // Llama 3.2: tied, llama3 scaling factor 32, BF16 safetensors.
                    Source{"llama32_tied", "", 1e-4},
                    Source{"llama32_tied", "model-f32.gguf", 1e-4},
                    // Q8_0 dequantises exactly (int8 times an f16 scale), so against transformers'
                    // logits from the same file the fp32 tolerance holds.
                    Source{"llama32_tied", "model-q8_0.gguf", 1e-4, "logits-q8_0.bin"},
                    // Mistral with sliding_window 16: the HF folder allows 16 positions, inside
                    // which the window changes nothing; the GGUF carries no window (llama.cpp's
                    // converter writes none), so transformers attends fully from it, as we do.
                    Source{"mistral_swa", "", 1e-4, "logits.bin", 16},
                    Source{"mistral_swa", "model-f32.gguf", 1e-4, "logits-nowindow.bin"},
                    // Llama 2: MHA, F16 safetensors, config and GGUF keys left to their defaults.
                    Source{"llama2_mha", "", 1e-4}, Source{"llama2_mha", "model-f32.gguf", 1e-4},
                    // Qwen2.5: tied, biases, GQA 3:1, a switched-off sliding_window.
                    Source{"qwen25_tied", "", 1e-4}, Source{"qwen25_tied", "model-f32.gguf", 1e-4}),
    [](const testing::TestParamInfo<Source>& i) {
      std::string n = i.param.model + "_" + (i.param.file.empty() ? "hf" : i.param.file);
      for (char& c : n)
        if (!isalnum(static_cast<unsigned char>(c))) c = '_';
      return n;
    });

TEST(MistralWindow, PastTheWindowWeComputeFullAttention) {
  // Why the loader stops a Mistral HF model at its sliding window: past it, transformers masks the
  // keys more than 15 positions back and we do not. Run anyway (the engine itself does not check
  // max_positions), our logits are those of full attention, and rows >= 16 are not Mistral's.
  const std::string dir = test::fixture("tiny/mistral_swa");
  const std::vector<int> ids = test::read_json(dir + "/ids.json").get<std::vector<int>>();
  const FixtureRun r = run_fixture(dir, ids, ids.size());
  ASSERT_EQ(r.config.max_positions, 16);
  const std::vector<float> windowed = test::read_f32_file(dir + "/logits.bin");
  const std::vector<float> full = test::read_f32_file(dir + "/logits-nowindow.bin");
  ASSERT_EQ(r.logits.size(), full.size());
  EXPECT_LT(test::rel_l2(r.logits, full), 1e-4);
  const size_t past = 16 * size_t(r.config.vocab_size);
  EXPECT_GT(test::rel_l2(r.logits.data() + past, windowed.data() + past, full.size() - past), 0.1);
  EXPECT_LT(test::rel_l2(r.logits.data(), windowed.data(), past), 1e-4);
}

}  // namespace
}  // namespace starattn
