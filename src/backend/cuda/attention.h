// Attention with log-sum-exp on the GPU: the CUDA twin of attention_cpu() (attention/attention.h)
// and merge_attention() (attention/merge.h), on bf16 tensors with fp32 accumulation.
// Plain C++ may include this header: it needs only the CUDA runtime's types.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "attention/kv_format.h"

namespace starattn::cuda {

// Same meaning as starattn::AttnParams. Mask: query row i sees key j iff j <= i + causal_offset
// when causal, every key otherwise; a row that sees no key gets out = 0 and lse = -inf.
// Alignment: q, k, v 16-byte aligned and q_stride, kv_stride multiples of 8 elements (tiles are
// copied in 16-byte pieces); out 4-byte aligned with an even out_stride.
// FP8 KV (kv_type Fp8): k8, v8 instead of k, v (which stay null): KV-cache rows of E4M3 bytes
// with their fp32 scales (attention/kv_format.h); row j of kv head h at k8 + j * kv_stride +
// h * head_dim, its scale at k8 + j * kv_stride + kv_scale_offset + 4 h. k8, v8 16-byte aligned,
// kv_stride (bytes) a multiple of 16. Every kernel dequantises in its tiles; nothing expands the
// cache. A kernel that reads only bf16 must refuse Fp8 (require_bf16_kv in attention_common.cuh).
struct AttnParams {
  const __nv_bfloat16* q = nullptr;  // [n_q, n_heads, head_dim], row stride q_stride (elements)
  const __nv_bfloat16* k = nullptr;  // [n_kv, n_kv_heads, head_dim], row stride kv_stride
  const __nv_bfloat16* v = nullptr;  // [n_kv, n_kv_heads, head_dim], row stride kv_stride
  __nv_bfloat16* out = nullptr;      // [n_q, n_heads, head_dim], row stride out_stride
  float* lse = nullptr;              // [n_q, n_heads] natural log, contiguous; may be nullptr
  int n_q = 0;
  int n_kv = 0;
  int n_heads = 0;
  int n_kv_heads = 0;  // n_heads % n_kv_heads == 0; head h reads kv head h / (n_heads/n_kv_heads)
  int head_dim = 0;    // 64 or 128
  int64_t q_stride = 0;
  int64_t kv_stride = 0;
  int64_t out_stride = 0;
  float scale = 0.0f;  // > 0, usually 1/sqrt(head_dim)
  bool causal = false;
  int64_t causal_offset = 0;
  // When set (device memory): the number of keys, read by the kernel; n_kv is its upper bound and
  // sizes the grid, so a captured CUDA graph replays over a longer cache. Without a mask only;
  // the split-KV kernels (decode, shared) take it, prefill does not.
  const int* n_kv_at = nullptr;
  KvType kv_type = KvType::Act;
  const uint8_t* k8 = nullptr;  // [n_kv] FP8 rows (kv_type Fp8), row stride kv_stride bytes
  const uint8_t* v8 = nullptr;
  int64_t kv_scale_offset = 0;  // bytes from a row's start to its [n_kv_heads] fp32 scales
};

// Picks the kernel (one place, the rule in attention.cu):
//   causal: split-KV decode for up to kDecodeMaxRows query rows, flash prefill otherwise;
//   no mask: decode while the packed rows (n_q * group) fit one decode row tile, the
//     shared-context kernel while flash prefill's grid (ceil(n_q / 128) * n_heads blocks) covers
//     less than half the SMs on sm_90 (all of them elsewhere) or when n_kv_at is set, flash
//     prefill otherwise. Llama-3.1-8B on an H200: shared for 5 to 256 query rows.
// Throws starattn::Error on a bad shape, an unsupported head_dim or a failed CUDA call.
void attention(const AttnParams& p, cudaStream_t stream);
inline constexpr int kDecodeMaxRows = 8;
inline constexpr int kDecodeRowTile = 16;  // packed query rows of one decode block

// Bumped whenever the split-KV workspace moves: a CUDA graph captured before is then stale.
uint64_t attention_workspace_generation();

// (a) Flash-attention style: 128 query rows per block, K/V tiles streamed through shared memory,
// online softmax in fp32, fully masked tiles skipped. On sm_90 a FlashAttention-3 style kernel
// (TMA, wgmma, producer warpgroup, ping-pong); elsewhere mma.sync. Any n_q, best for many rows.
// FP8 KV: each tile is dequantised (value x scale, rounded to bf16) in shared memory.
void attention_prefill(const AttnParams& p, cudaStream_t stream);

// (b) Split-KV: each block reads one slice of one kv head's keys once for all query rows of the
// GQA group (up to 16 rows a block), writes a partial (out, lse) to a per-(device, stream)
// workspace, and a second kernel merges the slices. Any n_q; meant for a few rows over long KV.
// FP8 KV: tiles go to registers straight from the E4M3 bytes in shared memory (exact in bf16);
// the key scales multiply the scores and the value scales the probabilities.
void attention_decode(const AttnParams& p, cudaStream_t stream);

// (e) Shared context: split-KV like (b), but each block holds up to 128 packed rows of the GQA
// group (n_q * group rows per kv head), so a served step's many sequences over one context read
// each K/V tile once per block, and the FLOPs, not the bytes, grow with n_q. No mask. Any n_q.
void attention_shared(const AttnParams& p, cudaStream_t stream);

// (f) Per-sequence items: for each item, causal attention of its rows of batch.q over its own keys,
// merged by log-sum-exp into the same rows of batch.out / batch.lse in place (which hold a partial
// result over other keys; -inf safe as merge_attention). batch gives q, out, lse (required), the
// heads, strides and scale; its k, v, n_q, n_kv and mask are unused. Items' rows must not overlap.
// One launch per kItemsPerLaunch items: their descriptors travel as a kernel argument.
struct AttnItem {
  const __nv_bfloat16* k = nullptr;  // [n_kv, n_kv_heads, head_dim], row stride batch.kv_stride
  const __nv_bfloat16* v = nullptr;  // same
  int q_row = 0;                     // rows [q_row, q_row + n_q) of q, out and lse
  int n_q = 0;
  int n_kv = 0;
  int64_t causal_offset = 0;  // row i sees key j iff j <= i + causal_offset
};
void attention_merge_items(const AttnParams& batch, const AttnItem* items, int n_items,
                           cudaStream_t stream);
inline constexpr int kItemsPerLaunch = 64;

// (c) out_a/lse_a <- merge(a, b) in place, exactly as starattn::merge_attention (-inf safe).
// out_*: [rows, heads, head_dim] contiguous bf16; lse_*: [rows, heads] natural log.
void merge_attention(__nv_bfloat16* out_a, float* lse_a, const __nv_bfloat16* out_b,
                     const float* lse_b, int rows, int heads, int head_dim, cudaStream_t stream);

// (d) out/lse <- the N-way merge of n_parts partials laid out as an allgather leaves them (part i
// at parts + i * part_bytes: [out bf16 (rows, heads, head_dim) | lse fp32 (rows, heads)]), with
// fp32 weights and accumulators over the parts in order (starattn::merge_attention_parts). lse
// may be nullptr.
void merge_attention_parts(__nv_bfloat16* out, float* lse, const void* parts, size_t part_bytes,
                           int n_parts, int rows, int heads, int head_dim, cudaStream_t stream);

}  // namespace starattn::cuda
