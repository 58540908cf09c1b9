// Attention with log-sum-exp on the GPU: the CUDA twin of attention_cpu() (attention/attention.h)
// and merge_attention() (attention/merge.h), on bf16 tensors with fp32 accumulation.
// Plain C++ may include this header: it needs only the CUDA runtime's types.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "attention/attention.h"
#include "attention/kv_format.h"

namespace starattn::cuda {

// starattn::AttnParams (attention/attention.h) as the kernels take it: the same AttnShape, with
// typed device pointers. Mask: query row i sees key j iff j <= i + causal_offset when causal,
// every key otherwise; a row that sees no key gets out = 0 and lse = -inf.
// Alignment: q, k, v 16-byte aligned and q_stride, kv_stride multiples of 8 elements (tiles are
// copied in 16-byte pieces); out 4-byte aligned with an even out_stride.
// FP8 KV (kv_type Fp8): k8, v8 instead of k, v (which stay null): KV-cache rows of E4M3 bytes
// with their fp32 scales (attention/kv_format.h); row j of kv head h at k8 + j * kv_stride +
// h * head_dim, its scale at k8 + j * kv_stride + kv_scale_offset + 4 h. k8, v8 16-byte aligned,
// kv_stride (bytes) a multiple of 16. Every kernel dequantises in its tiles; nothing expands the
// cache. A kernel that reads only bf16 must refuse Fp8 (require_bf16_kv in attention_common.cuh).
// n_kv_at (device memory) is read by the split-KV kernels (decode, shared); prefill does not take
// it.
struct AttnParams : AttnShape {
  const __nv_bfloat16* q = nullptr;  // [n_q, n_heads, head_dim], row stride q_stride (elements)
  const __nv_bfloat16* k = nullptr;  // [n_kv, n_kv_heads, head_dim], row stride kv_stride
  const __nv_bfloat16* v = nullptr;  // [n_kv, n_kv_heads, head_dim], row stride kv_stride
  __nv_bfloat16* out = nullptr;      // [n_q, n_heads, head_dim], row stride out_stride
  float* lse = nullptr;              // [n_q, n_heads] natural log, contiguous; may be nullptr
  const uint8_t* k8 = nullptr;       // [n_kv] FP8 rows (kv_type Fp8), row stride kv_stride bytes
  const uint8_t* v8 = nullptr;
};

// The kernels' view of p, whose pointers are this device's: the shape as it is, the pointers
// typed by p.kv_type.
inline AttnParams device_params(const starattn::AttnParams& p) {
  AttnParams g;
  static_cast<AttnShape&>(g) = p;
  g.q = static_cast<const __nv_bfloat16*>(p.q);
  if (p.kv_type == KvType::Fp8) {
    g.k8 = static_cast<const uint8_t*>(p.k);
    g.v8 = static_cast<const uint8_t*>(p.v);
  } else {
    g.k = static_cast<const __nv_bfloat16*>(p.k);
    g.v = static_cast<const __nv_bfloat16*>(p.v);
  }
  g.out = static_cast<__nv_bfloat16*>(p.out);
  g.lse = p.lse;
  return g;
}

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
// FP8 KV: each tile's E4M3 codes are expanded exactly to bf16 in shared memory (on sm_90 by the
// producer warpgroup, from bytes TMA staged); the key scales multiply the scores and the value
// scales the probabilities, in fp32.
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
struct AttnItem : AttnItemSpan {
  const __nv_bfloat16* k = nullptr;  // [n_kv, n_kv_heads, head_dim], row stride batch.kv_stride
  const __nv_bfloat16* v = nullptr;  // same
};
void attention_merge_items(const AttnParams& batch, const AttnItem* items, int n_items,
                           cudaStream_t stream);
inline constexpr int kItemsPerLaunch = 64;
// An engine's item (bf16 keys on this device) as the kernel takes it.
inline AttnItem device_item(const starattn::AttnItem& it) {
  AttnItem g;
  static_cast<AttnItemSpan&>(g) = it;
  g.k = static_cast<const __nv_bfloat16*>(it.k);
  g.v = static_cast<const __nv_bfloat16*>(it.v);
  return g;
}

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
