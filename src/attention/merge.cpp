#include "attention/merge.h"

#include <cmath>
#include <limits>

namespace starattn {

void merge_attention(float* out_a, float* lse_a, const float* out_b, const float* lse_b, int n_rows,
                     int n_heads, int head_dim) {
  const float neg_inf = -std::numeric_limits<float>::infinity();
  const long n = static_cast<long>(n_rows) * n_heads;
#pragma omp parallel for schedule(static) if (n > 64)
  for (long r = 0; r < n; ++r) {
    const float la = lse_a[r], lb = lse_b[r];
    float* oa = out_a + r * head_dim;
    const float* ob = out_b + r * head_dim;
    if (lb == neg_inf) continue;  // b saw no key: a is already the answer
    if (la == neg_inf) {
      for (int d = 0; d < head_dim; ++d) oa[d] = ob[d];
      lse_a[r] = lb;
      continue;
    }
    // Subtract the max so neither exponential overflows; the larger weight is exactly 1.
    const float m = std::fmax(la, lb);
    const float wa = std::exp(la - m), wb = std::exp(lb - m);
    const float inv = 1.0f / (wa + wb);
    for (int d = 0; d < head_dim; ++d) oa[d] = (wa * oa[d] + wb * ob[d]) * inv;
    lse_a[r] = m + std::log(wa + wb);
  }
}

void merge_attention_parts(float* out, float* lse, const void* parts, size_t part_bytes,
                           int n_parts, int n_rows, int n_heads, int head_dim) {
  const float neg_inf = -std::numeric_limits<float>::infinity();
  const long n = static_cast<long>(n_rows) * n_heads;
  const size_t out_bytes = static_cast<size_t>(n) * head_dim * sizeof(float);
  const auto* base = static_cast<const char*>(parts);
  auto part_out = [&](int i) { return reinterpret_cast<const float*>(base + i * part_bytes); };
  auto part_lse = [&](int i) {
    return reinterpret_cast<const float*>(base + i * part_bytes + out_bytes);
  };
#pragma omp parallel for schedule(static) if (n > 64)
  for (long r = 0; r < n; ++r) {
    float m = neg_inf;
    for (int i = 0; i < n_parts; ++i) m = std::fmax(m, part_lse(i)[r]);
    float* o = out + r * head_dim;
    for (int d = 0; d < head_dim; ++d) o[d] = 0.0f;
    if (m == neg_inf) {  // no part saw a key
      if (lse) lse[r] = neg_inf;
      continue;
    }
    float sum = 0.0f;
    for (int i = 0; i < n_parts; ++i) {
      const float l = part_lse(i)[r];
      if (l == neg_inf) continue;
      const float w = std::exp(l - m);  // the largest weight is exactly 1
      sum += w;
      const float* oi = part_out(i) + r * head_dim;
      for (int d = 0; d < head_dim; ++d) o[d] += w * oi[d];
    }
    const float inv = 1.0f / sum;
    for (int d = 0; d < head_dim; ++d) o[d] *= inv;
    if (lse) lse[r] = m + std::log(sum);
  }
}

}  // namespace starattn
