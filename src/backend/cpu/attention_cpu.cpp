// fp32 attention with log-sum-exp on the CPU. Work is split into tasks of (query head, block of
// query rows); each task computes S = scale * Q K^T over the keys its rows can see (one sgemm),
// an exact softmax per row, and O = P V (one sgemm). Tasks run on OpenMP threads, each with its
// own score buffer; OpenBLAS is single-threaded inside them (backend/cpu/threads.h). FP8 KV
// (kv_format.h) is dequantised to fp32 a chunk of keys at a time, inside each task.
#include <cblas.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "attention/kv_format.h"
#include "backend/cpu/attention_cpu.h"
#include "backend/cpu/threads.h"
#include "starattn/error.h"

namespace starattn {
namespace {

// Keys visible to query row i: [0, visible_keys(p, i)).
int64_t visible_keys(const AttnParams& p, int64_t i) {
  if (!p.causal) return p.n_kv;
  return std::clamp<int64_t>(i + p.causal_offset + 1, 0, p.n_kv);
}

// Rows per task: bounds each thread's score buffer (rows x keys) to a few MB, so long contexts
// never need N^2 memory, while keeping the GEMMs large enough to run near peak.
int rows_per_block(int64_t n_kv) {
  const int64_t budget = int64_t{1} << 20;  // floats
  return static_cast<int>(std::clamp<int64_t>(budget / std::max<int64_t>(n_kv, 1), 1, 128));
}

// exp(x) for x <= 0 (a score minus its row's max), written so the compiler vectorises it: libm's
// exp is a scalar call and was most of the attention time at long contexts. x = k ln2 + r with
// |r| <= ln2/2; e^r by its degree-7 Taylor polynomial; 2^k by exponent bits. Relative error
// < 1.1e-7 (float rounding) over [-87, 0]; inputs below -87 give ~2^-126, far under anything a
// softmax keeps. The clamp's comparison vectorises only without trapping math, which CMake sets
// for this file (it changes no result).
inline float exp_nonpositive(float x) {
  x = std::max(x, -87.0f);
  // Adding 1.5 * 2^23 rounds x / ln2 to an integer held in the low mantissa bits.
  const float t = x * 1.44269504088896341f + 12582912.0f;
  const int32_t k = std::bit_cast<int32_t>(t) - 0x4B400000;
  const float kf = t - 12582912.0f;
  const float r = (x - kf * 0.693145751953125f) - kf * 1.42860682030941723e-06f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  return p * std::bit_cast<float>((k + 127) << 23);
}

// Softmax of one row over its first `vis` scores, in place; zeroes the rest up to `width`.
// Returns the log-sum-exp (natural log) of the scores, -inf when vis == 0.
float softmax_row(float* s, int64_t vis, int64_t width) {
  float lse = -std::numeric_limits<float>::infinity();
  if (vis > 0) {
    float m = s[0];
    for (int64_t j = 1; j < vis; ++j) m = std::max(m, s[j]);
    for (int64_t j = 0; j < vis; ++j) s[j] = exp_nonpositive(s[j] - m);
    // Eight independent partial sums: a long dependent chain of adds would cost more than the
    // exps, and double keeps the sum exact enough for rows of 10^6 keys.
    double part[8] = {};
    int64_t j = 0;
    for (; j + 8 <= vis; j += 8)
      for (int u = 0; u < 8; ++u) part[u] += s[j + u];
    for (; j < vis; ++j) part[0] += s[j];
    const double sum =
        ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t i = 0; i < vis; ++i) s[i] *= inv;
    lse = m + static_cast<float>(std::log(sum));
  }
  std::fill(s + vis, s + width, 0.0f);
  return lse;
}

}  // namespace

