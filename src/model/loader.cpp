#include "model/loader.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>

#include "io/text_file.h"
#include "model/loader_jobs.h"
#include "model/safetensors.h"
#include "starattn/error.h"

namespace starattn {
namespace loader_detail {

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

void run_load_jobs(std::vector<LoadJob>& jobs) {
  // Reading is dequantisation or conversion over a memory map: independent per tensor, so the
  // tensors are spread over threads. Errors cannot leave an OpenMP region; the first one (in job
  // order, so the message does not depend on scheduling) is rethrown after it.
  std::vector<std::exception_ptr> errors(jobs.size());
  const int64_t n = static_cast<int64_t>(jobs.size());
#pragma omp parallel for schedule(dynamic)
  for (int64_t i = 0; i < n; ++i) {
    try {
      if (jobs[i].matrix)
        *jobs[i].matrix = jobs[i].read_matrix();
      else
        *jobs[i].dst = jobs[i].read();
    } catch (...) {
      errors[i] = std::current_exception();
    }
  }
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
}

WeightMatrix matrix_from_f32(std::vector<float> values, int64_t rows, int64_t cols,
                             WeightsType type) {
  if (type == WeightsType::BF16) return WeightMatrix::bf16_from(values, rows, cols);
  return WeightMatrix::f32(std::move(values), rows, cols);
}

}  // namespace loader_detail

namespace {

using loader_detail::kMaxCount;
using loader_detail::kMaxInt;
using loader_detail::kMaxWidth;
using loader_detail::LoadJob;
using loader_detail::shape_string;
using nlohmann::json;

// JSON strings: a wrong type is the file's fault, so it gets our error rather than nlohmann's.
std::string hf_string(const json& j, const char* key) {
  SA_CHECK(j.contains(key) && j[key].is_string(), "config.json: '", key, "' is not a string");
  return j[key].get<std::string>();
}

// JSON fields: a null value counts as absent, as transformers treats it.
bool has(const json& j, const char* key) {
  return j.contains(key) && !j[key].is_null();
}

// An integer field in [lo, hi]. A float (77.9, 1e300) is refused rather than truncated: it is
// not the count the file meant, and out of range it is undefined behaviour to convert.
int hf_int(const json& j, const char* key, int64_t lo, int64_t hi) {
  SA_CHECK(has(j, key), "config.json: missing '", key, "'");
  const json& v = j[key];
  SA_CHECK(v.is_number_integer(), "config.json: '", key, "' is not an integer");
  // Unsigned values above int64's range are compared as unsigned, not wrapped to negative ones.
  const bool in_range = v.is_number_unsigned() ? v.get<uint64_t>() <= static_cast<uint64_t>(hi) &&
                                                     static_cast<int64_t>(v.get<uint64_t>()) >= lo
                                               : v.get<int64_t>() >= lo && v.get<int64_t>() <= hi;
  SA_CHECK(in_range, "config.json: '", key, "' = ", v.dump(), " is outside [", lo, ", ", hi, "]");
  return static_cast<int>(v.get<int64_t>());
}
int hf_int_or(const json& j, const char* key, int64_t lo, int64_t hi, int def) {
  return has(j, key) ? hf_int(j, key, lo, hi) : def;
}

double hf_float(const json& j, const char* key) {
  SA_CHECK(has(j, key) && j[key].is_number(), "config.json: '", key,
           "' is missing or not a number");
  return j[key].get<double>();
}
double hf_float_or(const json& j, const char* key, double def) {
  return has(j, key) ? hf_float(j, key) : def;
}

bool hf_bool_or(const json& j, const char* key, bool def) {
  if (!has(j, key)) return def;
  SA_CHECK(j[key].is_boolean(), "config.json: '", key, "' is not true/false");
  return j[key].get<bool>();
}

// RoPE from either spelling: transformers >= 5 writes rope_parameters {rope_type, rope_theta, ...};
// older configs (most on the Hub) write rope_theta at the top and rope_scaling {type|rope_type,
// ...}.
void hf_rope(const json& j, ModelConfig& c) {
  const json* p = nullptr;
  if (has(j, "rope_parameters"))
    p = &j["rope_parameters"];
  else if (has(j, "rope_scaling"))
    p = &j["rope_scaling"];
  if (p) SA_CHECK(p->is_object(), "config.json: rope_scaling / rope_parameters is not an object");
  c.rope_theta = static_cast<float>(p && has(*p, "rope_theta") ? hf_float(*p, "rope_theta")
                                                               : hf_float_or(j, "rope_theta", 1e4));
  std::string type = "default";
  if (p && has(*p, "rope_type"))
    type = hf_string(*p, "rope_type");
  else if (p && has(*p, "type"))
    type = hf_string(*p, "type");
  if (type == "default") return;
  SA_CHECK(type == "llama3", "config.json: unsupported RoPE scaling type '", type,
           "' (supported: default, llama3)");
  RopeScaling& s = c.rope_scaling;
  s.llama3 = true;
  s.factor = static_cast<float>(hf_float(*p, "factor"));
  s.low_freq_factor = static_cast<float>(hf_float_or(*p, "low_freq_factor", 1.0));
  s.high_freq_factor = static_cast<float>(hf_float_or(*p, "high_freq_factor", 4.0));
  s.original_max_positions = hf_int(*p, "original_max_position_embeddings", 1, kMaxInt);
  SA_CHECK(s.factor >= 1 && s.low_freq_factor > 0 && s.high_freq_factor > s.low_freq_factor &&
               s.original_max_positions > 0,
           "config.json: llama3 RoPE scaling needs factor >= 1, 0 < low_freq_factor < "
           "high_freq_factor and original_max_position_embeddings > 0");
}

std::vector<int64_t> shape_of(std::initializer_list<int> dims) {
  return std::vector<int64_t>(dims.begin(), dims.end());
}

Model load_hf(const std::string& dir, WeightsType weights) {
  namespace fs = std::filesystem;
  const fs::path cfg_path = fs::path(dir) / "config.json";
  std::error_code ec;
  SA_CHECK(fs::exists(cfg_path, ec), "no config.json in '", dir,
           "' (a Hugging Face model folder holds config.json and safetensors weights)",
           ec && ec != std::errc::no_such_file_or_directory ? ": " + ec.message() : "");
  const json j =
      json::parse(read_regular_file(cfg_path.string(), "model config", kMaxJsonFileBytes), nullptr,
                  /*allow_exceptions=*/false);
  SA_CHECK(!j.is_discarded(), "'", cfg_path.string(), "' is not valid JSON");

  Model m;
  m.config = config_from_hf(j);
  const ModelConfig& c = m.config;
  const SafetensorsFolder st(dir);

  // HF names and [out, in] shapes of every weight; shapes are checked before anything is read.
  std::vector<LoadJob> jobs;
  auto find = [&](const std::string& name, const std::vector<int64_t>& shape) {
    const SafetensorsFile* f = nullptr;
    const SafetensorsTensor* t = st.find(name, &f);
    SA_CHECK(t, "tensor '", name, "' is missing from the safetensors files in '", dir, "'");
    SA_CHECK(t->shape == shape, "tensor '", name, "' in '", f->path(), "' has shape ",
             shape_string(t->shape), " but the config implies ", shape_string(shape));
    return std::pair{f, t};
  };
  auto add = [&](std::string name, std::vector<float>* dst, std::vector<int64_t> shape) {
    const auto [f, t] = find(name, shape);
    jobs.push_back({name, dst, [f, t] { return f->read_f32(*t); }});
  };
  auto add_matrix = [&](std::string name, WeightMatrix* dst, std::vector<int64_t> shape) {
    const auto [f, t] = find(name, shape);
    LoadJob job{name};
    job.matrix = dst;
    job.read_matrix = [f, t, shape, weights] {
      return loader_detail::matrix_from_f32(f->read_f32(*t), shape[0], shape[1], weights);
    };
    jobs.push_back(std::move(job));
  };
  const int d = c.d_model, q = c.q_dim(), kv = c.kv_dim(), ffn = c.d_ffn;
  add_matrix("model.embed_tokens.weight", &m.weights.tok_embd, shape_of({c.vocab_size, d}));
  add("model.norm.weight", &m.weights.output_norm, shape_of({d}));
  // With tied embeddings a stray lm_head.weight (some exports keep one) is ignored.
  if (!c.tied_embeddings)
    add_matrix("lm_head.weight", &m.weights.output, shape_of({c.vocab_size, d}));
  // num_hidden_layers is a claim of config.json: every layer must have its first tensor there
  // before a slot is made for each, or a lying count allocates gigabytes of empty layers.
  for (int i = 0; i < c.n_layers; ++i) {
    const std::string first = "model.layers." + std::to_string(i) + ".input_layernorm.weight";
    SA_CHECK(st.find(first, nullptr), "'", dir, "': num_hidden_layers is ", c.n_layers,
             " but tensor '", first, "' is missing");
  }
  m.weights.layers.resize(c.n_layers);
  for (int i = 0; i < c.n_layers; ++i) {
    LayerWeights& l = m.weights.layers[i];
    const std::string p = "model.layers." + std::to_string(i) + ".";
    add(p + "input_layernorm.weight", &l.attn_norm, shape_of({d}));
    add_matrix(p + "self_attn.q_proj.weight", &l.wq, shape_of({q, d}));
    add_matrix(p + "self_attn.k_proj.weight", &l.wk, shape_of({kv, d}));
    add_matrix(p + "self_attn.v_proj.weight", &l.wv, shape_of({kv, d}));
    if (c.qkv_bias) {
      add(p + "self_attn.q_proj.bias", &l.bq, shape_of({q}));
      add(p + "self_attn.k_proj.bias", &l.bk, shape_of({kv}));
      add(p + "self_attn.v_proj.bias", &l.bv, shape_of({kv}));
    }
    add_matrix(p + "self_attn.o_proj.weight", &l.wo, shape_of({d, q}));
    add(p + "post_attention_layernorm.weight", &l.ffn_norm, shape_of({d}));
    add_matrix(p + "mlp.gate_proj.weight", &l.w_gate, shape_of({ffn, d}));
    add_matrix(p + "mlp.up_proj.weight", &l.w_up, shape_of({ffn, d}));
    add_matrix(p + "mlp.down_proj.weight", &l.w_down, shape_of({d, ffn}));
    // Llama's attention_bias also biases o_proj, which Weights has no slot for: accept it only
    // when it is zero, so that the model we compute is the model in the file.
    const SafetensorsFile* f = nullptr;
    if (const SafetensorsTensor* t = st.find(p + "self_attn.o_proj.bias", &f)) {
      const std::vector<float> b = f->read_f32(*t);
      SA_CHECK(std::all_of(b.begin(), b.end(), [](float x) { return x == 0.0f; }), "tensor '",
               t->name, "' is nonzero; an output-projection bias is not supported");
    }
  }
  loader_detail::run_load_jobs(jobs);
  return m;
}

}  // namespace

ModelConfig config_from_hf(const json& j) {
  SA_CHECK(j.is_object(), "config.json is not a JSON object");
  static const std::pair<const char*, const char*> kArchs[] = {{"LlamaForCausalLM", "llama"},
                                                               {"MistralForCausalLM", "mistral"},
                                                               {"Qwen2ForCausalLM", "qwen2"}};
  const char* kSupported = "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM";
  ModelConfig c;
  // `architectures` names the class that wrote the weights; model_type alone (configs written
  // without a model) is accepted too.
  std::string name;
  if (has(j, "architectures")) {
    const json& a = j["architectures"];
    SA_CHECK(a.is_array() && (a.empty() || a[0].is_string()),
             "config.json: 'architectures' is not a list of names");
    if (!a.empty()) name = a[0].get<std::string>();
  }
  const std::string model_type = has(j, "model_type") ? hf_string(j, "model_type") : "";
  for (const auto& [cls, type] : kArchs)
    if (name.empty() ? model_type == type : name == cls) c.arch = type;
  if (c.arch.empty())
    fail("unsupported architecture '", name.empty() ? model_type : name,
         "' (supported: ", kSupported, ")");
  SA_CHECK(model_type.empty() || model_type == c.arch, "config.json: model_type '", model_type,
           "' does not match architecture '", name, "'");

  c.n_layers = hf_int(j, "num_hidden_layers", 1, kMaxCount);
  c.d_model = hf_int(j, "hidden_size", 1, kMaxWidth);
  c.n_heads = hf_int(j, "num_attention_heads", 1, kMaxCount);
  c.n_kv_heads = hf_int_or(j, "num_key_value_heads", 1, kMaxCount, c.n_heads);
  SA_CHECK(has(j, "head_dim") || c.d_model % c.n_heads == 0, "config.json: hidden_size ", c.d_model,
           " is not a multiple of num_attention_heads ", c.n_heads, " and head_dim is not given");
  c.head_dim = hf_int_or(j, "head_dim", 1, kMaxCount, c.d_model / c.n_heads);
  c.d_ffn = hf_int(j, "intermediate_size", 1, kMaxWidth);
  c.vocab_size = hf_int(j, "vocab_size", 1, kMaxInt);
  c.max_positions = hf_int(j, "max_position_embeddings", 1, kMaxInt);
  c.rms_eps = static_cast<float>(hf_float_or(j, "rms_norm_eps", 1e-6));
  hf_rope(j, c);
  c.tied_embeddings = hf_bool_or(j, "tie_word_embeddings", false);
  // Qwen2 always has q/k/v biases; Llama has them (and an o_proj bias) under attention_bias.
  c.qkv_bias = c.arch == "qwen2" || hf_bool_or(j, "attention_bias", false);

  const std::string act = has(j, "hidden_act") ? hf_string(j, "hidden_act") : "silu";
  SA_CHECK(act == "silu", "config.json: hidden_act '", act, "' is not supported (only silu)");
  SA_CHECK(!hf_bool_or(j, "mlp_bias", false), "config.json: mlp_bias is not supported");
  const bool window = c.arch == "mistral" || hf_bool_or(j, "use_sliding_window", false);
  if (window && has(j, "sliding_window"))
    c.max_positions = std::min(c.max_positions, hf_int(j, "sliding_window", 1, kMaxInt));
  c.validate();
  return c;
}

std::vector<double> llama3_rope_divisors(const ModelConfig& c) {
  // The formula of transformers' _compute_llama3_parameters and llama.cpp's converter.
  const int half = c.head_dim / 2;
  std::vector<double> div(half, 1.0);
  const RopeScaling& s = c.rope_scaling;
  if (!s.llama3) return div;
  const double low_wavelen = s.original_max_positions / double(s.low_freq_factor);
  const double high_wavelen = s.original_max_positions / double(s.high_freq_factor);
  for (int i = 0; i < half; ++i) {
    const double freq = std::pow(double(c.rope_theta), -2.0 * i / c.head_dim);
    const double wavelen = 2 * M_PI / freq;
    if (wavelen < high_wavelen) continue;
    if (wavelen > low_wavelen) {
      div[i] = s.factor;
    } else {
      const double smooth = (s.original_max_positions / wavelen - s.low_freq_factor) /
                            (s.high_freq_factor - s.low_freq_factor);
      div[i] = 1.0 / ((1 - smooth) / s.factor + smooth);
    }
  }
  return div;
}

Model load_model(const std::string& path, WeightsType weights) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  SA_CHECK(fs::exists(st), "model path '", path, "' ",
           st.type() == fs::file_type::not_found ? "does not exist"
                                                 : "cannot be accessed: " + ec.message());
  if (fs::is_directory(st)) return load_hf(path, weights);
  SA_CHECK(fs::path(path).extension() != ".safetensors", "'", path,
           "' is a safetensors file; pass the folder holding it and config.json");
  SA_CHECK(fs::is_regular_file(st), "model path '", path, "' is neither a folder nor a file");
  return loader_detail::load_gguf(path, weights);
}

}  // namespace starattn
