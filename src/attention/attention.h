// Attention over one set of keys/values that also returns the log-sum-exp of the scores.
// Every attention in starattn goes through this primitive: dense prefill, Star Attention's
// [anchor + block] phase 1, phase 2's partial attention on each rank, and ring steps. Partial
// results over disjoint key sets combine exactly with merge_attention() (merge.h).
#pragma once

#include <cstdint>

namespace starattn {

// Mask: query row i sees key j iff j <= i + causal_offset when causal, every key otherwise.
// With a KV cache of P earlier tokens and n new ones appended, causal_offset = P gives ordinary
// causal attention; for Star phase 1 over [anchor(A), block] with queries = block rows, it is A.
// Tensor elements are the backend's act_dtype (fp32 on the CPU); lse is always fp32.
struct AttnParams {
  const void* q = nullptr;  // [n_q, n_heads, head_dim], row stride q_stride (elements)
  const void* k = nullptr;  // [n_kv, n_kv_heads, head_dim], row stride kv_stride
  const void* v = nullptr;  // [n_kv, n_kv_heads, head_dim], row stride kv_stride
  void* out = nullptr;      // [n_q, n_heads, head_dim], row stride out_stride
  float* lse = nullptr;     // [n_q, n_heads] natural log; -inf where a row sees no key (out = 0)
  int n_q = 0;
  int n_kv = 0;
  int n_heads = 0;
  int n_kv_heads =
      0;  // n_heads % n_kv_heads == 0; query head h reads kv head h / (n_heads/n_kv_heads)
  int head_dim = 0;
  int64_t q_stride = 0;
  int64_t kv_stride = 0;
  int64_t out_stride = 0;
  float scale = 0.0f;  // usually 1/sqrt(head_dim)
  bool causal = false;
  int64_t causal_offset = 0;
  // When set: an int in the backend's memory that holds the number of keys, read when the work
  // runs; n_kv is then its upper bound. A recorded decode step (CUDA graph) replays with a longer
  // cache this way. Only without a mask.
  const int* n_kv_at = nullptr;
};

// One item of a batch of small attentions (a served step's per-sequence part): n_q rows of q,
// starting at row q_row, attend to the item's own n_kv keys k, v ([n_kv, n_kv_heads, head_dim],
// row stride as the batch's kv_stride), causally with causal_offset (see AttnParams), and the
// result is merged by log-sum-exp into the same rows of out/lse, which already hold a partial
// result over other keys.
struct AttnItem {
  const void* k = nullptr;
  const void* v = nullptr;
  int q_row = 0;
  int n_q = 0;
  int n_kv = 0;
  int64_t causal_offset = 0;
};

}  // namespace starattn
