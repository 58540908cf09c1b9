#include "backend/cuda/cuda_backend.h"

#include <cuda_bf16.h>

#include <algorithm>
#include <map>
#include <vector>

#include "backend/cuda/argmax.h"
#include "backend/cuda/attention.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/elementwise.h"
#include "backend/cuda/embedding.h"
#include "backend/cuda/gemv.h"
#include "backend/cuda/kv_write.h"
#include "backend/cuda/quant_gemv.h"
#include "backend/cuda/rmsnorm.h"
#include "backend/cuda/rope.h"
#include "backend/cuda/weight_upload.h"
#include "model/rope_freq.h"
#include "starattn/error.h"

namespace starattn {
namespace {

using bf16 = __nv_bfloat16;

}  // namespace

CudaBackend::CudaBackend(const ModelConfig& config, const Weights& weights, int device) {
  try {
    SA_CHECK(static_cast<int>(weights.layers.size()) == config.n_layers,
             "cuda backend: ", weights.layers.size(), " layers of weights for a ", config.n_layers,
             "-layer model");
    init(config, device, cuda::device_types(config, weights));
    cuda::upload_weights(c_, weights, wl_, weights_, stream_);
  } catch (...) {
    free_all();  // a throwing constructor runs no destructor
    throw;
  }
}

CudaBackend::CudaBackend(const ModelConfig& config, int device, uint64_t seed, GgmlType matrices) {
  try {
    SA_CHECK(matrices == GgmlType::BF16 || cuda::quant_supported(matrices),
             "cuda backend: random weights of type ", ggml_type_name(matrices),
             " are not supported (bf16, Q8_0, Q4_0, Q4_1, Q4_K)");
    init(config, device, cuda::random_types(config, matrices));
    cuda::random_weights(c_, wl_, weights_, seed, stream_);
  } catch (...) {
    free_all();
    throw;
  }
}

CudaBackend::~CudaBackend() {
  free_all();
}

void CudaBackend::free_all() noexcept {
  if (stream_) (void)cudaStreamSynchronize(stream_);
  graph_.drop();
  gemm_.reset();
  release(logits_ws_);
  release(ws_);
  release(inv_freq_);
  release(weights_);
  memory_.drop_cache();
  if (stream_) (void)cudaStreamDestroy(stream_);
  logits_ws_ = ws_ = weights_ = nullptr;
  inv_freq_ = nullptr;
  stream_ = nullptr;
}

void CudaBackend::init(const ModelConfig& config, int device, const cuda::WeightTypes& types) {
  c_ = config;
  device_ = device;
  SA_CHECK(c_.n_layers > 0 && c_.d_model > 0 && c_.n_heads > 0 && c_.n_kv_heads > 0 &&
               c_.n_heads % c_.n_kv_heads == 0 && c_.head_dim > 0 && c_.head_dim % 2 == 0 &&
               c_.d_ffn > 0 && c_.vocab_size > 0,
           "cuda backend: unsupported model shape (", c_.n_layers, " layers, d ", c_.d_model, ", ",
           c_.n_heads, "/", c_.n_kv_heads, " heads of ", c_.head_dim, ")");
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    (void)cudaGetLastError();
    fail("cuda backend: no CUDA device is available (", cudaGetErrorString(e), ")");
  }
  SA_CHECK(device >= 0 && device < count, "cuda backend: device ", device, " does not exist (",
           count, " found)");
  SA_CUDA(cudaSetDevice(device));
  cudaDeviceProp prop{};
  SA_CUDA(cudaGetDeviceProperties(&prop, device));
  name_ = "cuda:" + std::to_string(device) + " (" + prop.name + ")";
  memory_.attach(device, name_);

  // Weights are taken here, so they are checked alone first (the KV cache and workspace are
  // checked by plan_memory once the engine knows the context).
  wl_ = cuda::weight_layout(c_, types);
  const size_t needed = wl_.total + cuda::kReserveBytes + cuda::Gemm::kWorkspaceBytes +
                        (wl_.quantised ? cuda::kDequantScratchBytes : 0);
  const size_t free = free_bytes();
  SA_CHECK(needed <= free, name_, ": the model needs ", cuda::gib(needed), " (weights ",
           cuda::gib(wl_.total), " plus ", cuda::gib(needed - wl_.total),
           " working memory) but the GPU has ", cuda::gib(free),
           " free; use a GPU with more memory or a smaller model");