void attention_cpu(const AttnParams& p) {
  if (p.n_kv_at) {  // "backend memory" is host memory here
    AttnParams now = p;
    now.n_kv = *p.n_kv_at;
    now.n_kv_at = nullptr;
    SA_CHECK(!p.causal && now.n_kv >= 0 && now.n_kv <= p.n_kv, "attention: ", now.n_kv,
             " keys at run time with a bound of ", p.n_kv, (p.causal ? " under a mask" : ""));
    return attention_cpu(now);
  }
  SA_CHECK(p.n_heads > 0 && p.n_kv_heads > 0 && p.n_heads % p.n_kv_heads == 0,
           "attention: ", p.n_heads, " query heads vs ", p.n_kv_heads, " kv heads");
  SA_CHECK(p.n_q >= 0 && p.n_kv >= 0 && p.head_dim > 0, "attention: bad sizes");
  const bool fp8 = p.kv_type == KvType::Fp8;
  SA_CHECK(!fp8 || (p.kv_scale_offset >= int64_t{p.n_kv_heads} * p.head_dim &&
                    p.kv_stride >= p.kv_scale_offset + 4 * int64_t{p.n_kv_heads}),
           "attention: fp8 rows of ", p.kv_stride, " bytes cannot hold ", p.n_kv_heads,
           " heads of ", p.head_dim, " values and their scales at byte ", p.kv_scale_offset);
  cpu::blas_single_threaded();
  const float neg_inf = -std::numeric_limits<float>::infinity();
  const int group = p.n_heads / p.n_kv_heads;
  const int d = p.head_dim;
  const int block = rows_per_block(p.n_kv);
  const int n_blocks = (p.n_q + block - 1) / block;
  const int tasks = n_blocks * p.n_heads;
  // fp32 keys are used in place, all at once. fp8 keys are dequantised to fp32 in chunks of this
  // many rows per task (a thread's buffer stays small however long the cache is): the scores are
  // still formed for all keys before one exact softmax, and P V sums the chunks' products.
  const int64_t fp8_chunk = 1024;

  // Parallel only when there is enough work to pay for waking the thread team.
  const double work = static_cast<double>(p.n_q) * p.n_heads * std::max(p.n_kv, 1) * d;
#pragma omp parallel if (tasks > 1 && work > 1e6)
  {
    std::vector<float> scores, kv_buf;
    // Rows [j0, j0 + n) of kv head `kvh` of k or v as fp32: a pointer and its row stride.
    auto keys_at = [&](const void* base, int kvh, int64_t j0, int64_t n, int* ld) {
      if (!fp8) {
        *ld = static_cast<int>(p.kv_stride);
        return static_cast<const float*>(base) + j0 * p.kv_stride + static_cast<int64_t>(kvh) * d;
      }
      kv_buf.resize(static_cast<size_t>(n) * d);
      dequantize_fp8_head(static_cast<const uint8_t*>(base) + j0 * p.kv_stride, p.kv_stride,
                          p.kv_scale_offset, kvh, d, n, kv_buf.data());
      *ld = d;
      return static_cast<const float*>(kv_buf.data());
    };
    // Later row blocks see more keys under a causal mask: hand out tasks dynamically.
#pragma omp for schedule(dynamic)
    for (int task = 0; task < tasks; ++task) {
      const int h = task % p.n_heads, kvh = h / group;
      const int i0 = (task / p.n_heads) * block;
      const int rows = std::min(block, p.n_q - i0);
      const int64_t keys = visible_keys(p, i0 + rows - 1);  // the widest row of this block
      const float* q =
          static_cast<const float*>(p.q) + i0 * p.q_stride + static_cast<int64_t>(h) * d;
      float* out = static_cast<float*>(p.out) + i0 * p.out_stride + static_cast<int64_t>(h) * d;
      if (keys == 0) {
        for (int r = 0; r < rows; ++r) {
          std::fill_n(out + r * p.out_stride, d, 0.0f);
          if (p.lse) p.lse[(i0 + r) * static_cast<int64_t>(p.n_heads) + h] = neg_inf;
        }
        continue;
      }
      const int ld = static_cast<int>(keys);
      const int64_t chunk = fp8 ? fp8_chunk : keys;
      scores.resize(static_cast<size_t>(rows) * ld);
      for (int64_t j0 = 0; j0 < keys; j0 += chunk) {
        const int n = static_cast<int>(std::min(chunk, keys - j0));
        int ldk = 0;
        const float* k = keys_at(p.k, kvh, j0, n, &ldk);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, n, d, p.scale, q,
                    static_cast<int>(p.q_stride), k, ldk, 0.0f, scores.data() + j0, ld);
      }
      for (int r = 0; r < rows; ++r) {
        const float lse =
            softmax_row(scores.data() + static_cast<int64_t>(r) * ld, visible_keys(p, i0 + r), ld);
        if (p.lse) p.lse[(i0 + r) * static_cast<int64_t>(p.n_heads) + h] = lse;
      }
      for (int64_t j0 = 0; j0 < keys; j0 += chunk) {
        const int n = static_cast<int>(std::min(chunk, keys - j0));
        int ldv = 0;
        const float* v = keys_at(p.v, kvh, j0, n, &ldv);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, d, n, 1.0f, scores.data() + j0,
                    ld, v, ldv, j0 == 0 ? 0.0f : 1.0f, out, static_cast<int>(p.out_stride));
      }
    }
  }
}

}  // namespace starattn
