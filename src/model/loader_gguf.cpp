// GGUF half of the model loader: llama.cpp metadata keys and tensor names -> ModelConfig, Weights.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>

#include "model/gguf.h"
#include "model/loader_jobs.h"
#include "starattn/error.h"

namespace starattn {
namespace {

using loader_detail::LoadJob;
using loader_detail::matrix_from_f32;
using loader_detail::shape_string;

using loader_detail::kMaxCount;
using loader_detail::kMaxInt;
using loader_detail::kMaxWidth;

// Model sizes from GGUF metadata, as int (ModelConfig's type), within the loader's bounds.
int gguf_int(const GgufFile& f, const std::string& key, int64_t hi) {
  return static_cast<int>(f.get_int_in(key, 1, hi));
}
int gguf_int_or(const GgufFile& f, const std::string& key, int64_t hi, int def) {
  return static_cast<int>(f.get_int_in_or(key, 1, hi, def));
}

// RoPE scaling from {arch}.rope.scaling.* keys. llama.cpp defines type, factor and
// original_context_length; low_freq_factor / high_freq_factor are our extension for "llama3",
// which llama.cpp itself never writes (it stores rope_freqs.weight instead; see rope_from_freqs).
void rope_from_keys(const GgufFile& f, const std::string& p, ModelConfig& c) {
  const std::string type = f.get_string_or(p + "rope.scaling.type", "none");
  const double factor = f.get_float_or(p + "rope.scaling.factor", 1.0);
  if (type == "none" || (type == "linear" && factor == 1.0)) return;
  SA_CHECK(type == "llama3", f.path(), ": unsupported RoPE scaling type '", type,
           "' (supported: none, llama3)");
  RopeScaling& s = c.rope_scaling;
  s.llama3 = true;
  s.factor = static_cast<float>(f.get_float(p + "rope.scaling.factor"));
  s.original_max_positions = gguf_int(f, p + "rope.scaling.original_context_length", kMaxInt);
  s.low_freq_factor = static_cast<float>(f.get_float_or(p + "rope.scaling.low_freq_factor", 1.0));
  s.high_freq_factor = static_cast<float>(f.get_float_or(p + "rope.scaling.high_freq_factor", 4.0));
  SA_CHECK(s.factor >= 1 && s.low_freq_factor > 0 && s.high_freq_factor > s.low_freq_factor &&
               s.original_max_positions > 0,
           f.path(),
           ": llama3 RoPE scaling needs factor >= 1, 0 < low_freq_factor < "
           "high_freq_factor and original_context_length > 0");
}

// llama.cpp's converter stores Llama 3.x RoPE scaling only as rope_freqs.weight: one divisor per
// frequency, [head_dim / 2]. ModelConfig describes the scaling by its parameters, so we find
// parameters that reproduce the divisors. They are underdetermined (only the two wavelength
// thresholds matter), so low_freq_factor 1 and high_freq_factor 4, the values of every Llama 3.x,
// are fixed and only original_max_positions is searched: taken from a divisor on the smooth ramp
// when there is one, else the first power of two that fits. Any result reproduces the stored
// divisors, which is all the forward pass uses.
void rope_from_freqs(const GgufFile& f, const GgufTensorInfo& t, ModelConfig& c) {
  const int half = c.head_dim / 2;
  SA_CHECK(t.dims.size() == 1 && t.dims[0] == half, f.path(), ": rope_freqs.weight has dims ",
           shape_string(t.dims), ", expected [", half, "] (head_dim / 2)");
  const std::vector<float> div = f.read_f32(t);
  auto reproduces = [&](const ModelConfig& cand) {
    const std::vector<double> want = llama3_rope_divisors(cand);
    for (int i = 0; i < half; ++i)
      if (!(std::abs(want[i] - div[i]) <= 1e-4 * want[i])) return false;  // NaN fails too
    return true;
  };
  if (c.rope_scaling.llama3) {
    SA_CHECK(reproduces(c), f.path(),
             ": rope_freqs.weight disagrees with the llama3 rope.scaling keys");
    return;
  }
  if (reproduces(c)) return;  // all ones: no scaling

  ModelConfig cand = c;
  RopeScaling& s = cand.rope_scaling;
  s.llama3 = true;
  s.factor = div.back();  // the lowest frequency is always in the scaled band
  s.low_freq_factor = 1.0f;
  s.high_freq_factor = 4.0f;
  std::vector<int64_t> origs;
  for (int i = 0; i < half && s.factor > 1; ++i) {
    if (div[i] > 1 + 1e-4 && div[i] < s.factor * (1 - 1e-4)) {
      // On the ramp 1/div = (1 - r)/factor + r with r = (orig / wavelength - 1) / 3.
      const double r = (1.0 / div[i] - 1.0 / s.factor) / (1.0 - 1.0 / s.factor);
      const double wavelen = 2 * M_PI * std::pow(double(c.rope_theta), 2.0 * i / c.head_dim);
      const double orig = wavelen * (3 * r + 1);
      if (orig > 0 && orig < 1e9) origs.push_back(std::llround(orig));
      break;
    }
  }
  for (int e = 4; e <= 24; ++e) origs.push_back(int64_t{1} << e);
  for (int64_t o : origs) {
    s.original_max_positions = static_cast<int>(o);
    if (reproduces(cand)) {
      c.rope_scaling = s;
      return;
    }
  }
  fail(f.path(),
       ": rope_freqs.weight holds RoPE divisors that no llama3 scaling (low_freq_factor "
       "1, high_freq_factor 4) reproduces; other RoPE scalings are not supported");
}

// Undoes llama.cpp's permute() of llama-arch Q/K rows: within each head of hd rows, GGUF row
// 2i+j holds HF row j*(hd/2)+i. Rows are moved whole, as bytes, so this serves fp32 values and
// quantised blocks alike (a block never spans two rows). src: [heads * hd rows of row_bytes].
std::vector<uint8_t> unpermute_rows(const uint8_t* src, int64_t rows, size_t row_bytes, int heads) {
  std::vector<uint8_t> out(static_cast<size_t>(rows) * row_bytes);
  const int64_t hd = rows / heads;
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < hd / 2; ++i)
      for (int64_t j = 0; j < 2; ++j)
        std::memcpy(&out[((h * hd) + j * (hd / 2) + i) * row_bytes],
                    &src[((h * hd) + 2 * i + j) * row_bytes], row_bytes);
  return out;
}

// Tells the kernel this process will not read [p, p + n) of the mapped file again (the rows were
// copied): its clean pages leave the resident set instead of counting twice. Only whole pages
// inside the range, so neighbouring tensors keep theirs; a later read would fault them back in.
void drop_mapped_pages(const uint8_t* p, size_t n) {
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + page - 1) / page * page;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + n) / page * page;
  if (end > begin) (void)madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

