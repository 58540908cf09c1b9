// How much device memory the CUDA backend needs, computed before anything is allocated: the
// weights' layout in one allocation, the forward pass's workspace for a number of tokens, the KV
// cache the engine will ask for, and the message when it does not fit. Plain C++ (no CUDA types).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/ggml_types.h"

namespace starattn::cuda {

// The FFN runs in row chunks of this many tokens, so its [rows, 3 * d_ffn] scratch stays bounded
// (235 MB for the 8B shape) while each GEMM is still large enough to run at full rate.
inline constexpr int kFfnRows = 4096;
// logits() runs in row chunks of this many rows.
inline constexpr int kLogitRows = 128;
// Kept free for what is not counted exactly: the split-KV decode's partials, cuBLAS internals,
// the allocator's rounding of many buffers.
inline constexpr size_t kReserveBytes = size_t{384} << 20;
// The bf16 tile of dequantised weight rows for products of many rows with a quantised matrix
// (gemm.h); 8192 rows of the 8B shape's 4096 columns, so each tile's GEMM still runs at full rate.
inline constexpr size_t kDequantScratchBytes = size_t{64} << 20;

// How each device matrix is stored: BF16, or a quantised type the GPU has kernels for
// (quant_gemv.h), its rows whole blocks as in the file. One type per fused matrix.
struct WeightTypes {
  struct Layer {
    GgmlType wqkv = GgmlType::BF16, wo = GgmlType::BF16, wgu = GgmlType::BF16,
             wdown = GgmlType::BF16;
  };
  GgmlType tok_embd = GgmlType::BF16, output = GgmlType::BF16;
  std::vector<Layer> layers;  // empty: all BF16
};

// Byte offsets of every weight in one device allocation (each aligned to 256 bytes). Matrices are
// [out, in] in their WeightTypes storage (bf16 by default), at their real size; norm weights and
// biases fp32. Q, K, V are fused into wqkv [q + 2 kv, d] and gate, up into wgu [2 f, d], so each
// is one GEMM.
struct WeightLayout {
  struct Layer {
    size_t attn_norm, ffn_norm;  // fp32 [d]
    size_t bqkv;                 // fp32 [q + 2 kv]; only with qkv_bias
    size_t wqkv, wo, wgu, wdown;
  };
  size_t tok_embd = 0;     // [vocab, d]
  size_t output = 0;       // [vocab, d]; equals tok_embd when tied
  size_t output_norm = 0;  // fp32 [d]
  std::vector<Layer> layers;
  WeightTypes types;       // as given, with one entry per layer
  bool quantised = false;  // any matrix not bf16 (its products need the dequantisation scratch)
  size_t total = 0;
};
WeightLayout weight_layout(const ModelConfig& c, const WeightTypes& types = {});

// Byte offsets of the forward pass's buffers for up to `rows` tokens, in one allocation. The
// attention-side buffers (qkv, q, k, v; att aliases qkv, dead after RoPE) and the FFN-side ones
// (gu, act) are never live at once, so they share one region.
struct WorkspaceLayout {
  int rows = 0;
  size_t tokens = 0, positions = 0;  // int [rows]
  size_t cos = 0, sin = 0;           // fp32 [rows, head_dim / 2]
  size_t x = 0;                      // fp32 [rows, d]: the residual stream
  size_t h = 0;                      // bf16 [rows, d]: normalised input of the GEMMs
  size_t qkv = 0, att = 0;           // bf16 [rows, q + 2 kv], [rows, q]
  size_t q = 0, k = 0, v = 0;        // bf16 [rows, q], [rows, kv], [rows, kv]
  size_t gu = 0, act = 0;            // bf16 [min(rows, kFfnRows), 2 f], [.., f]
  size_t total = 0;
};
WorkspaceLayout workspace_layout(const ModelConfig& c, int rows);

// logits(): hidden fp32 + bf16 [kLogitRows, d] and logits fp32 [kLogitRows, vocab].
size_t logits_workspace_bytes(const ModelConfig& c);
// The engine's KV cache of `rows` rows of row_bytes each (KvRowFormat::row_bytes: bf16 or fp8
// with its scales): K and V per layer, each one allocation rounded to the allocator's 2 MiB.
size_t kv_cache_bytes(const ModelConfig& c, int64_t rows, size_t row_bytes);

struct MemoryNeed {
  size_t weights = 0, kv = 0, workspace = 0;
  size_t total() const { return weights + kv + workspace; }
};
// kv_row_bytes: one KV row (KvRowFormat::row_bytes). quantised: the weights have quantised
// matrices, whose many-row products take a dequantisation scratch (kDequantScratchBytes).
// scratch_bytes: what the caller's attention hooks hold besides (Backend::plan_memory), counted
// in the workspace.
MemoryNeed memory_need(const ModelConfig& c, size_t weight_bytes, int64_t kv_rows, int max_tokens,
                       size_t kv_row_bytes, bool quantised = false, size_t scratch_bytes = 0);
// The most KV rows whose need (memory_need) fits in `available` bytes; 0 when not even the
// weights and workspace do.
int64_t kv_rows_that_fit(const ModelConfig& c, size_t weight_bytes, int max_tokens,
                         size_t kv_row_bytes, size_t available, bool quantised = false,
                         size_t scratch_bytes = 0);

// "<who>: needs X GiB (weights W, KV K, workspace S) but the GPU has F GiB free; use more ranks,
// a smaller --block-size, a shorter context or --kv-type fp8"
std::string shortfall_message(const std::string& who, const MemoryNeed& need, size_t free_bytes);

// "1.50 GiB": bytes for messages.
std::string gib(size_t bytes);

}  // namespace starattn::cuda
