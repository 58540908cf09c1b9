// Exact merge of partial attention results over disjoint key sets (the "attention state" merge of
// split-KV decoding, ring attention and Star Attention phase 2). With lse in natural log:
//   lse = log(exp(lse_a) + exp(lse_b)),  out = exp(lse_a - lse) * out_a + exp(lse_b - lse) * out_b.
// A side whose lse is -inf (it saw no key) contributes nothing; both -inf gives out 0, lse -inf.
#pragma once

namespace starattn {

// Folds (out_b, lse_b) into (out_a, lse_a) in place.
// out_*: [n_rows, n_heads, head_dim] contiguous; lse_*: [n_rows, n_heads].
void merge_attention(float* out_a, float* lse_a, const float* out_b, const float* lse_b, int n_rows,
                     int n_heads, int head_dim);

// Scales one partial result for a sum-based cross-rank merge: given the global lse (the
// log-sum-exp over ranks of lse_r), multiplies out by exp(lse_r - lse_global) so summing the scaled
// outputs over ranks gives the merged output. Rows with lse_r = -inf become 0.
void scale_partial_attention(float* out, const float* lse_local, const float* lse_global,
                             int n_rows, int n_heads, int head_dim);

}  // namespace starattn
