#include "backend/cuda/weight_upload.h"

#include <cuda_bf16.h>

#include <algorithm>
#include <cstring>
#include <initializer_list>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/quant_gemv.h"
#include "backend/cuda/random_fill.h"
#include "starattn/error.h"
#include "util/splitmix64.h"

namespace starattn::cuda {
namespace {

// The device storage of a fused matrix made of `parts`.
GgmlType device_type(std::initializer_list<const WeightMatrix*> parts) {
  const GgmlType t = (*parts.begin())->type();
  for (const WeightMatrix* m : parts)
    if (m->type() != t) return GgmlType::BF16;
  return quant_supported(t) ? t : GgmlType::BF16;
}

// A distinct seed for each tensor of a seeded model.
uint64_t mix_seed(uint64_t seed, uint64_t i) {
  return splitmix64_at(seed, i);
}

}  // namespace

WeightTypes device_types(const ModelConfig& c, const Weights& w) {
  WeightTypes t;
  t.tok_embd = device_type({&w.tok_embd});
  t.output = c.tied_embeddings ? t.tok_embd : device_type({&w.lm_head()});
  for (const LayerWeights& l : w.layers)
    t.layers.push_back({device_type({&l.wq, &l.wk, &l.wv}), device_type({&l.wo}),
                        device_type({&l.w_gate, &l.w_up}), device_type({&l.w_down})});
  return t;
}

WeightTypes random_types(const ModelConfig& c, GgmlType t) {
  const auto fit = [t](int64_t cols) {
    if (t == GgmlType::BF16 || cols % ggml_block_elems(t) == 0) return t;
    return cols % ggml_block_elems(GgmlType::Q8_0) == 0 ? GgmlType::Q8_0 : GgmlType::BF16;
  };
  WeightTypes w;
  w.tok_embd = w.output = fit(c.d_model);
  w.layers.assign(c.n_layers, {fit(c.d_model), fit(c.q_dim()), fit(c.d_model), fit(c.d_ffn)});
  return w;
}

void upload_weights(const ModelConfig& c, const Weights& w, const WeightLayout& wl, void* arena,
                    cudaStream_t stream) {
  const int64_t d = c.d_model, q = c.q_dim(), kv = c.kv_dim(), f = c.d_ffn;
  char* base = static_cast<char*>(arena);
  // From pageable memory the copy returns once the source is staged, so it may be reused.
  const auto copy_in = [&](size_t offset, const void* src, size_t bytes) {
    if (bytes) SA_CUDA(cudaMemcpyAsync(base + offset, src, bytes, cudaMemcpyHostToDevice, stream));
  };
  std::vector<uint8_t> stage;
  // Appends a host matrix [rows, cols] to the staging buffer in the device storage `type`.
  const auto add = [&](const WeightMatrix& m, int64_t rows, int64_t cols, GgmlType type,
                       const char* what) {
    SA_CHECK(m.rows() == rows && m.cols() == cols, "cuda backend: weight ", what, " is [", m.rows(),
             ", ", m.cols(), "], expected [", rows, ", ", cols, "]");
    if (type != GgmlType::BF16) {
      SA_CHECK(m.type() == type, "cuda backend: weight ", what, " is ", ggml_type_name(m.type()),
               ", expected ", ggml_type_name(type));
      stage.insert(stage.end(), m.data(), m.data() + m.bytes());
      return;
    }
    constexpr int64_t kSlice = 1024;
    std::vector<float> rows_f32(static_cast<size_t>(std::min(kSlice, rows) * cols));
    for (int64_t r0 = 0; r0 < rows; r0 += kSlice) {
      const int64_t n = std::min(kSlice, rows - r0);
      m.dequantize_rows(r0, n, rows_f32.data());
      const size_t at = stage.size();
      stage.resize(at + static_cast<size_t>(n * cols) * 2);
      for (int64_t i = 0; i < n * cols; ++i) {
        const uint16_t b = fp32_to_bf16(rows_f32[i]);
        std::memcpy(&stage[at + 2 * i], &b, 2);
      }
    }
  };
  const auto put = [&](size_t offset) {
    copy_in(offset, stage.data(), stage.size());
    stage.clear();
  };
  const auto put_f32 = [&](size_t offset, const std::vector<float>& v, int64_t count,
                           const char* what) {
    SA_CHECK(static_cast<int64_t>(v.size()) == count, "cuda backend: weight ", what, " has ",
             v.size(), " values, expected ", count);
    copy_in(offset, v.data(), v.size() * 4);
  };

  const WeightTypes& t = wl.types;
  add(w.tok_embd, c.vocab_size, d, t.tok_embd, "tok_embd");
  put(wl.tok_embd);
  if (!c.tied_embeddings) {
    add(w.lm_head(), c.vocab_size, d, t.output, "output");
    put(wl.output);
  }
  put_f32(wl.output_norm, w.output_norm, d, "output_norm");
  for (int l = 0; l < c.n_layers; ++l) {
    const LayerWeights& L = w.layers[l];
    const WeightLayout::Layer& o = wl.layers[l];
    const WeightTypes::Layer& lt = t.layers[l];
    put_f32(o.attn_norm, L.attn_norm, d, "attn_norm");
    put_f32(o.ffn_norm, L.ffn_norm, d, "ffn_norm");
    if (c.qkv_bias) {
      std::vector<float> b;
      for (const auto* v : {&L.bq, &L.bk, &L.bv}) b.insert(b.end(), v->begin(), v->end());
      put_f32(o.bqkv, b, q + 2 * kv, "q/k/v bias");
    }
    // Rows are whole blocks, so fused matrices are their parts' rows one after the other.
    add(L.wq, q, d, lt.wqkv, "wq");
    add(L.wk, kv, d, lt.wqkv, "wk");
    add(L.wv, kv, d, lt.wqkv, "wv");
    put(o.wqkv);
    add(L.wo, d, q, lt.wo, "wo");
    put(o.wo);
    add(L.w_gate, f, d, lt.wgu, "w_gate");
    add(L.w_up, f, d, lt.wgu, "w_up");
    put(o.wgu);
    add(L.w_down, d, f, lt.wdown, "w_down");
    put(o.wdown);
  }
  SA_CUDA(cudaStreamSynchronize(stream));
}

void random_weights(const ModelConfig& c, const WeightLayout& wl, void* arena, uint64_t seed,
                    cudaStream_t stream) {
  const int64_t d = c.d_model, q = c.q_dim(), kv = c.kv_dim(), f = c.d_ffn;
  char* base = static_cast<char*>(arena);
  uint64_t tensor = 0;
  const float std_w = 0.02f, sqrt3 = 1.7320508f;
  const auto fill = [&](size_t offset, int64_t count, bool is_bf16, float mean, float stddev) {
    RandomFillParams p;
    if (is_bf16) {
      p.x_bf16 = reinterpret_cast<__nv_bfloat16*>(base + offset);
    } else {
      p.x_f32 = reinterpret_cast<float*>(base + offset);
    }
    p.count = count;
    p.seed = mix_seed(seed, tensor++);
    p.mean = mean;
    p.half_width = stddev * sqrt3;
    random_fill(p, stream);
  };
  // A matrix [rows, cols] in its storage: uniform bf16 values, or random blocks.
  const auto matrix = [&](size_t offset, int64_t rows, int64_t cols, GgmlType type) {
    if (type == GgmlType::BF16) return fill(offset, rows * cols, true, 0.0f, std_w);
    random_blocks(type, reinterpret_cast<uint8_t*>(base + offset),
                  rows * cols / ggml_block_elems(type), mix_seed(seed, tensor++), stream);
  };
  const WeightTypes& t = wl.types;
  matrix(wl.tok_embd, c.vocab_size, d, t.tok_embd);
  if (!c.tied_embeddings) matrix(wl.output, c.vocab_size, d, t.output);
  fill(wl.output_norm, d, false, 1.0f, 0.05f);
  for (int l = 0; l < c.n_layers; ++l) {
    const WeightLayout::Layer& o = wl.layers[l];
    const WeightTypes::Layer& lt = t.layers[l];
    fill(o.attn_norm, d, false, 1.0f, 0.05f);
    fill(o.ffn_norm, d, false, 1.0f, 0.05f);
    if (c.qkv_bias) fill(o.bqkv, q + 2 * kv, false, 0.0f, std_w);
    matrix(o.wqkv, q + 2 * kv, d, lt.wqkv);
    matrix(o.wo, d, q, lt.wo);
    matrix(o.wgu, 2 * f, d, lt.wgu);
    matrix(o.wdown, d, f, lt.wdown);
  }
  SA_CUDA(cudaStreamSynchronize(stream));
}

}  // namespace starattn::cuda
