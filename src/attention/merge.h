// Exact merge of partial attention results over disjoint key sets (the "attention state" merge of
// split-KV decoding, ring attention and Star Attention phase 2). With lse in natural log:
//   lse = log(exp(lse_a) + exp(lse_b)),  out = exp(lse_a - lse) * out_a + exp(lse_b - lse) * out_b.
// A side whose lse is -inf (it saw no key) contributes nothing; both -inf gives out 0, lse -inf.
#pragma once

#include <cstddef>

namespace starattn {

// Folds (out_b, lse_b) into (out_a, lse_a) in place.
// out_*: [n_rows, n_heads, head_dim] contiguous; lse_*: [n_rows, n_heads].
void merge_attention(float* out_a, float* lse_a, const float* out_b, const float* lse_b, int n_rows,
                     int n_heads, int head_dim);

// The N-way merge of partial results as an allgather lays them out: `parts` holds n_parts blocks
// of part_bytes each, block i = [out_i (n_rows, n_heads, head_dim) fp32 | lse_i (n_rows, n_heads)
// fp32]. Writes the merged output to out and, when lse is not null, the merged lse. The weights
// exp(lse_i - max) and the sums are formed over the parts in order 0..n-1 in one pass, so every
// rank that merges the same parts gets the same bits, and the error does not grow with n_parts
// as a chain of pairwise merges does. Parts with lse -inf contribute nothing; all -inf gives
// out 0, lse -inf.
void merge_attention_parts(float* out, float* lse, const void* parts, size_t part_bytes,
                           int n_parts, int n_rows, int n_heads, int head_dim);

}  // namespace starattn