  SA_CUDA(cudaStreamCreate(&stream_));
  gemm_ = std::make_unique<cuda::Gemm>(stream_);
  weights_ = alloc(wl_.total);
  const std::vector<float> inv = rope_inv_freq(c_);
  inv_freq_ = static_cast<float*>(alloc(inv.size() * sizeof(float)));
  from_host(inv_freq_, inv.data(), inv.size() * sizeof(float));
}

std::string CudaBackend::weight_storage() const {
  std::map<std::string, int> count;
  const auto note = [&](GgmlType t) { ++count[ggml_type_name(t)]; };
  note(wl_.types.tok_embd);
  if (!c_.tied_embeddings) note(wl_.types.output);
  for (const cuda::WeightTypes::Layer& l : wl_.types.layers)
    for (GgmlType t : {l.wqkv, l.wo, l.wgu, l.wdown}) note(t);
  std::string s;
  for (const auto& [name, n] : count)
    s += (s.empty() ? "" : ", ") + name + " x" + std::to_string(n);
  return s + " on the GPU; q|k|v and gate|up fused";
}

size_t CudaBackend::free_bytes() const {
  size_t free = 0, total = 0;
  SA_CUDA(cudaMemGetInfo(&free, &total));
  return free;
}

size_t CudaBackend::memory_available() const {
  const size_t have = free_bytes() + memory_.cached_bytes();
  return have > cuda::kReserveBytes ? have - cuda::kReserveBytes : 0;
}

size_t CudaBackend::usable_bytes() const {
  const size_t held = wl_.total + (ws_ ? sl_.total : 0) + memory_.cached_bytes() +
                      (logits_ws_ ? cuda::logits_workspace_bytes(c_) : 0);
  return free_bytes() + held;
}

void CudaBackend::plan_memory(int64_t kv_rows, int max_tokens, KvType kv_type,
                              size_t scratch_bytes) {
  SA_CUDA(cudaSetDevice(device_));
  const cuda::MemoryNeed need =
      cuda::memory_need(c_, wl_.total, kv_rows, max_tokens, kv_row_format(kv_type).row_bytes(),
                        wl_.quantised, scratch_bytes);
  const size_t available = usable_bytes();
  if (need.total() > available) fail(cuda::shortfall_message(name_, need, available));
  reserve_workspace(max_tokens);
}

int64_t CudaBackend::kv_rows_that_fit(KvType kv_type, int max_tokens, size_t scratch_bytes) const {
  SA_CUDA(cudaSetDevice(device_));
  return cuda::kv_rows_that_fit(c_, wl_.total, max_tokens, kv_row_format(kv_type).row_bytes(),
                                usable_bytes(), wl_.quantised, scratch_bytes);
}

size_t CudaBackend::logits_ws_offset(LogitsPart part) const {
  // [kLogitRows, d] bf16 rows, then [kLogitRows, vocab] fp32 logits, then the chosen id; each
  // 256-byte aligned (logits_workspace_bytes leaves room for it).
  const auto up = [](size_t b) { return (b + 255) / 256 * 256; };
  const size_t hidden = up(size_t{cuda::kLogitRows} * c_.d_model * 2);
  switch (part) {
    case LogitsPart::Hidden:
      return 0;
    case LogitsPart::Logits:
      return hidden;
    case LogitsPart::Id:
      return hidden + up(size_t{cuda::kLogitRows} * c_.vocab_size * 4);
  }
  return 0;
}

void CudaBackend::reserve_workspace(int rows) {
  if (ws_ && sl_.rows >= rows) return;
  const cuda::WorkspaceLayout want = cuda::workspace_layout(c_, rows);
  // Queued work may still read the old block: release() either frees it (cudaFree waits) or
  // caches it, and a later reuse is ordered after that work on the one stream.
  release(ws_);
  ws_ = nullptr;
  sl_ = cuda::WorkspaceLayout{};
  ws_ = alloc(want.total);
  sl_ = want;
}

void CudaBackend::copy(void* dst, const void* src, size_t bytes) {
  if (bytes) SA_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_));
}

void CudaBackend::to_host(void* dst, const void* src, size_t bytes) {
  if (!bytes) return;
  SA_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
  synchronize();
}

