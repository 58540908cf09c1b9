// Model loader: the tiny random models of tools/make_tiny_models.py load to the same config and
// weights from their Hugging Face folder and from their GGUF (which holds llama.cpp's permuted Q/K
// and, for llama3_rope, only rope_freqs.weight); the real SmolLM2 GGUF loads; every broken input
// throws starattn::Error with a message naming the problem.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "model/gguf.h"
#include "model/loader.h"
#include "model_files.h"

namespace starattn {
namespace {

using namespace testfiles;
using nlohmann::json;

void expect_same_config(const ModelConfig& a, const ModelConfig& b) {
  EXPECT_EQ(a.arch, b.arch);
  EXPECT_EQ(a.n_layers, b.n_layers);
  EXPECT_EQ(a.d_model, b.d_model);
  EXPECT_EQ(a.n_heads, b.n_heads);
  EXPECT_EQ(a.n_kv_heads, b.n_kv_heads);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.d_ffn, b.d_ffn);
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.max_positions, b.max_positions);
  EXPECT_EQ(a.rms_eps, b.rms_eps);
  EXPECT_EQ(a.rope_theta, b.rope_theta);
  EXPECT_EQ(a.rope_scaling.llama3, b.rope_scaling.llama3);
  EXPECT_EQ(a.rope_scaling.factor, b.rope_scaling.factor);
  EXPECT_EQ(a.rope_scaling.low_freq_factor, b.rope_scaling.low_freq_factor);
  EXPECT_EQ(a.rope_scaling.high_freq_factor, b.rope_scaling.high_freq_factor);
  EXPECT_EQ(a.rope_scaling.original_max_positions, b.rope_scaling.original_max_positions);
  EXPECT_EQ(a.qkv_bias, b.qkv_bias);
  EXPECT_EQ(a.tied_embeddings, b.tied_embeddings);
}

// Calls f(name, a, b) on every pair of corresponding weight vectors.
template <typename F>
void for_each_weight(const Weights& a, const Weights& b, F f) {
  f("tok_embd", a.tok_embd.to_f32(), b.tok_embd.to_f32());
  f("output_norm", a.output_norm, b.output_norm);
  f("output", a.output.to_f32(), b.output.to_f32());
  ASSERT_EQ(a.layers.size(), b.layers.size());
  for (size_t i = 0; i < a.layers.size(); ++i) {
    const LayerWeights &x = a.layers[i], &y = b.layers[i];
    const std::string p = "layer " + std::to_string(i) + " ";
    f(p + "attn_norm", x.attn_norm, y.attn_norm);
    f(p + "wq", x.wq.to_f32(), y.wq.to_f32());
    f(p + "wk", x.wk.to_f32(), y.wk.to_f32());
    f(p + "wv", x.wv.to_f32(), y.wv.to_f32());
    f(p + "bq", x.bq, y.bq);
    f(p + "bk", x.bk, y.bk);
    f(p + "bv", x.bv, y.bv);
    f(p + "wo", x.wo.to_f32(), y.wo.to_f32());
    f(p + "ffn_norm", x.ffn_norm, y.ffn_norm);
    f(p + "w_gate", x.w_gate.to_f32(), y.w_gate.to_f32());
    f(p + "w_up", x.w_up.to_f32(), y.w_up.to_f32());
    f(p + "w_down", x.w_down.to_f32(), y.w_down.to_f32());
  }
}

class TinyModel : public testing::TestWithParam<const char*> {};

TEST_P(TinyModel, GgufAndHfFolderAgreeExactly) {
  const std::string dir = tiny_fixture(GetParam());
  const Model hf = load_model(dir);
  const Model gg = load_model(dir + "/model-f32.gguf");
  ModelConfig want = hf.config;
  if (want.arch == "mistral") {
    // llama.cpp writes Mistral as "llama" and without its sliding window (models_test.cpp).
    want.arch = "llama";
    want.max_positions = gg.config.max_positions;
  }
  expect_same_config(want, gg.config);
  EXPECT_EQ(llama3_rope_divisors(hf.config), llama3_rope_divisors(gg.config));
  for_each_weight(hf.weights, gg.weights, [](const std::string& n, const auto& a, const auto& b) {
    EXPECT_TRUE(a == b) << n << " differs (sizes " << a.size() << ", " << b.size() << ")";
  });
}