// The same on fp32 values v: [rows, v.size() / rows] (a bias is rows of one value).
std::vector<float> unpermute_values(const std::vector<float>& v, int64_t rows, int heads) {
  const size_t row_bytes = rows ? v.size() / static_cast<size_t>(rows) * 4 : 0;
  const std::vector<uint8_t> b =
      unpermute_rows(reinterpret_cast<const uint8_t*>(v.data()), rows, row_bytes, heads);
  std::vector<float> out(v.size());
  if (!b.empty()) std::memcpy(out.data(), b.data(), b.size());
  return out;
}

}  // namespace

ModelConfig config_from_gguf(const GgufFile& f) {
  const std::string arch = f.get_string("general.architecture");
  SA_CHECK(arch == "llama" || arch == "qwen2", f.path(), ": unsupported architecture '", arch,
           "' (supported: llama, qwen2)");
  ModelConfig c;
  c.arch = arch;
  const std::string p = arch + ".";
  c.n_layers = gguf_int(f, p + "block_count", kMaxCount);
  c.d_model = gguf_int(f, p + "embedding_length", kMaxWidth);
  c.n_heads = gguf_int(f, p + "attention.head_count", kMaxCount);
  c.n_kv_heads = gguf_int_or(f, p + "attention.head_count_kv", kMaxCount, c.n_heads);
  c.d_ffn = gguf_int(f, p + "feed_forward_length", kMaxWidth);
  c.max_positions = gguf_int(f, p + "context_length", kMaxInt);
  c.rms_eps = static_cast<float>(f.get_float(p + "attention.layer_norm_rms_epsilon"));
  c.rope_theta = static_cast<float>(f.get_float_or(p + "rope.freq_base", 10000.0));
  SA_CHECK(f.find(p + "attention.key_length") || c.d_model % c.n_heads == 0, f.path(),
           ": embedding_length ", c.d_model, " is not a multiple of head_count ", c.n_heads,
           " and attention.key_length is not given");
  c.head_dim = gguf_int_or(f, p + "attention.key_length", kMaxCount, c.d_model / c.n_heads);
  const int v_dim = gguf_int_or(f, p + "attention.value_length", kMaxCount, c.head_dim);
  SA_CHECK(v_dim == c.head_dim, f.path(), ": value head size ", v_dim,
           " differs from key head size ", c.head_dim, "; not supported");
  const int rope_dim = gguf_int_or(f, p + "rope.dimension_count", kMaxCount, c.head_dim);
  SA_CHECK(rope_dim == c.head_dim, f.path(), ": RoPE on ", rope_dim, " of ", c.head_dim,
           " head dimensions (partial rotary) is not supported");

  // The embedding table, not the tokenizer, fixes the vocabulary the forward pass sees.
  const GgufTensorInfo* embd = f.find_tensor("token_embd.weight");
  SA_CHECK(embd, "tensor 'token_embd.weight' is missing from '", f.path(), "'");
  SA_CHECK(embd->dims.size() == 2 && embd->dims[1] <= std::numeric_limits<int>::max(), f.path(),
           ": token_embd.weight has dims ", shape_string(embd->dims),
           ", expected [embedding_length, vocab]");
  c.vocab_size = static_cast<int>(embd->dims[1]);
  const int vocab_key = gguf_int_or(f, p + "vocab_size", kMaxInt, c.vocab_size);
  SA_CHECK(vocab_key == c.vocab_size, f.path(), ": ", p, "vocab_size = ", vocab_key,
           " but token_embd.weight has ", c.vocab_size, " rows");
  // llama.cpp's convention (and transformers' reading of it): no output.weight means tied.
  c.tied_embeddings = f.find_tensor("output.weight") == nullptr;
  c.qkv_bias = arch == "qwen2" || f.find_tensor("blk.0.attn_q.bias") != nullptr;

  rope_from_keys(f, p, c);
  c.validate();  // head_dim must be sane before the RoPE divisors are computed
  if (const GgufTensorInfo* freqs = f.find_tensor("rope_freqs.weight"))
    rope_from_freqs(f, *freqs, c);
  c.validate();
  return c;
}