void CudaBackend::from_host(void* dst, const void* src, size_t bytes) {
  // From pageable memory the call returns once `src` is staged, so the caller may reuse it.
  if (bytes) SA_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
}

void CudaBackend::synchronize() {
  SA_CUDA(cudaStreamSynchronize(stream_));
}

void CudaBackend::write_kv_rows(void* k_dst, void* v_dst, const KvRowFormat& f, int64_t row,
                                const void* k, const void* v, int n) {
  cuda::KvWriteParams p;
  p.dst[0] = k_dst;
  p.dst[1] = v_dst;
  p.src[0] = static_cast<const bf16*>(k);
  p.src[1] = static_cast<const bf16*>(v);
  p.format = f;
  p.row = row;
  p.n = n;
  cuda::write_kv_rows(p, stream_);
}

void CudaBackend::write_kv_rows_at(void* k_dst, void* v_dst, const KvRowFormat& f,
                                   const int* row_at, const void* k, const void* v, int n) {
  cuda::KvWriteParams p;
  p.dst[0] = k_dst;
  p.dst[1] = v_dst;
  p.src[0] = static_cast<const bf16*>(k);
  p.src[1] = static_cast<const bf16*>(v);
  p.format = f;
  p.row_at = row_at;
  p.n = n;
  cuda::write_kv_rows(p, stream_);
}

void CudaBackend::stage_inputs(const int* tokens, const int* positions, int n) {
  SA_CHECK(n > 0, "forward: token count ", n);
  for (int i = 0; i < n; ++i)
    SA_CHECK(tokens[i] >= 0 && tokens[i] < c_.vocab_size, "token id ", tokens[i],
             " is outside the vocabulary of ", c_.vocab_size);
  SA_CUDA(cudaSetDevice(device_));
  reserve_workspace(n);
  from_host(sptr<int>(sl_.tokens), tokens, sizeof(int) * n);
  from_host(sptr<int>(sl_.positions), positions, sizeof(int) * n);
}

void CudaBackend::run_step(int n, AttentionHook& hook, Tail tail) {
  const uint64_t key = n == 1 ? hook.replay_key() : 0;
  if (key == 0) {
    run_layers(n, hook, tail);
    return;
  }
  cuda::StepKey k;
  k.replay_key = key;
  k.hidden_rows = tail.hidden_rows;
  k.greedy = tail.greedy;
  k.workspace = ws_;
  k.workspace_rows = sl_.rows;
  k.attn_generation = cuda::attention_workspace_generation();
  graph_.run(k, stream_, [&] { run_layers(1, hook, tail); });
}

void CudaBackend::forward(const int* tokens, const int* positions, int n, AttentionHook& hook,
                          int n_out, float* hidden_out) {
  if (n == 0) return;
  SA_CHECK(!hidden_out || (n_out >= 0 && n_out <= n), "forward: asked for ", n_out, " rows of ", n);
  stage_inputs(tokens, positions, n);
  const int rows = hidden_out ? n_out : 0;
  run_step(n, hook, {rows, false});
  if (rows > 0)
    to_host(hidden_out, sptr<float>(sl_.x) + static_cast<int64_t>(n - rows) * c_.d_model,
            sizeof(float) * rows * c_.d_model);
}

int CudaBackend::forward_greedy(const int* tokens, const int* positions, int n,
                                AttentionHook& hook) {
  stage_inputs(tokens, positions, n);
  if (!logits_ws_) logits_ws_ = alloc(cuda::logits_workspace_bytes(c_));  // before any capture
  run_step(n, hook, {0, true});
  int id = 0;
  to_host(&id, logits_ws_at<int>(LogitsPart::Id), sizeof id);
  return id;
}