TEST_P(TinyModel, ShapesFollowTheConfig) {
  const Model m = load_model(tiny_fixture(GetParam()));
  const ModelConfig& c = m.config;
  const size_t d = c.d_model, q = c.q_dim(), kv = c.kv_dim(), ffn = c.d_ffn;
  EXPECT_EQ(size_t(m.weights.tok_embd.size()), c.vocab_size * d);
  EXPECT_EQ(size_t(m.weights.lm_head().size()), c.vocab_size * d);
  EXPECT_EQ(m.weights.output.empty(), c.tied_embeddings);
  ASSERT_EQ(m.weights.layers.size(), size_t(c.n_layers));
  for (const LayerWeights& l : m.weights.layers) {
    EXPECT_EQ(size_t(l.wq.size()), q * d);
    EXPECT_EQ(size_t(l.wk.size()), kv * d);
    EXPECT_EQ(size_t(l.wo.size()), d * q);
    EXPECT_EQ(size_t(l.w_down.size()), d * ffn);
    EXPECT_EQ(l.bq.size(), c.qkv_bias ? q : 0);
    EXPECT_EQ(l.bv.size(), c.qkv_bias ? kv : 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Loader, TinyModel,
                         testing::Values("llama_gqa", "qwen2_bias", "llama3_rope", "llama32_tied",
                                         "mistral_swa", "llama2_mha", "qwen25_tied"));

TEST(Loader, TinyConfigsAreAsGenerated) {
  const ModelConfig a = load_model(tiny_fixture("llama_gqa")).config;
  EXPECT_EQ(a.arch, "llama");
  EXPECT_EQ(a.n_layers, 2);
  EXPECT_EQ(a.d_model, 72);
  EXPECT_EQ(a.n_heads, 6);
  EXPECT_EQ(a.n_kv_heads, 2);
  EXPECT_EQ(a.head_dim, 12);
  EXPECT_EQ(a.d_ffn, 100);
  EXPECT_EQ(a.vocab_size, 131);
  EXPECT_EQ(a.max_positions, 256);
  EXPECT_EQ(a.rms_eps, 1e-5f);
  EXPECT_EQ(a.rope_theta, 10000.0f);
  EXPECT_TRUE(a.tied_embeddings);
  EXPECT_FALSE(a.qkv_bias);
  EXPECT_FALSE(a.rope_scaling.llama3);

  const Model b = load_model(tiny_fixture("qwen2_bias"));
  EXPECT_EQ(b.config.arch, "qwen2");
  EXPECT_EQ(b.config.d_model, 64);
  EXPECT_EQ(b.config.n_heads, 4);
  EXPECT_EQ(b.config.n_kv_heads, 2);
  EXPECT_EQ(b.config.head_dim, 16);
  EXPECT_EQ(b.config.vocab_size, 127);
  EXPECT_EQ(b.config.rms_eps, 1e-6f);
  EXPECT_EQ(b.config.rope_theta, 1e6f);
  EXPECT_TRUE(b.config.qkv_bias);
  EXPECT_FALSE(b.config.tied_embeddings);
  for (const LayerWeights& l : b.weights.layers)  // random, so any zero means a bias was lost
    for (const auto* v : {&l.bq, &l.bk, &l.bv})
      for (float x : *v) ASSERT_NE(x, 0.0f);

  const ModelConfig c = load_model(tiny_fixture("llama3_rope")).config;
  EXPECT_EQ(c.n_heads, 8);
  EXPECT_EQ(c.n_kv_heads, 2);
  EXPECT_EQ(c.head_dim, 16);  // explicit: q_dim 128 != d_model 32
  EXPECT_EQ(c.d_model, 32);
  EXPECT_EQ(c.max_positions, 512);
  EXPECT_EQ(c.rope_theta, 500000.0f);
  EXPECT_TRUE(c.rope_scaling.llama3);
  EXPECT_EQ(c.rope_scaling.factor, 8.0f);
  EXPECT_EQ(c.rope_scaling.low_freq_factor, 1.0f);
  EXPECT_EQ(c.rope_scaling.high_freq_factor, 4.0f);
  EXPECT_EQ(c.rope_scaling.original_max_positions, 64);
  EXPECT_FALSE(c.tied_embeddings);
  const std::vector<double> div = llama3_rope_divisors(c);
  EXPECT_EQ(div.front(), 1.0);  // highest frequency kept
  EXPECT_EQ(div.back(), 8.0);   // lowest scaled by factor
}

TEST(Loader, F16GgufMatchesWithinHalfPrecision) {
  const std::string dir = tiny_fixture("llama_gqa");
  const Model hf = load_model(dir);
  const Model gg = load_model(dir + "/model-f16.gguf");
  expect_same_config(hf.config, gg.config);
  size_t rounded = 0;
  for_each_weight(hf.weights, gg.weights, [&](const std::string& n, const auto& a, const auto& b) {
    ASSERT_EQ(a.size(), b.size()) << n;
    for (size_t i = 0; i < a.size(); ++i) {
      // fp16 keeps 11 significant bits, and below 2^-14 a fixed step of 2^-24 (subnormals).
      const float tol = std::max(std::ldexp(std::abs(a[i]), -11), std::ldexp(1.0f, -25));
      ASSERT_LE(std::abs(a[i] - b[i]), tol) << n << "[" << i << "]";
      rounded += a[i] != b[i];
    }
  });
  EXPECT_GT(rounded, 0u);  // the file really is half precision
}

TEST(Loader, LlamaGgufQkRowsArePermutedOnDisk) {
  // The loader's un-permutation must be doing real work: GGUF row 2i+j == HF row j*hd/2+i.
  const std::string dir = tiny_fixture("llama_gqa");
  const Model hf = load_model(dir);
  const GgufFile f(dir + "/model-f32.gguf");
  const std::vector<float> raw = f.read_f32(*f.find_tensor("blk.0.attn_k.weight"));
  const std::vector<float> wk = hf.weights.layers[0].wk.to_f32();
  const int hd = hf.config.head_dim, d = hf.config.d_model;
  EXPECT_NE(raw, wk);
  for (int h = 0; h < hf.config.n_kv_heads; ++h)
    for (int i = 0; i < hd / 2; ++i)
      for (int j = 0; j < 2; ++j)
        for (int c = 0; c < d; ++c)
          ASSERT_EQ(raw[(h * hd + 2 * i + j) * d + c], wk[(h * hd + j * hd / 2 + i) * d + c]);
}

TEST(Loader, RealSmolLM2Gguf) {
  const std::string path =
      std::string(STARATTN_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!fs::exists(path)) GTEST_SKIP() << path << " is absent (scripts/setup.sh fetches it)";
  const Model m = load_model(path);
  const ModelConfig& c = m.config;
  EXPECT_EQ(c.arch, "llama");
  EXPECT_EQ(c.n_layers, 30);
  EXPECT_EQ(c.d_model, 576);
  EXPECT_EQ(c.n_heads, 9);
  EXPECT_EQ(c.n_kv_heads, 3);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.d_ffn, 1536);
  EXPECT_EQ(c.vocab_size, 49152);
  EXPECT_EQ(c.max_positions, 8192);
  EXPECT_EQ(c.rope_theta, 100000.0f);
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_FALSE(c.rope_scaling.llama3);
  EXPECT_EQ(m.weights.tok_embd.size(), int64_t{49152} * 576);
  for (float x : m.weights.layers[29].w_down.to_f32()) ASSERT_TRUE(std::isfinite(x));
}

// ---- config.json variants ------------------------------------------------------------------

json tiny_hf_config(const std::string& name) {
  return json::parse(read_bytes(tiny_fixture(name) + "/config.json"));
}

TEST(Loader, HfConfigOldStyleRopeScalingEqualsNewStyle) {
  // Configs from transformers < 5 (most on the Hub) put rope_theta at the top and rope_scaling
  // with "type" or "rope_type".
  json j = tiny_hf_config("llama3_rope");
  json p = j["rope_parameters"];
  j.erase("rope_parameters");
  j["rope_theta"] = p["rope_theta"];
  p.erase("rope_theta");
  p.erase("rope_type");
  p["type"] = "llama3";
  j["rope_scaling"] = p;
  expect_same_config(config_from_hf(j), config_from_hf(tiny_hf_config("llama3_rope")));

  j["rope_scaling"] = nullptr;  // no scaling
  EXPECT_FALSE(config_from_hf(j).rope_scaling.llama3);
  EXPECT_EQ(config_from_hf(j).rope_theta, 500000.0f);
}

TEST(Loader, HfConfigDefaultsAndMistralWindow) {
  json j = tiny_hf_config("llama_gqa");
  j.erase("num_key_value_heads");
  j.erase("head_dim");
  j.erase("architectures");  // model_type alone is enough
  const ModelConfig c = config_from_hf(j);
  EXPECT_EQ(c.n_kv_heads, 6);
  EXPECT_EQ(c.head_dim, 12);

  j["model_type"] = "mistral";
  j["architectures"] = {"MistralForCausalLM"};
  j["max_position_embeddings"] = 32768;
  j["sliding_window"] = 4096;
  EXPECT_EQ(config_from_hf(j).arch, "mistral");
  EXPECT_EQ(config_from_hf(j).max_positions, 4096);  // capped: inside it attention is full
  j["sliding_window"] = nullptr;
  EXPECT_EQ(config_from_hf(j).max_positions, 32768);
}

void expect_hf_error(const json& j, const std::string& want) {
  const std::string msg = error_of([&] { config_from_hf(j); });
  EXPECT_NE(msg.find(want), std::string::npos) << "message: " << msg;
}

TEST(Loader, HfConfigErrors) {
  json j = tiny_hf_config("llama_gqa");
  j["architectures"] = {"GPTNeoXForCausalLM"};
  expect_hf_error(j,
                  "unsupported architecture 'GPTNeoXForCausalLM' (supported: "
                  "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM)");
  j.erase("architectures");
  j["model_type"] = "gemma";
  expect_hf_error(j, "unsupported architecture 'gemma'");
  j = tiny_hf_config("llama_gqa");
  j["model_type"] = "qwen2";
  expect_hf_error(j, "model_type 'qwen2' does not match architecture 'LlamaForCausalLM'");
  j = tiny_hf_config("llama_gqa");
  j.erase("hidden_size");
  expect_hf_error(j, "missing 'hidden_size'");
  j = tiny_hf_config("llama_gqa");
  j["num_attention_heads"] = "six";
  expect_hf_error(j, "'num_attention_heads' is not an integer");
  j = tiny_hf_config("llama_gqa");
  j["num_key_value_heads"] = 4;
  expect_hf_error(j, "not a multiple of 4 kv heads");
  j = tiny_hf_config("llama_gqa");
  j["rope_parameters"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  expect_hf_error(j, "unsupported RoPE scaling type 'yarn' (supported: default, llama3)");
  j = tiny_hf_config("llama_gqa");
  j["hidden_act"] = "gelu";
  expect_hf_error(j, "hidden_act 'gelu'");
  j = tiny_hf_config("llama_gqa");
  j["mlp_bias"] = true;
  expect_hf_error(j, "mlp_bias");
  expect_hf_error(json::array(), "not a JSON object");
}

// ---- broken folders and files ----------------------------------------------------------------

void expect_load_error(const std::string& path, const std::string& want) {
  const std::string msg = error_of([&] { load_model(path); });
  EXPECT_NE(msg.find(want), std::string::npos) << "message: " << msg;
}

TEST(Loader, MissingPathsAndFiles) {
  TempDir dir;
  expect_load_error(dir / "nothing-here",
                    "model path '" + (dir / "nothing-here") + "' does not exist");
  expect_load_error(dir.path(), "no config.json in '" + dir.path() + "'");
  write_bytes(dir / "config.json", "{ not json");
  expect_load_error(dir.path(), "is not valid JSON");
  write_bytes(dir / "config.json", read_bytes(tiny_fixture("qwen2_bias") + "/config.json"));
  expect_load_error(dir.path(), "no model.safetensors or model.safetensors.index.json");
  json j = tiny_hf_config("qwen2_bias");
  j["architectures"] = {"BertModel"};
  write_bytes(dir / "config.json", j.dump());
  expect_load_error(dir.path(), "unsupported architecture 'BertModel'");
  expect_load_error(tiny_fixture("qwen2_bias") + "/model.safetensors", "pass the folder");
}

// A copy of the qwen2_bias HF folder whose safetensors file went through `edit`.
void write_qwen2_folder(const TempDir& dir, const std::function<void(StTensors&)>& edit) {
  const std::string src = tiny_fixture("qwen2_bias");
  write_bytes(dir / "config.json", read_bytes(src + "/config.json"));
  StTensors ts = st_read_all(src + "/model.safetensors");
  edit(ts);
  st_write(dir / "model.safetensors", ts);
}

TEST(Loader, HfMissingOrMisshapenTensor) {
  TempDir dir;
  write_qwen2_folder(dir, [](StTensors&) {});
  EXPECT_NO_THROW(load_model(dir.path()));  // the copy itself is fine

  write_qwen2_folder(dir, [](StTensors& ts) { ts.erase("model.layers.1.self_attn.v_proj.bias"); });
  expect_load_error(dir.path(), "tensor 'model.layers.1.self_attn.v_proj.bias' is missing");

  write_qwen2_folder(dir, [](StTensors& ts) {
    ts["model.layers.0.self_attn.k_proj.weight"].shape = {64, 32};
  });
  expect_load_error(dir.path(), "tensor 'model.layers.0.self_attn.k_proj.weight' in '" +
                                    (dir / "model.safetensors") +
                                    "' has shape [64, 32] but the config implies [32, 64]");

  write_qwen2_folder(dir, [](StTensors& ts) { ts["model.norm.weight"].dtype = "F8_E4M3"; });
  expect_load_error(dir.path(), "needs 64 bytes but its data_offsets span 256");
}

TEST(Loader, LlamaAttentionBiasOnlyWithZeroOutputBias) {
  // attention_bias gives Llama q/k/v biases (loaded) and an o_proj bias (no slot: must be zero).
  TempDir dir;
  const std::string src = tiny_fixture("llama3_rope");
  json j = tiny_hf_config("llama3_rope");
  j["attention_bias"] = true;
  write_bytes(dir / "config.json", j.dump());
  StTensors ts = st_read_all(src + "/model.safetensors");
  for (int i = 0; i < 2; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".self_attn.";
    ts[p + "q_proj.bias"] = st_f32({128}, std::vector<float>(128, 0.5f));
    ts[p + "k_proj.bias"] = st_f32({32}, std::vector<float>(32, 0.25f));
    ts[p + "v_proj.bias"] = st_f32({32}, std::vector<float>(32, -1.0f));
    ts[p + "o_proj.bias"] = st_f32({32}, std::vector<float>(32, 0.0f));
  }
  st_write(dir / "model.safetensors", ts);
  const Model m = load_model(dir.path());
  EXPECT_TRUE(m.config.qkv_bias);
  EXPECT_EQ(m.weights.layers[1].bk, std::vector<float>(32, 0.25f));

  ts["model.layers.1.self_attn.o_proj.bias"] = st_f32({32}, std::vector<float>(32, 0.1f));
  st_write(dir / "model.safetensors", ts);
  expect_load_error(dir.path(), "'model.layers.1.self_attn.o_proj.bias' is nonzero");
}

// ---- GGUF variants built from the fixtures ----------------------------------------------------

GgufBuilder gguf_copy(const std::string& name) {
  return GgufBuilder::copy_of(GgufFile(tiny_fixture(name) + "/model-f32.gguf"));
}

TEST(Loader, GgufLlama3ScalingFromKeys) {
  TempDir dir;
  GgufBuilder b = gguf_copy("llama3_rope");
  b.erase_tensor("rope_freqs.weight");
  b.set_string("llama.rope.scaling.type", "llama3");
  b.set_f32("llama.rope.scaling.factor", 8);
  b.set_u32("llama.rope.scaling.original_context_length", 64);
  b.set_f32("llama.rope.scaling.low_freq_factor", 1);
  b.set_f32("llama.rope.scaling.high_freq_factor", 4);
  b.write(dir / "keys.gguf");
  const Model hf = load_model(tiny_fixture("llama3_rope"));
  expect_same_config(load_model(dir / "keys.gguf").config, hf.config);

  // Keys and rope_freqs.weight together must agree.
  b.add_tensor(gguf_copy("llama3_rope").tensor("rope_freqs.weight"));
  b.write(dir / "both.gguf");
  expect_same_config(load_model(dir / "both.gguf").config, hf.config);
  b.set_f32("llama.rope.scaling.factor", 4);
  b.write(dir / "both.gguf");
  expect_load_error(dir / "both.gguf", "rope_freqs.weight disagrees with the llama3");

  b.set_string("llama.rope.scaling.type", "yarn");
  b.write(dir / "yarn.gguf");
  expect_load_error(dir / "yarn.gguf",
                    "unsupported RoPE scaling type 'yarn' (supported: none, llama3)");
}

TEST(Loader, GgufRopeFreqsThatAreNotLlama3) {
  TempDir dir;
  GgufBuilder b = gguf_copy("llama3_rope");
  b.tensor("rope_freqs.weight").data = {1, 3, 2, 5, 1, 1, 7, 2};
  b.write(dir / "odd.gguf");
  expect_load_error(dir / "odd.gguf", "no llama3 scaling");
  b.tensor("rope_freqs.weight").data.assign(8, 1.0f);  // all ones: no scaling at all
  b.write(dir / "ones.gguf");
  EXPECT_FALSE(load_model(dir / "ones.gguf").config.rope_scaling.llama3);
  b.tensor("rope_freqs.weight").data.assign(5, 1.0f);
  b.tensor("rope_freqs.weight").dims = {5};
  b.write(dir / "short.gguf");
  expect_load_error(dir / "short.gguf", "rope_freqs.weight has dims [5], expected [8]");
}

TEST(Loader, GgufErrors) {
  TempDir dir;
  GgufBuilder b = gguf_copy("llama_gqa");
  b.set_string("general.architecture", "gpt2");
  b.write(dir / "arch.gguf");
  expect_load_error(dir / "arch.gguf", "unsupported architecture 'gpt2' (supported: llama, qwen2)");

  b = gguf_copy("llama_gqa");
  b.erase_tensor("blk.1.ffn_up.weight");
  b.write(dir / "missing.gguf");
  expect_load_error(dir / "missing.gguf", "tensor 'blk.1.ffn_up.weight' is missing from '" +
                                              (dir / "missing.gguf") + "'");

  b = gguf_copy("llama_gqa");
  b.tensor("blk.0.attn_k.weight").dims = {24, 72};
  b.write(dir / "shape.gguf");
  expect_load_error(dir / "shape.gguf", "tensor 'blk.0.attn_k.weight' in '" + (dir / "shape.gguf") +
                                            "' has dims [24, 72] but the config implies [72, 24]");

  b = gguf_copy("qwen2_bias");
  b.erase_tensor("blk.0.attn_q.bias");  // qwen2 always has q/k/v biases
  b.write(dir / "bias.gguf");
  expect_load_error(dir / "bias.gguf", "tensor 'blk.0.attn_q.bias' is missing");

  b = gguf_copy("llama_gqa");
  b.erase_key("llama.block_count");
  b.write(dir / "key.gguf");
  expect_load_error(dir / "key.gguf", "llama.block_count");

  b = gguf_copy("llama_gqa");
  b.set_u32("llama.rope.dimension_count", 6);
  b.write(dir / "partial.gguf");
  expect_load_error(dir / "partial.gguf", "partial rotary");

  b = gguf_copy("llama_gqa");
  b.set_u32("llama.vocab_size", 130);
  b.write(dir / "vocab.gguf");
  expect_load_error(dir / "vocab.gguf",
                    "llama.vocab_size = 130 but token_embd.weight has 131 rows");

  write_bytes(dir / "junk.gguf", "not a gguf file at all");
  EXPECT_FALSE(error_of([&] { load_model(dir / "junk.gguf"); }).empty());
}

// Counts are checked against the tensors that are there before anything is allocated per layer:
// a lying block_count once allocated 288 bytes of empty layer per claimed layer (2.8 GB for a
// 4.8 KB file claiming 10M, 618 GB for 2^31 - 1) before the first missing tensor was noticed.
TEST(Loader, LyingLayerCounts) {
  TempDir dir;
  GgufBuilder b = gguf_copy("llama_gqa");
  b.set_u32("llama.block_count", 1000);
  b.write(dir / "layers.gguf");
  expect_load_error(dir / "layers.gguf",
                    "block_count is 1000 but tensor 'blk.2.attn_norm.weight' is missing");
  for (const uint32_t n : {0u, 10'000'000u, 0x7fffffffu, 0xffffffffu}) {
    b.set_u32("llama.block_count", n);
    b.write(dir / "layers.gguf");
    expect_load_error(dir / "layers.gguf",
                      "'llama.block_count' = " + std::to_string(n) + " is outside [1, 65536]");
  }
  b = gguf_copy("llama_gqa");
  b.set_u64("llama.attention.head_count", (uint64_t{1} << 32) + 6);  // 6 once cast to int
  b.write(dir / "heads.gguf");
  expect_load_error(dir / "heads.gguf", "= 4294967302 is outside [1, 65536]");

  write_qwen2_folder(dir, [](StTensors&) {});
  json j = tiny_hf_config("qwen2_bias");
  for (const json& n : {json(1000), json(10'000'000), json(2147483647), json(77.9), json(1e300),
                        json(18446744073709551615ull), json(-1)}) {
    j["num_hidden_layers"] = n;
    write_bytes(dir / "config.json", j.dump());
    const std::string msg = error_of([&] { load_model(dir.path()); });
    if (n == json(1000)) {
      EXPECT_NE(msg.find("num_hidden_layers is 1000 but tensor "
                         "'model.layers.2.input_layernorm.weight' is missing"),
                std::string::npos)
          << msg;
    } else if (n.is_number_float()) {
      EXPECT_NE(msg.find("'num_hidden_layers' is not an integer"), std::string::npos) << msg;
    } else {
      EXPECT_NE(msg.find("'num_hidden_layers' = " + n.dump() + " is outside [1, 65536]"),
                std::string::npos)
          << msg;
    }
  }
  // Products of in-range counts must still fit the int fields they make.
  j = tiny_hf_config("llama_gqa");
  j["num_attention_heads"] = 65536;
  j["num_key_value_heads"] = 65536;
  j["head_dim"] = 65536;
  expect_hf_error(j, "too many to index with int");
}

// config.json and the safetensors index are read whole, so they must be regular files within a
// cap: a FIFO in their place once made the loader wait forever.
TEST(Loader, ModelJsonFilesMustBeRegular) {
  TempDir dir;
  write_qwen2_folder(dir, [](StTensors&) {});
  fs::remove(dir / "config.json");
  ASSERT_EQ(::mkfifo((dir / "config.json").c_str(), 0600), 0);
  expect_load_error(dir.path(), "is a FIFO");
  fs::remove(dir / "config.json");
  fs::create_directory(dir / "config.json");
  expect_load_error(dir.path(), "is a directory");
  fs::remove(dir / "config.json");
  write_bytes(dir / "config.json", read_bytes(tiny_fixture("qwen2_bias") + "/config.json"));
  ASSERT_EQ(::mkfifo((dir / "model.safetensors.index.json").c_str(), 0600), 0);
  expect_load_error(dir.path(), "safetensors index");
  fs::remove(dir / "model.safetensors.index.json");
  // A config.json that is a loop of links: our error, not std::filesystem's exception.
  fs::remove(dir / "config.json");
  fs::create_symlink("config.json", dir / "config.json");
  expect_load_error(dir.path(), "Too many levels of symbolic links");
}

TEST(Loader, GgufTiedDetectedByMissingOutput) {
  TempDir dir;
  GgufBuilder b = gguf_copy("qwen2_bias");
  b.erase_tensor("output.weight");
  b.write(dir / "tied.gguf");
  const Model m = load_model(dir / "tied.gguf");
  EXPECT_TRUE(m.config.tied_embeddings);
  EXPECT_TRUE(m.weights.output.empty());
  EXPECT_EQ(&m.weights.lm_head(), &m.weights.tok_embd);
}

}  // namespace
}  // namespace starattn
