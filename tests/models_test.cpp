// What each supported model family (README.md, "Supported models") needs from the loader beyond
// the shared checks of loader_test.cpp, on the tiny fixtures of tools/make_tiny_models.py: Llama
// 3.2's tied embeddings and factor-32 scaling, Q8_0, Mistral's sliding window, Llama 2's default
// keys, Qwen2.5's switched-off window, and the real Llama 3.1 / 3.2 RoPE numbers through both
// loaders. The logits of the same fixtures are checked in forward_test.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "model/config.h"
#include "model/gguf.h"
#include "model/loader.h"
#include "model/rope_freq.h"
#include "model/safetensors.h"
#include "model_files.h"

namespace starattn {
namespace {

using namespace testfiles;
using nlohmann::json;

json config_json(const std::string& model) {
  return json::parse(read_bytes(tiny_fixture(model) + "/config.json"));
}

// The dtype of every tensor of an HF folder's one safetensors file.
std::vector<std::string> safetensors_dtypes(const std::string& model) {
  const SafetensorsFile f(tiny_fixture(model) + "/model.safetensors");
  std::vector<std::string> out;
  for (const auto& [name, t] : f.tensors()) out.push_back(t.dtype);
  return out;
}

TEST(Models, Llama32TiedWithFactor32Scaling) {
  const std::string dir = tiny_fixture("llama32_tied");
  for (const std::string& path : {dir, dir + "/model-f32.gguf", dir + "/model-q8_0.gguf"}) {
    const Model m = load_model(path);
    const ModelConfig& c = m.config;
    EXPECT_EQ(c.arch, "llama") << path;
    EXPECT_TRUE(c.tied_embeddings) << path;
    EXPECT_TRUE(m.weights.output.empty()) << path;
    EXPECT_EQ(&m.weights.lm_head(), &m.weights.tok_embd) << path;
    EXPECT_EQ(c.n_heads, 2) << path;
    EXPECT_EQ(c.n_kv_heads, 1) << path;
    EXPECT_EQ(c.head_dim, 16) << path;
    EXPECT_EQ(c.max_positions, 1024) << path;
    EXPECT_EQ(c.rope_theta, 500000.0f) << path;
    // From config.json, and for the GGUFs recovered from rope_freqs.weight alone.
    EXPECT_TRUE(c.rope_scaling.llama3) << path;
    EXPECT_EQ(c.rope_scaling.factor, 32.0f) << path;
    EXPECT_EQ(c.rope_scaling.low_freq_factor, 1.0f) << path;
    EXPECT_EQ(c.rope_scaling.high_freq_factor, 4.0f) << path;
    EXPECT_EQ(c.rope_scaling.original_max_positions, 64) << path;
  }
  const GgufFile f(dir + "/model-f32.gguf");
  EXPECT_EQ(f.find_tensor("output.weight"), nullptr);  // tied, as llama.cpp writes it
  EXPECT_NE(f.find_tensor("rope_freqs.weight"), nullptr);
  EXPECT_EQ(f.find("llama.rope.scaling.type"), nullptr);
  // Meta ships Llama 3.2 in BF16; the fixture's weights are BF16 values.
  for (const std::string& d : safetensors_dtypes("llama32_tied")) EXPECT_EQ(d, "BF16");
}

TEST(Models, Q8_0GgufWithinTheFormatsRounding) {
  // llama.cpp's Q8_0: per block of 32 along a row, d = max|x| / 127 stored as f16 and q =
  // round(x / d) as int8, read back as q * f16(d). So |x - q f16(d)| <= d/2 + 127 |d - f16(d)|,
  // and f16 rounds d to within d * 2^-11.
  const std::string dir = tiny_fixture("llama32_tied");
  const Model hf = load_model(dir);
  const Model q8 = load_model(dir + "/model-q8_0.gguf");
  const GgufFile f(dir + "/model-q8_0.gguf");
  for (const GgufTensorInfo& t : f.tensors())
    EXPECT_EQ(t.type, t.dims.size() > 1 ? GgmlType::Q8_0 : GgmlType::F32) << t.name;
  size_t n = 0, rounded = 0;
  auto check = [&](const std::string& name, const std::vector<float>& a,
                   const std::vector<float>& b, bool quantised) {
    ASSERT_EQ(a.size(), b.size()) << name;
    if (!quantised) {  // 1-D tensors stay F32
      EXPECT_TRUE(a == b) << name;
      return;
    }
    // Every row of these tensors is a multiple of 32 long, so blocks are 32 consecutive values of
    // the HF layout too (the loader's Q/K un-permutation moves whole rows).
    ASSERT_EQ(a.size() % 32, 0u) << name;
    for (size_t blk = 0; blk < a.size(); blk += 32) {
      float amax = 0;
      for (size_t i = blk; i < blk + 32; ++i) amax = std::max(amax, std::abs(a[i]));
      const double d = amax / 127.0;
      const double bound = (d / 2 + 127 * d * std::ldexp(1.0, -11)) * (1 + 1e-6);
      for (size_t i = blk; i < blk + 32; ++i) {
        ASSERT_LE(std::abs(double(a[i]) - b[i]), bound) << name << "[" << i << "]";
        rounded += a[i] != b[i];
        ++n;
      }
    }
  };
  check("tok_embd", hf.weights.tok_embd.to_f32(), q8.weights.tok_embd.to_f32(), true);
  check("output_norm", hf.weights.output_norm, q8.weights.output_norm, false);
  for (size_t i = 0; i < hf.weights.layers.size(); ++i) {
    const LayerWeights &x = hf.weights.layers[i], &y = q8.weights.layers[i];
    const std::string p = "layer " + std::to_string(i) + " ";
    check(p + "attn_norm", x.attn_norm, y.attn_norm, false);
    check(p + "ffn_norm", x.ffn_norm, y.ffn_norm, false);
    check(p + "wq", x.wq.to_f32(), y.wq.to_f32(), true);
    check(p + "wk", x.wk.to_f32(), y.wk.to_f32(), true);
    check(p + "wv", x.wv.to_f32(), y.wv.to_f32(), true);
    check(p + "wo", x.wo.to_f32(), y.wo.to_f32(), true);
    check(p + "w_gate", x.w_gate.to_f32(), y.w_gate.to_f32(), true);
    check(p + "w_up", x.w_up.to_f32(), y.w_up.to_f32(), true);
    check(p + "w_down", x.w_down.to_f32(), y.w_down.to_f32(), true);
  }
  EXPECT_GT(rounded, n / 2);  // the file really is quantised
}

TEST(Models, MistralSlidingWindowCapsTheHfFolderOnly) {
  // transformers' Mistral attends to the last sliding_window keys only. Within the first window
  // that is full causal attention, which is all starattn computes, so the HF folder's context is
  // the window. llama.cpp's converter writes Mistral as "llama" with no window key, and
  // transformers reads that GGUF without a window too: its context is max_position_embeddings.
  const json j = config_json("mistral_swa");
  ASSERT_EQ(j["sliding_window"], 16);
  ASSERT_EQ(j["max_position_embeddings"], 256);
  const std::string dir = tiny_fixture("mistral_swa");
  const Model hf = load_model(dir);
  EXPECT_EQ(hf.config.arch, "mistral");
  EXPECT_EQ(hf.config.max_positions, 16);
  EXPECT_EQ(hf.config.head_dim, 8);  // explicit: q_dim 16 < d_model 24, as Mistral NeMo
  EXPECT_EQ(hf.config.q_dim(), 16);
  EXPECT_EQ(hf.config.d_model, 24);
  EXPECT_EQ(hf.config.n_kv_heads, 1);
  EXPECT_EQ(hf.config.rope_theta, 1e6f);
  EXPECT_FALSE(hf.config.tied_embeddings);
  const Model gg = load_model(dir + "/model-f32.gguf");
  EXPECT_EQ(gg.config.arch, "llama");
  EXPECT_EQ(gg.config.max_positions, 256);
  EXPECT_EQ(gg.config.head_dim, 8);  // from attention.key_length, not 24 / 2

  // A Mistral config without a window (v0.2 and later: null) is not capped.
  json no_window = j;
  no_window["sliding_window"] = nullptr;
  EXPECT_EQ(config_from_hf(no_window).max_positions, 256);
}

TEST(Models, Llama2KeysLeftToTheirDefaults) {
  // The Hub's Llama 2 config.json has no num_key_value_heads, head_dim or rope_theta, and for such
  // a config llama.cpp's converter writes no head_count_kv, key_length or rope.freq_base.
  const json j = config_json("llama2_mha");
  for (const char* key : {"num_key_value_heads", "head_dim", "rope_theta", "rope_parameters"})
    ASSERT_FALSE(j.contains(key)) << key;
  const std::string dir = tiny_fixture("llama2_mha");
  const GgufFile f(dir + "/model-f32.gguf");
  for (const char* key : {"llama.attention.head_count_kv", "llama.attention.key_length",
                          "llama.attention.value_length", "llama.rope.freq_base"})
    ASSERT_EQ(f.find(key), nullptr) << key;
  for (const std::string& path : {dir, dir + "/model-f32.gguf"}) {
    const ModelConfig c = load_model(path).config;
    EXPECT_EQ(c.n_heads, 2) << path;
    EXPECT_EQ(c.n_kv_heads, 2) << path;  // multi-head attention, no GQA
    EXPECT_EQ(c.head_dim, 8) << path;
    EXPECT_EQ(c.rope_theta, 10000.0f) << path;
    EXPECT_FALSE(c.rope_scaling.llama3) << path;
    EXPECT_EQ(c.vocab_size, 320) << path;
    EXPECT_EQ(c.max_positions, 4096) << path;
    EXPECT_FALSE(c.tied_embeddings) << path;
  }
  for (const std::string& d : safetensors_dtypes("llama2_mha")) EXPECT_EQ(d, "F16");
}

TEST(Models, Qwen25TiedWithItsWindowSwitchedOff) {
  // Qwen2.5's config.json carries a sliding_window that use_sliding_window false switches off;
  // transformers then attends fully, so it must not cap the context.
  const json j = config_json("qwen25_tied");
  ASSERT_EQ(j["sliding_window"], 16);
  ASSERT_EQ(j["use_sliding_window"], false);
  const std::string dir = tiny_fixture("qwen25_tied");
  for (const std::string& path : {dir, dir + "/model-f32.gguf"}) {
    const Model m = load_model(path);
    const ModelConfig& c = m.config;
    EXPECT_EQ(c.arch, "qwen2") << path;
    EXPECT_EQ(c.max_positions, 512) << path;
    EXPECT_TRUE(c.tied_embeddings) << path;
    EXPECT_TRUE(m.weights.output.empty()) << path;
    EXPECT_TRUE(c.qkv_bias) << path;
    EXPECT_EQ(c.n_heads, 3) << path;
    EXPECT_EQ(c.n_kv_heads, 1) << path;
    EXPECT_EQ(c.rope_theta, 1e6f) << path;
    for (const LayerWeights& l : m.weights.layers)  // random, so any zero means a bias was lost
      for (const auto* v : {&l.bq, &l.bk, &l.bv})
        for (float x : *v) ASSERT_NE(x, 0.0f) << path;
  }
  json on = j;
  on["use_sliding_window"] = true;  // then the window applies and caps the context
  EXPECT_EQ(config_from_hf(on).max_positions, 16);
}

// ---- real Llama 3.1 / 3.2 RoPE ---------------------------------------------------------------

// A GGUF with the metadata llama.cpp's converter writes for a real model and its rope_freqs, but
// a one-row token table and no layers: config_from_gguf reads no other tensor.
void write_real_metadata_gguf(const std::string& path, const json& entry, int d_model) {
  GgufBuilder b;
  for (const json& kv : entry["gguf_keys"]) {
    const std::string key = kv[0], type = kv[1];
    if (key == "llama.vocab_size") continue;  // the one-row table stands for 128256 rows
    if (type == "u32")
      b.set_u32(key, kv[2].get<uint32_t>());
    else if (type == "f32")
      b.set_f32(key, kv[2].get<float>());
    else
      b.set_string(key, kv[2].get<std::string>());
  }
  b.add_tensor({"token_embd.weight", {d_model, 1}, std::vector<float>(d_model, 0.0f)});
  const std::vector<float> freqs = entry["rope_freqs"].get<std::vector<float>>();
  b.add_tensor({"rope_freqs.weight", {int64_t(freqs.size())}, freqs});
  b.write(path);
}

void expect_inv_freq(const ModelConfig& c, const std::vector<float>& want, const std::string& n) {
  const std::vector<float> got = rope_inv_freq(c);
  ASSERT_EQ(got.size(), want.size()) << n;
  for (size_t i = 0; i < got.size(); ++i)  // both fp32 arithmetic: an ulp or two apart at most
    EXPECT_NEAR(got[i], want[i], 1e-6 * want[i]) << n << " frequency " << i;
}

TEST(Models, RealLlama3xRopeThroughBothLoaders) {
  const json fixture = json::parse(read_bytes(tiny_fixture("real_rope") + "/llama3.json"));
  ASSERT_EQ(fixture.size(), 3u);
  TempDir dir;
  for (const auto& [name, entry] : fixture.items()) {
    const std::vector<float> inv_freq = entry["inv_freq"].get<std::vector<float>>();
    const json& hub = entry["config"];
    const float factor = hub["rope_scaling"]["factor"].get<float>();

    // The Hub's config.json, old spelling (rope_theta at the top, rope_scaling).
    const ModelConfig hf = config_from_hf(hub);
    EXPECT_EQ(hf.head_dim, 2 * int(inv_freq.size())) << name;
    EXPECT_EQ(hf.rope_scaling.factor, factor) << name;
    EXPECT_EQ(hf.rope_scaling.original_max_positions, 8192) << name;
    expect_inv_freq(hf, inv_freq, name + " (config.json)");

    // The converter's GGUF: only rope_freqs.weight says there is scaling; the loader must find
    // the very parameters again, not just some that reproduce the divisors.
    const std::string path = dir / (name + ".gguf");
    write_real_metadata_gguf(path, entry, hf.d_model);
    const ModelConfig gg = config_from_gguf(GgufFile(path));
    EXPECT_EQ(gg.head_dim, hf.head_dim) << name;
    EXPECT_TRUE(gg.rope_scaling.llama3) << name;
    EXPECT_EQ(gg.rope_scaling.factor, factor) << name;
    EXPECT_EQ(gg.rope_scaling.low_freq_factor, 1.0f) << name;
    EXPECT_EQ(gg.rope_scaling.high_freq_factor, 4.0f) << name;
    EXPECT_EQ(gg.rope_scaling.original_max_positions, 8192) << name;
    EXPECT_EQ(gg.max_positions, 131072) << name;
    expect_inv_freq(gg, inv_freq, name + " (GGUF)");
  }
}

// The random model of speed runs has Llama-3.1-8B's shape as the Hub's config.json gives it (the
// fixture's copy), RoPE included; only its positions differ (it was never trained to a length).
TEST(Models, RandomLlama31_8bShapeIsTheHubs) {
  const json fixture = json::parse(read_bytes(tiny_fixture("real_rope") + "/llama3.json"));
  const ModelConfig hub = config_from_hf(fixture.at("llama-3.1-8b").at("config"));
  const ModelConfig c = llama31_8b_config();
  EXPECT_NO_THROW(c.validate());
  EXPECT_EQ(c.arch, hub.arch);
  EXPECT_EQ(c.n_layers, hub.n_layers);
  EXPECT_EQ(c.d_model, hub.d_model);
  EXPECT_EQ(c.n_heads, hub.n_heads);
  EXPECT_EQ(c.n_kv_heads, hub.n_kv_heads);
  EXPECT_EQ(c.head_dim, hub.head_dim);
  EXPECT_EQ(c.d_ffn, hub.d_ffn);
  EXPECT_EQ(c.vocab_size, hub.vocab_size);
  EXPECT_EQ(c.rms_eps, hub.rms_eps);
  EXPECT_EQ(c.rope_theta, hub.rope_theta);
  EXPECT_EQ(c.rope_scaling.llama3, hub.rope_scaling.llama3);
  EXPECT_EQ(c.rope_scaling.factor, hub.rope_scaling.factor);
  EXPECT_EQ(c.rope_scaling.low_freq_factor, hub.rope_scaling.low_freq_factor);
  EXPECT_EQ(c.rope_scaling.high_freq_factor, hub.rope_scaling.high_freq_factor);
  EXPECT_EQ(c.rope_scaling.original_max_positions, hub.rope_scaling.original_max_positions);
  EXPECT_EQ(c.qkv_bias, hub.qkv_bias);
  EXPECT_EQ(c.tied_embeddings, hub.tied_embeddings);
  expect_inv_freq(c, fixture["llama-3.1-8b"]["inv_freq"].get<std::vector<float>>(),
                  "llama31_8b_config");
  EXPECT_GE(c.max_positions, (1 << 20) + 65536) << "a 1M-token context and its queries";
}

}  // namespace
}  // namespace starattn