void CudaBackend::run_layers(int n, AttentionHook& hook, Tail tail) {
  const int64_t d = c_.d_model, q = c_.q_dim(), kv = c_.kv_dim(), f = c_.d_ffn;
  const int64_t qkv_dim = q + 2 * kv;
  const int half = c_.head_dim / 2;
  const int* d_tokens = sptr<int>(sl_.tokens);
  const int* d_pos = sptr<int>(sl_.positions);
  float* cos = sptr<float>(sl_.cos);
  float* sin = sptr<float>(sl_.sin);
  float* x = sptr<float>(sl_.x);
  bf16* h = sptr<bf16>(sl_.h);
  bf16* qkv = sptr<bf16>(sl_.qkv);
  bf16* att = sptr<bf16>(sl_.att);
  bf16* qb = sptr<bf16>(sl_.q);
  bf16* kb = sptr<bf16>(sl_.k);
  bf16* vb = sptr<bf16>(sl_.v);
  bf16* gu = sptr<bf16>(sl_.gu);
  bf16* act = sptr<bf16>(sl_.act);

  if (wl_.types.tok_embd == GgmlType::BF16) {
    cuda::embedding({d_tokens, wptr<bf16>(wl_.tok_embd), x, n, c_.d_model, c_.vocab_size}, stream_);
  } else {
    cuda::EmbeddingQuantParams e;
    e.tokens = d_tokens;
    e.table = wptr<uint8_t>(wl_.tok_embd);
    e.type = wl_.types.tok_embd;
    e.row_bytes = static_cast<int64_t>(ggml_row_bytes(e.type, c_.d_model));
    e.out = x;
    e.n = n;
    e.d = c_.d_model;
    e.vocab = c_.vocab_size;
    cuda::embedding_quant(e, stream_);
  }
  cuda::rope_table({d_pos, inv_freq_, cos, sin, n, half}, stream_);

  const auto norm = [&](size_t w_offset, const float* in, bf16* out_bf16, float* out_f32,
                        int rows) {
    cuda::RmsNormParams p;
    p.x = in;
    p.w = wptr<float>(w_offset);
    p.y_bf16 = out_bf16;
    p.y_f32 = out_f32;
    p.n = rows;
    p.d = c_.d_model;
    p.eps = c_.rms_eps;
    cuda::rmsnorm(p, stream_);
  };
  const auto linear = [&](const bf16* in, int64_t in_dim, size_t w_offset, GgmlType w_type,
                          int64_t out_dim, bf16* out_bf16, float* out_f32, int rows) {
    cuda::LinearParams p = linear_params(in, in_dim, w_offset, w_type, out_dim, rows);
    p.y_bf16 = out_bf16;
    p.y_f32 = out_f32;
    p.accumulate = out_f32 != nullptr;  // fp32 outputs are always the residual stream
    gemm_->linear(p);
  };

  for (int l = 0; l < c_.n_layers; ++l) {
    const cuda::WeightLayout::Layer& o = wl_.layers[l];
    const cuda::WeightTypes::Layer& t = wl_.types.layers[l];
    norm(o.attn_norm, x, h, nullptr, n);
    linear(h, d, o.wqkv, t.wqkv, qkv_dim, qkv, nullptr, n);
    cuda::QkvRopeParams r;
    r.qkv = qkv;
    r.qkv_stride = qkv_dim;
    r.bias = c_.qkv_bias ? wptr<float>(o.bqkv) : nullptr;
    r.cos = cos;
    r.sin = sin;
    r.q = qb;
    r.k = kb;
    r.v = vb;
    r.n = n;
    r.n_heads = c_.n_heads;
    r.n_kv_heads = c_.n_kv_heads;
    r.head_dim = c_.head_dim;
    cuda::qkv_rope(r, stream_);
    hook.attend(l, n, qb, kb, vb, att);
    linear(att, q, o.wo, t.wo, d, nullptr, x, n);

    norm(o.ffn_norm, x, h, nullptr, n);
    for (int r0 = 0; r0 < n; r0 += cuda::kFfnRows) {
      const int m = std::min(cuda::kFfnRows, n - r0);
      cuda::LinearParams p = linear_params(h + r0 * d, d, o.wgu, t.wgu, 2 * f, m);
      p.y_bf16 = act;  // gate|up straight into SwiGLU
      p.y_stride = f;
      if (cuda::gemv_supported(p)) {  // decode: one kernel, no [m, 2f] round trip
        cuda::gemv_swiglu(p, stream_);
      } else {
        linear(h + r0 * d, d, o.wgu, t.wgu, 2 * f, gu, nullptr, m);
        cuda::swiglu({gu, 2 * f, act, m, c_.d_ffn}, stream_);
      }
      linear(act, f, o.wdown, t.wdown, d, nullptr, x + r0 * d, m);
    }
  }

  if (tail.hidden_rows > 0) {
    const int m = tail.hidden_rows;
    float* rows = x + static_cast<int64_t>(n - m) * d;
    norm(wl_.output_norm, rows, nullptr, rows, m);  // in place: x is dead after this
  }
  if (tail.greedy) {  // the last row's logits and their argmax, all on the device
    bf16* last = logits_ws_at<bf16>(LogitsPart::Hidden);
    float* y = logits_ws_at<float>(LogitsPart::Logits);
    norm(wl_.output_norm, x + static_cast<int64_t>(n - 1) * d, last, nullptr, 1);
    lm_head(last, y, 1);
    cuda::argmax({y, c_.vocab_size, 1, c_.vocab_size, logits_ws_at<int>(LogitsPart::Id)}, stream_);
  }
}

