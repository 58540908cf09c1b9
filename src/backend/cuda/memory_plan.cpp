#include "backend/cuda/memory_plan.h"

#include <algorithm>
#include <cstdio>

namespace starattn::cuda {
namespace {

constexpr size_t kAlign = 256;

// Hands out aligned offsets in one allocation.
class Arena {
 public:
  size_t take(size_t bytes) {
    const size_t at = end_;
    end_ = (end_ + bytes + kAlign - 1) / kAlign * kAlign;
    return at;
  }
  size_t end() const { return end_; }
  void set_end(size_t e) { end_ = e; }

 private:
  size_t end_ = 0;
};

size_t sz(int64_t a, int64_t b = 1, int64_t c = 1) {
  return static_cast<size_t>(a) * static_cast<size_t>(b) * static_cast<size_t>(c);
}

}  // namespace

std::string gib(size_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(bytes) / (1u << 30));
  return buf;
}

WeightLayout weight_layout(const ModelConfig& c, const WeightTypes& types) {
  const int64_t d = c.d_model, q = c.q_dim(), kv = c.kv_dim(), f = c.d_ffn;
  Arena a;
  WeightLayout w;
  w.types = types;
  w.types.layers.resize(c.n_layers);
  // rows of `cols` elements stored as t (whole blocks, checked when the weights are uploaded).
  const auto matrix = [&](int64_t rows, int64_t cols, GgmlType t) {
    w.quantised = w.quantised || t != GgmlType::BF16;
    return sz(rows) * ggml_row_bytes(t, cols);
  };
  w.tok_embd = a.take(matrix(c.vocab_size, d, w.types.tok_embd));
  if (c.tied_embeddings) w.types.output = w.types.tok_embd;
  w.output = c.tied_embeddings ? w.tok_embd : a.take(matrix(c.vocab_size, d, w.types.output));
  w.output_norm = a.take(sz(d, 4));
  w.layers.resize(c.n_layers);
  for (int i = 0; i < c.n_layers; ++i) {
    WeightLayout::Layer& l = w.layers[i];
    const WeightTypes::Layer& t = w.types.layers[i];
    l.attn_norm = a.take(sz(d, 4));
    l.ffn_norm = a.take(sz(d, 4));
    l.bqkv = c.qkv_bias ? a.take(sz(q + 2 * kv, 4)) : 0;
    l.wqkv = a.take(matrix(q + 2 * kv, d, t.wqkv));
    l.wo = a.take(matrix(d, q, t.wo));
    l.wgu = a.take(matrix(2 * f, d, t.wgu));
    l.wdown = a.take(matrix(d, f, t.wdown));
  }
  w.total = a.end();
  return w;
}

WorkspaceLayout workspace_layout(const ModelConfig& c, int rows) {
  const int64_t d = c.d_model, q = c.q_dim(), kv = c.kv_dim(), f = c.d_ffn;
  const int64_t n = std::max(rows, 1), nf = std::min<int64_t>(n, kFfnRows);
  Arena a;
  WorkspaceLayout w;
  w.rows = static_cast<int>(n);
  w.tokens = a.take(sz(n, 4));
  w.positions = a.take(sz(n, 4));
  w.cos = a.take(sz(n, c.head_dim / 2, 4));
  w.sin = a.take(sz(n, c.head_dim / 2, 4));
  w.x = a.take(sz(n, d, 4));
  w.h = a.take(sz(n, d, 2));
  const size_t shared = a.end();
  w.qkv = a.take(sz(n, q + 2 * kv, 2));
  w.att = w.qkv;
  w.q = a.take(sz(n, q, 2));
  w.k = a.take(sz(n, kv, 2));
  w.v = a.take(sz(n, kv, 2));
  const size_t attn_end = a.end();
  a.set_end(shared);
  w.gu = a.take(sz(nf, 2 * f, 2));
  w.act = a.take(sz(nf, f, 2));
  a.set_end(std::max(attn_end, a.end()));
  w.total = a.end();
  return w;
}

size_t logits_workspace_bytes(const ModelConfig& c) {
  return sz(kLogitRows, c.d_model, 4 + 2) + sz(kLogitRows, c.vocab_size, 4) + 2 * kAlign;
}

constexpr size_t kPage = size_t{2} << 20;

size_t kv_cache_bytes(const ModelConfig& c, int64_t rows, size_t row_bytes) {
  const size_t one = (sz(rows) * row_bytes + kPage - 1) / kPage * kPage;
  return 2 * static_cast<size_t>(c.n_layers) * one;
}

MemoryNeed memory_need(const ModelConfig& c, size_t weight_bytes, int64_t kv_rows, int max_tokens,
                       size_t kv_row_bytes, bool quantised, size_t scratch_bytes) {
  MemoryNeed m;
  m.weights = weight_bytes;
  m.kv = kv_cache_bytes(c, kv_rows, kv_row_bytes);
  m.workspace = workspace_layout(c, max_tokens).total + logits_workspace_bytes(c) + scratch_bytes +
                kReserveBytes + (quantised ? kDequantScratchBytes : 0);
  return m;
}

int64_t kv_rows_that_fit(const ModelConfig& c, size_t weight_bytes, int max_tokens,
                         size_t kv_row_bytes, size_t available, bool quantised,
                         size_t scratch_bytes) {
  const MemoryNeed base =
      memory_need(c, weight_bytes, 0, max_tokens, kv_row_bytes, quantised, scratch_bytes);
  if (base.total() >= available || kv_row_bytes == 0) return 0;
  // Each of the 2 * n_layers allocations gets a whole number of pages.
  const size_t per_array = (available - base.total()) / (2 * static_cast<size_t>(c.n_layers));
  return static_cast<int64_t>(per_array / kPage * kPage / kv_row_bytes);
}

std::string shortfall_message(const std::string& who, const MemoryNeed& need, size_t free_bytes) {
  return who + ": needs " + gib(need.total()) + " (weights " + gib(need.weights) + ", KV " +
         gib(need.kv) + ", workspace " + gib(need.workspace) + ") but the GPU has " +
         gib(free_bytes) +
         " free; use more ranks, a smaller --block-size, a shorter context or --kv-type fp8";
}

}  // namespace starattn::cuda