namespace loader_detail {

Model load_gguf(const std::string& path, WeightsType weights) {
  // Native weights point into the file's mapping, which lives as long as the last of them.
  const auto file = std::make_shared<const GgufFile>(path);
  const GgufFile& f = *file;
  Model m;
  m.config = config_from_gguf(f);
  const ModelConfig& c = m.config;
  // llama.cpp permutes Q/K only for the llama architecture; qwen2 already uses neox RoPE there.
  const bool permuted = c.arch == "llama";

  std::vector<LoadJob> jobs;
  // hf_shape: [out, in] (or [n]); GGUF dims list the same sizes row length first.
  auto find = [&](const std::string& name, const std::vector<int64_t>& hf_shape) {
    const GgufTensorInfo* t = f.find_tensor(name);
    SA_CHECK(t, "tensor '", name, "' is missing from '", path, "'");
    const std::vector<int64_t> want(hf_shape.rbegin(), hf_shape.rend());
    SA_CHECK(t->dims == want, "tensor '", name, "' in '", path, "' has dims ",
             shape_string(t->dims), " but the config implies ", shape_string(want),
             " (ggml order, row length first)");
    return t;
  };
  auto add = [&](const std::string& name, std::vector<float>* dst, std::vector<int64_t> hf_shape,
                 int unpermute_heads = 0) {
    const GgufTensorInfo* t = find(name, hf_shape);
    const int heads = permuted ? unpermute_heads : 0;
    jobs.push_back({name, dst, [&f, t, heads] {
                      std::vector<float> v = f.read_f32(*t);
                      return heads ? unpermute_values(v, static_cast<int64_t>(v.size()), heads) : v;
                    }});
  };
  auto add_matrix = [&](const std::string& name, WeightMatrix* dst, std::vector<int64_t> hf_shape,
                        int unpermute_heads = 0) {
    const GgufTensorInfo* t = find(name, hf_shape);
    const int heads = permuted ? unpermute_heads : 0;
    const int64_t rows = hf_shape[0], cols = hf_shape[1];
    LoadJob job{name};
    job.matrix = dst;
    job.read_matrix = [&f, file, t, heads, rows, cols, weights] {
      const uint8_t* src = f.tensor_data(*t);
      // fp32 is read in place only when the file aligns it for float loads.
      const bool in_place = weights == WeightsType::Native && kept_native(t->type) &&
                            (t->type != GgmlType::F32 || reinterpret_cast<uintptr_t>(src) % 4 == 0);
      if (in_place && !heads) return WeightMatrix::borrowed(t->type, rows, cols, src, file);
      if (in_place) {
        WeightMatrix m = WeightMatrix::owned(
            t->type, rows, cols, unpermute_rows(src, rows, ggml_row_bytes(t->type, cols), heads));
        drop_mapped_pages(src, m.bytes());
        return m;
      }
      std::vector<float> v = f.read_f32(*t);
      if (heads) v = unpermute_values(v, rows, heads);
      return matrix_from_f32(std::move(v), rows, cols, weights);
    };
    jobs.push_back(std::move(job));
  };
  const int64_t d = c.d_model, q = c.q_dim(), kv = c.kv_dim(), ffn = c.d_ffn, vocab = c.vocab_size;
  add_matrix("token_embd.weight", &m.weights.tok_embd, {vocab, d});
  add("output_norm.weight", &m.weights.output_norm, {d});
  if (!c.tied_embeddings) add_matrix("output.weight", &m.weights.output, {vocab, d});
  // block_count is a claim of the file: every block must have its first tensor there before a
  // slot is made for each, or a lying count in a tiny file allocates gigabytes of empty layers.
  for (int i = 0; i < c.n_layers; ++i) {
    const std::string first = "blk." + std::to_string(i) + ".attn_norm.weight";
    SA_CHECK(f.find_tensor(first), "'", path, "': block_count is ", c.n_layers, " but tensor '",
             first, "' is missing");
  }
  m.weights.layers.resize(c.n_layers);
  for (int i = 0; i < c.n_layers; ++i) {
    LayerWeights& l = m.weights.layers[i];
    const std::string p = "blk." + std::to_string(i) + ".";
    add(p + "attn_norm.weight", &l.attn_norm, {d});
    add_matrix(p + "attn_q.weight", &l.wq, {q, d}, c.n_heads);
    add_matrix(p + "attn_k.weight", &l.wk, {kv, d}, c.n_kv_heads);
    add_matrix(p + "attn_v.weight", &l.wv, {kv, d});
    if (c.qkv_bias) {
      add(p + "attn_q.bias", &l.bq, {q}, c.n_heads);  // the converter permutes biases too
      add(p + "attn_k.bias", &l.bk, {kv}, c.n_kv_heads);
      add(p + "attn_v.bias", &l.bv, {kv});
    }
    add_matrix(p + "attn_output.weight", &l.wo, {d, q});
    add(p + "ffn_norm.weight", &l.ffn_norm, {d});
    add_matrix(p + "ffn_gate.weight", &l.w_gate, {ffn, d});
    add_matrix(p + "ffn_up.weight", &l.w_up, {ffn, d});
    add_matrix(p + "ffn_down.weight", &l.w_down, {d, ffn});
    // Weights has no slot for an output-projection bias; a zero one changes nothing.
    if (const GgufTensorInfo* t = f.find_tensor(p + "attn_output.bias")) {
      const std::vector<float> b = f.read_f32(*t);
      SA_CHECK(std::all_of(b.begin(), b.end(), [](float x) { return x == 0.0f; }), "tensor '",
               t->name, "' in '", path, "' is nonzero; an output-projection bias is not supported");
    }
  }
  run_load_jobs(jobs);
  return m;
}

}  // namespace loader_detail
}  // namespace starattn
