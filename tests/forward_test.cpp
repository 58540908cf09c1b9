// The CPU forward pass against Hugging Face transformers' fp32 logits on tiny random models
// (tools/make_tiny_models.py), loaded from safetensors folders and from GGUF files.
#include <gtest/gtest.h>

#include "backend/cpu/cpu_backend.h"
#include "comm/comm.h"
#include "engine/engine.h"
#include "model/loader.h"
#include "test_util.h"

namespace starattn {
namespace {

struct Source {
  std::string model;  // folder under tests/fixtures/tiny
  std::string file;   // "" = the HF folder itself, else a GGUF file in it
  double tol;         // relative L2 against transformers' fp32 logits
};

class ForwardVsTransformers : public testing::TestWithParam<Source> {};

TEST_P(ForwardVsTransformers, LogitsMatch) {
  const Source s = GetParam();
  const std::string dir = test::fixture("tiny/" + s.model);
  const Model m = load_model(s.file.empty() ? dir : dir + "/" + s.file);
  const std::vector<int> ids = test::read_json(dir + "/ids.json").get<std::vector<int>>();
  const std::vector<float> ref = test::read_f32_file(dir + "/logits.bin");
  ASSERT_EQ(ref.size(), ids.size() * m.config.vocab_size);

  CpuBackend backend(m.config, m.weights);
  auto comm = make_local_comm();
  RunConfig rc;
  rc.attn = AttnMode::Dense;
  rc.chunk = 8;  // several chunks, so the query KV cache is exercised across calls
  Engine engine(backend, *comm, rc.resolved(0, 1), 0, static_cast<int64_t>(ids.size()));
  const std::vector<float> logits = engine.run_all_logits(ids);
  EXPECT_LT(test::rel_l2(logits, ref), s.tol) << s.model << " " << s.file;
}

INSTANTIATE_TEST_SUITE_P(
    TinyModels, ForwardVsTransformers,
    testing::Values(Source{"llama_gqa", "", 1e-4}, Source{"llama_gqa", "model-f32.gguf", 1e-4},
                    // F16 storage rounds the weights, so only a bf16-scale tolerance holds.
                    Source{"llama_gqa", "model-f16.gguf", 1e-2}, Source{"qwen2_bias", "", 1e-4},
                    Source{"qwen2_bias", "model-f32.gguf", 1e-4}, Source{"llama3_rope", "", 1e-4},
                    Source{"llama3_rope", "model-f32.gguf", 1e-4}),
    [](const testing::TestParamInfo<Source>& i) {
      std::string n = i.param.model + "_" + (i.param.file.empty() ? "hf" : i.param.file);
      for (char& c : n)
        if (!isalnum(static_cast<unsigned char>(c))) c = '_';
      return n;
    });

}  // namespace
}  // namespace starattn
