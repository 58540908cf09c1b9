// fp32 attention with log-sum-exp on the CPU. Per query head and block of query rows:
// S = scale * Q K^T over the visible keys (one sgemm), exact softmax per row, O = P V (one sgemm).
// GEMMs are threaded by OpenBLAS; the softmax is threaded by OpenMP (never nested).
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "attention/attention.h"
#include "starattn/error.h"

namespace starattn {
namespace {

// Keys visible to query row i: [0, visible_keys(p, i)).
int64_t visible_keys(const AttnParams& p, int64_t i) {
  if (!p.causal) return p.n_kv;
  return std::clamp<int64_t>(i + p.causal_offset + 1, 0, p.n_kv);
}

// Bounds the score buffer (rows x keys) to a few MB so long contexts do not need N^2 memory.
int rows_per_block(int64_t n_kv) {
  const int64_t budget = int64_t{1} << 21;  // floats
  return static_cast<int>(std::clamp<int64_t>(budget / std::max<int64_t>(n_kv, 1), 1, 256));
}

}  // namespace

void attention_cpu(const AttnParams& p) {
  SA_CHECK(p.n_heads > 0 && p.n_kv_heads > 0 && p.n_heads % p.n_kv_heads == 0,
           "attention: ", p.n_heads, " query heads vs ", p.n_kv_heads, " kv heads");
  SA_CHECK(p.n_q >= 0 && p.n_kv >= 0 && p.head_dim > 0, "attention: bad sizes");
  const float neg_inf = -std::numeric_limits<float>::infinity();
  const int group = p.n_heads / p.n_kv_heads;
  const int d = p.head_dim;
  const int block = rows_per_block(p.n_kv);
  std::vector<float> scores(static_cast<size_t>(block) * std::max(p.n_kv, 1));

  for (int h = 0; h < p.n_heads; ++h) {
    const float* k = p.k + static_cast<int64_t>(h / group) * d;
    const float* v = p.v + static_cast<int64_t>(h / group) * d;
    for (int i0 = 0; i0 < p.n_q; i0 += block) {
      const int rows = std::min(block, p.n_q - i0);
      const int64_t keys = visible_keys(p, i0 + rows - 1);  // the widest row of this block
      const float* q = p.q + i0 * p.q_stride + static_cast<int64_t>(h) * d;
      float* out = p.out + i0 * p.out_stride + static_cast<int64_t>(h) * d;
      if (keys == 0) {
        for (int r = 0; r < rows; ++r) {
          std::fill_n(out + r * p.out_stride, d, 0.0f);
          if (p.lse) p.lse[(i0 + r) * static_cast<int64_t>(p.n_heads) + h] = neg_inf;
        }
        continue;
      }
      const int ld = static_cast<int>(keys);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, ld, d, p.scale, q,
                  static_cast<int>(p.q_stride), k, static_cast<int>(p.kv_stride), 0.0f,
                  scores.data(), ld);
#pragma omp parallel for schedule(static) if (rows * keys > 4096)
      for (int r = 0; r < rows; ++r) {
        float* s = scores.data() + static_cast<int64_t>(r) * ld;
        const int64_t vis = visible_keys(p, i0 + r);
        float lse = neg_inf;
        if (vis > 0) {
          float m = s[0];
          for (int64_t j = 1; j < vis; ++j) m = std::max(m, s[j]);
          double sum = 0.0;
          for (int64_t j = 0; j < vis; ++j) {
            s[j] = std::exp(s[j] - m);
            sum += s[j];
          }
          const float inv = static_cast<float>(1.0 / sum);
          for (int64_t j = 0; j < vis; ++j) s[j] *= inv;
          lse = m + static_cast<float>(std::log(sum));
        }
        std::fill(s + vis, s + ld, 0.0f);
        if (p.lse) p.lse[(i0 + r) * static_cast<int64_t>(p.n_heads) + h] = lse;
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, d, ld, 1.0f, scores.data(), ld,
                  v, static_cast<int>(p.kv_stride), 0.0f, out, static_cast<int>(p.out_stride));
    }
  }
}

}  // namespace starattn
