// Attention over one set of keys/values that also returns the log-sum-exp of the scores.
// Every attention in starattn goes through this primitive: dense prefill, Star Attention's
// [anchor + block] phase 1, phase 2's partial attention on each rank, and ring steps. Partial
// results over disjoint key sets combine exactly with merge_attention() (merge.h). Plain C++17:
// the CUDA kernels' header (backend/cuda/attention.h) includes it.
#pragma once

#include <cstdint>

#include "attention/kv_format.h"

namespace starattn {

// Mask: query row i sees key j iff j <= i + causal_offset when causal, every key otherwise.
// With a KV cache of P earlier tokens and n new ones appended, causal_offset = P gives ordinary
// causal attention; for Star phase 1 over [anchor(A), block] with queries = block rows, it is A.
// Tensor elements are the backend's act_dtype (fp32 on the CPU); lse is always fp32. K and V are
// in that type too, or with kv_type Fp8 in KV-cache rows of FP8 E4M3 bytes whose fp32 scales
// follow each row's data (kv_format.h): row j's scale of kv head h is the float at byte
// j * kv_stride + kv_scale_offset + 4 h of k (and of v).
//
// AttnShape is everything but the tensors' addresses. It is declared once for the engine's
// AttnParams (type-erased pointers: each backend has its own element type) and the CUDA kernels'
// cuda::AttnParams (typed device pointers), so neither copies the other field by field.
struct AttnShape {
  int n_q = 0;
  int n_kv = 0;
  int n_heads = 0;
  int n_kv_heads =
      0;  // n_heads % n_kv_heads == 0; query head h reads kv head h / (n_heads/n_kv_heads)
  int head_dim = 0;
  int64_t q_stride = 0;
  int64_t kv_stride = 0;  // elements of kv_type: bytes for Fp8
  int64_t out_stride = 0;
  KvType kv_type = KvType::Act;
  int64_t kv_scale_offset = 0;  // Fp8: bytes from a row's start to its [n_kv_heads] fp32 scales
  float scale = 0.0f;           // usually 1/sqrt(head_dim)
  bool causal = false;
  int64_t causal_offset = 0;
  // When set: an int in the backend's memory that holds the number of keys, read when the work
  // runs; n_kv is then its upper bound. A recorded decode step (CUDA graph) replays with a longer
  // cache this way. Only without a mask.
  const int* n_kv_at = nullptr;
};

struct AttnParams : AttnShape {
  const void* q = nullptr;  // [n_q, n_heads, head_dim], row stride q_stride (elements)
  const void* k = nullptr;  // [n_kv, n_kv_heads, head_dim], row stride kv_stride (of kv_type)
  const void* v = nullptr;  // [n_kv, n_kv_heads, head_dim], row stride kv_stride (of kv_type)
  void* out = nullptr;      // [n_q, n_heads, head_dim], row stride out_stride
  float* lse = nullptr;     // [n_q, n_heads] natural log; -inf where a row sees no key (out = 0)
};

// One item of a batch of small attentions (a served step's per-sequence part): n_q rows of q,
// starting at row q_row, attend to the item's own n_kv keys k, v ([n_kv, n_kv_heads, head_dim],
// row stride, type and scale offset as the batch's kv_stride, kv_type, kv_scale_offset), causally
// with causal_offset (see AttnParams), and the result is merged by log-sum-exp into the same rows
// of out/lse, which already hold a partial result over other keys. AttnItemSpan is the item but
// its keys' addresses, shared with the CUDA kernels' cuda::AttnItem as AttnShape is.
struct AttnItemSpan {
  int q_row = 0;
  int n_q = 0;
  int n_kv = 0;
  int64_t causal_offset = 0;
};

struct AttnItem : AttnItemSpan {
  const void* k = nullptr;
  const void* v = nullptr;
};

}  // namespace starattn