cuda::LinearParams CudaBackend::linear_params(const bf16* in, int64_t in_dim, size_t w_offset,
                                              GgmlType w_type, int64_t out_dim, int rows) const {
  cuda::LinearParams p;
  p.x = in;
  p.x_stride = in_dim;
  p.act_scratch = gemm_->act_scratch();
  if (w_type == GgmlType::BF16) {
    p.w = wptr<bf16>(w_offset);
  } else {
    p.wq = wptr<uint8_t>(w_offset);
    p.wq_type = w_type;
    p.wq_row_bytes = static_cast<int64_t>(ggml_row_bytes(w_type, in_dim));
  }
  p.y_stride = out_dim;
  p.n = rows;
  p.in = static_cast<int>(in_dim);
  p.out = static_cast<int>(out_dim);
  return p;
}

void CudaBackend::lm_head(const bf16* h, float* y, int rows) {
  cuda::LinearParams p =
      linear_params(h, c_.d_model, wl_.output, wl_.types.output, c_.vocab_size, rows);
  p.y_f32 = y;
  gemm_->linear(p);
}

void CudaBackend::logits(const float* hidden, int n, float* out) {
  if (n == 0) return;
  SA_CUDA(cudaSetDevice(device_));
  if (!logits_ws_) logits_ws_ = alloc(cuda::logits_workspace_bytes(c_));
  const int64_t d = c_.d_model, vocab = c_.vocab_size;
  bf16* h = logits_ws_at<bf16>(LogitsPart::Hidden);
  float* y = logits_ws_at<float>(LogitsPart::Logits);
  std::vector<uint16_t> stage(static_cast<size_t>(cuda::kLogitRows) * d);
  for (int r0 = 0; r0 < n; r0 += cuda::kLogitRows) {
    const int m = std::min(cuda::kLogitRows, n - r0);
    for (int64_t i = 0; i < m * d; ++i) stage[i] = fp32_to_bf16(hidden[r0 * d + i]);
    from_host(h, stage.data(), sizeof(uint16_t) * m * d);
    lm_head(h, y, m);
    to_host(out + r0 * vocab, y, sizeof(float) * m * vocab);
  }
}

void CudaBackend::attention(const AttnParams& p) {
  cuda::attention(cuda::device_params(p), stream_);
}

void CudaBackend::attention_merge_items(const AttnParams& batch, const AttnItem* items, int n_items,
                                        void* scratch_out, float* scratch_lse) {
  // The items kernel reads bf16 rows; a sequence's own FP8 rows take the per-item path.
  if (batch.kv_type != KvType::Act) {
    Backend::attention_merge_items(batch, items, n_items, scratch_out, scratch_lse);
    return;
  }
  SA_CHECK(n_items >= 0 && (n_items == 0 || items), "attention_merge_items: ", n_items, " items");
  std::vector<cuda::AttnItem> g(static_cast<size_t>(n_items));
  for (int i = 0; i < n_items; ++i) g[i] = cuda::device_item(items[i]);
  cuda::attention_merge_items(cuda::device_params(batch), g.data(), n_items, stream_);
}

void CudaBackend::merge_parts(void* out, float* lse, const void* parts, size_t part_bytes,
                              int n_parts, int rows, int heads, int head_dim) {
  cuda::merge_attention_parts(static_cast<bf16*>(out), lse, parts, part_bytes, n_parts, rows, heads,
                              head_dim, stream_);
}

void CudaBackend::merge(void* out_a, float* lse_a, const void* out_b, const float* lse_b, int rows,
                        int heads, int head_dim) {
  cuda::merge_attention(static_cast<bf16*>(out_a), lse_a, static_cast<const bf16*>(out_b), lse_b,
                        rows, heads, head_dim, stream_);
}

}  // namespace starattn
