// fp32 attention with log-sum-exp on the CPU, the reference for every other implementation.
// Keys and values are read as fp32: in place from an fp32 cache, or converted a chunk of rows at a
// time (kKvChunk) from bf16 and FP8 rows (kv_format.h), so a thread's buffer stays small however
// long the cache is. Scores S = scale * Q K^T (sgemm), an exact softmax per row, O = P V (sgemm);
// OpenBLAS is single-threaded inside the tasks (backend/cpu/threads.h), which run on the
// backend's threads (cpu::parallel_for). Two ways to cut the work into tasks:
// - Many query rows (prefill): a task is (query head, block of query rows), and each row's scores
//   over all the keys it sees go through one softmax.
// - A few query rows (decode): a task is (query row, kv head, split of the keys). The query heads
//   that share a kv head form the rows of one product, so each key and value row is read once
//   per step, not once per query head (SmolLM2: 3 query heads per kv head; at 4K tokens of
//   context the keys and values are the most bytes a decode step reads). Without a mask every
//   row sees the same keys, so up to kSharedRows rows (query rows x the group's heads: a served
//   step's sequences over one context) are one task per (kv head, split) and each key is read
//   once for all of them. The splits, of
//   kSplitKeys keys each, give the threads work to share when there are fewer kv heads than
//   threads; their partial results are merged by log-sum-exp (merge_attention_parts), the
//   merge phase 2 uses across ranks. The number of splits depends on the keys alone, never on the
//   thread count, so the bits do not either.
#include <cblas.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "attention/kv_format.h"
#include "attention/merge.h"
#include "backend/cpu/attention_cpu.h"
#include "backend/cpu/parallel.h"
#include "backend/cpu/threads.h"
#include "starattn/error.h"

namespace starattn {
namespace {

// Rows of bf16, fp8 and int8 keys (values) converted to fp32 at a time.
constexpr int64_t kKvChunk = 1024;
// Keys per split in the few-rows path.
constexpr int64_t kSplitKeys = 512;
// At most this many query rows take the few-rows path: a decode step's.
constexpr int kFewRows = 4;
// Unmasked calls of at most this many product rows (query rows x heads per kv head) take the
// few-rows path with all their rows in each task; more (phase 1's calls on an anchor) tile rows.
constexpr int kSharedRows = 256;
// Less work than this (multiply-adds) runs on one thread.
constexpr double kParallelMinWork = 1e5;

// Keys visible to query row i: [0, visible_keys(p, i)).
int64_t visible_keys(const AttnParams& p, int64_t i) {
  if (!p.causal) return p.n_kv;
  return std::clamp<int64_t>(i + p.causal_offset + 1, 0, p.n_kv);
}

// Rows [j0, j0 + n) of kv head kvh of k or v (`base`) as fp32 [n, head_dim] with row stride *ld:
// in place for fp32 rows, else converted into buf.
const float* kv_rows_f32(const AttnParams& p, const void* base, int kvh, int64_t j0, int64_t n,
                         std::vector<float>& buf, int* ld) {
  const int d = p.head_dim;
  if (p.kv_type == KvType::Act) {
    *ld = static_cast<int>(p.kv_stride);
    return static_cast<const float*>(base) + j0 * p.kv_stride + static_cast<int64_t>(kvh) * d;
  }
  buf.resize(static_cast<size_t>(n) * d);
  *ld = d;
  if (p.kv_type == KvType::Fp8 || p.kv_type == KvType::Int8) {
    const auto* rows = static_cast<const uint8_t*>(base) + j0 * p.kv_stride;
    if (p.kv_type == KvType::Fp8)
      dequantize_fp8_head(rows, p.kv_stride, p.kv_scale_offset, kvh, d, n, buf.data());
    else
      dequantize_int8_head(rows, p.kv_stride, p.kv_scale_offset, kvh, d, n, buf.data());
    return buf.data();
  }
  // bf16: the top half of an fp32, so the conversion is exact (and vectorises).
  for (int64_t j = 0; j < n; ++j) {
    const uint16_t* src =
        static_cast<const uint16_t*>(base) + (j0 + j) * p.kv_stride + static_cast<int64_t>(kvh) * d;
    float* dst = buf.data() + j * d;
    for (int e = 0; e < d; ++e) dst[e] = std::bit_cast<float>(static_cast<uint32_t>(src[e]) << 16);
  }
  return buf.data();
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

// Many query rows: tasks of (query head, block of rows).
void attention_many_rows(const AttnParams& p) {
  const float neg_inf = -std::numeric_limits<float>::infinity();
  const int group = p.n_heads / p.n_kv_heads;
  const int d = p.head_dim;
  const int block = rows_per_block(p.n_kv);
  const int n_blocks = (p.n_q + block - 1) / block;
  const int tasks = n_blocks * p.n_heads;
  // fp32 keys are used in place, all at once; converted ones a chunk at a time. The scores are
  // still formed for all keys before one exact softmax, and P V sums the chunks' products.
  const int64_t chunk_rows = p.kv_type == KvType::Act ? std::max(p.n_kv, 1) : kKvChunk;
  const double work = static_cast<double>(p.n_q) * p.n_heads * std::max(p.n_kv, 1) * d;
  // Later row blocks see more keys under a causal mask: tasks are handed out one at a time.
  cpu::parallel_for(tasks, work, kParallelMinWork, [&](int64_t task_index) {
    thread_local std::vector<float> scores, kv_buf;  // each thread's, kept between calls
    const int task = static_cast<int>(task_index);
    const int h = task % p.n_heads, kvh = h / group;
    const int i0 = (task / p.n_heads) * block;
    const int rows = std::min(block, p.n_q - i0);
    const int64_t keys = visible_keys(p, i0 + rows - 1);  // the widest row of this block
    const float* q = static_cast<const float*>(p.q) + i0 * p.q_stride + static_cast<int64_t>(h) * d;
    float* out = static_cast<float*>(p.out) + i0 * p.out_stride + static_cast<int64_t>(h) * d;
    if (keys == 0) {
      for (int r = 0; r < rows; ++r) {
        std::fill_n(out + r * p.out_stride, d, 0.0f);
        if (p.lse) p.lse[(i0 + r) * static_cast<int64_t>(p.n_heads) + h] = neg_inf;
      }
      return;
    }
    const int ld = static_cast<int>(keys);
    scores.resize(static_cast<size_t>(rows) * ld);
    for (int64_t j0 = 0; j0 < keys; j0 += chunk_rows) {
      const int n = static_cast<int>(std::min(chunk_rows, keys - j0));
      int ldk = 0;
      const float* k = kv_rows_f32(p, p.k, kvh, j0, n, kv_buf, &ldk);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, n, d, p.scale, q,
                  static_cast<int>(p.q_stride), k, ldk, 0.0f, scores.data() + j0, ld);
    }
    for (int r = 0; r < rows; ++r) {
      const float lse =
          softmax_row(scores.data() + static_cast<int64_t>(r) * ld, visible_keys(p, i0 + r), ld);
      if (p.lse) p.lse[(i0 + r) * static_cast<int64_t>(p.n_heads) + h] = lse;
    }
    for (int64_t j0 = 0; j0 < keys; j0 += chunk_rows) {
      const int n = static_cast<int>(std::min(chunk_rows, keys - j0));
      int ldv = 0;
      const float* v = kv_rows_f32(p, p.v, kvh, j0, n, kv_buf, &ldv);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, d, n, 1.0f, scores.data() + j0,
                  ld, v, ldv, j0 == 0 ? 0.0f : 1.0f, out, static_cast<int>(p.out_stride));
    }
  });
}

// A few query rows: tasks of (row block, kv head, split of kSplitKeys keys), the kv head's query
// heads of the block's rows as the rows of each product. A row block is one row under a causal
// mask (rows see different keys) and every row without one.
void attention_few_rows(const AttnParams& p) {
  const float neg_inf = -std::numeric_limits<float>::infinity();
  const int group = p.n_heads / p.n_kv_heads;
  const int d = p.head_dim;
  const int block_rows = p.causal ? 1 : p.n_q;
  const int n_blocks = p.n_q / block_rows;
  int64_t widest = 0;
  for (int i = 0; i < p.n_q; ++i) widest = std::max(widest, visible_keys(p, i));
  const int64_t splits = std::max<int64_t>(1, (widest + kSplitKeys - 1) / kSplitKeys);
  const int64_t tasks = int64_t{n_blocks} * p.n_kv_heads * splits;
  // With one split a task writes its rows of out and lse; with several, its part of the merge's
  // input: part s = [out (n_q, n_heads, d) | lse (n_q, n_heads)].
  const int64_t rows = int64_t{p.n_q} * p.n_heads;
  const size_t part_bytes = static_cast<size_t>(rows) * (d + 1) * sizeof(float);
  thread_local std::vector<float> parts;  // the calling thread's, kept between calls
  if (splits > 1) parts.resize(static_cast<size_t>(splits) * rows * (d + 1));
  float* parts_base = parts.data();
  const double work = static_cast<double>(p.n_q) * p.n_heads * std::max<int64_t>(widest, 1) * d;
  cpu::parallel_for(tasks, work, kParallelMinWork, [&](int64_t t) {
    thread_local std::vector<float> scores, kv_buf, q_buf, o_buf;  // each thread's, kept
    const int64_t s = t % splits;
    const int kvh = static_cast<int>(t / splits % p.n_kv_heads);
    const int i0 = static_cast<int>(t / splits / p.n_kv_heads) * block_rows;
    const int h0 = kvh * group;
    const int m = block_rows * group;  // product rows: (row i0 + r / group, head h0 + r % group)
    const int64_t j_begin = std::min(s * kSplitKeys, visible_keys(p, i0));
    const int64_t keys = std::min(j_begin + kSplitKeys, visible_keys(p, i0)) - j_begin;
    // Where row r's output and lse go: out + r_out(r) (d values), lse[r_lse(r)].
    float* out;
    float* lse;
    int64_t out_row_stride;  // between query rows; the group's heads are d apart
    if (splits == 1) {
      out = static_cast<float*>(p.out) + i0 * p.out_stride + int64_t{h0} * d;
      lse = p.lse ? p.lse + int64_t{i0} * p.n_heads + h0 : nullptr;
      out_row_stride = p.out_stride;
    } else {
      float* part = parts_base + s * (part_bytes / sizeof(float));
      out = part + (int64_t{i0} * p.n_heads + h0) * d;
      lse = part + rows * d + int64_t{i0} * p.n_heads + h0;
      out_row_stride = int64_t{p.n_heads} * d;
    }
    auto out_row = [&](int r) { return out + (r / group) * out_row_stride + (r % group) * d; };
    auto lse_at = [&](int r) -> float& { return lse[(r / group) * p.n_heads + r % group]; };
    if (keys <= 0) {
      for (int r = 0; r < m; ++r) {
        std::fill_n(out_row(r), d, 0.0f);
        if (lse) lse_at(r) = neg_inf;
      }
      return;
    }
    // The group's query heads are consecutive in a row of q: one row's are a [group, d] matrix in
    // place; several rows' are gathered into q_buf [m, d].
    const float* q = static_cast<const float*>(p.q) + i0 * p.q_stride + int64_t{h0} * d;
    if (block_rows > 1) {
      q_buf.resize(static_cast<size_t>(m) * d);
      for (int i = 0; i < block_rows; ++i)
        std::memcpy(q_buf.data() + static_cast<size_t>(i) * group * d, q + i * p.q_stride,
                    sizeof(float) * group * d);
      q = q_buf.data();
    }
    // P V goes to out in place for one row (its heads' d values are contiguous), else to o_buf.
    float* o = out;
    if (block_rows > 1) {
      o_buf.resize(static_cast<size_t>(m) * d);
      o = o_buf.data();
    }
    const int ld = static_cast<int>(keys);
    scores.resize(static_cast<size_t>(m) * ld);
    for (int64_t c = 0; c < keys; c += kKvChunk) {
      const int n = static_cast<int>(std::min(kKvChunk, keys - c));
      int ldk = 0;
      const float* k = kv_rows_f32(p, p.k, kvh, j_begin + c, n, kv_buf, &ldk);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, d, p.scale, q, d, k, ldk, 0.0f,
                  scores.data() + c, ld);
    }
    for (int r = 0; r < m; ++r) {
      const float l = softmax_row(scores.data() + int64_t{r} * ld, keys, ld);
      if (lse) lse_at(r) = l;
    }
    for (int64_t c = 0; c < keys; c += kKvChunk) {
      const int n = static_cast<int>(std::min(kKvChunk, keys - c));
      int ldv = 0;
      const float* v = kv_rows_f32(p, p.v, kvh, j_begin + c, n, kv_buf, &ldv);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, d, n, 1.0f, scores.data() + c, ld,
                  v, ldv, c == 0 ? 0.0f : 1.0f, o, d);
    }
    if (block_rows > 1)
      for (int r = 0; r < m; ++r) std::memcpy(out_row(r), o + int64_t{r} * d, sizeof(float) * d);
  });
  if (splits == 1) return;
  // The merge writes contiguous rows [n_q, n_heads, d]; out may be strided.
  const bool contiguous = p.out_stride == int64_t{p.n_heads} * d;
  thread_local std::vector<float> merged;
  if (!contiguous) merged.resize(static_cast<size_t>(rows) * d);
  float* dst = contiguous ? static_cast<float*>(p.out) : merged.data();
  merge_attention_parts(dst, p.lse, parts_base, part_bytes, static_cast<int>(splits), p.n_q,
                        p.n_heads, d);
  if (!contiguous)
    for (int i = 0; i < p.n_q; ++i)
      std::memcpy(static_cast<float*>(p.out) + i * p.out_stride,
                  merged.data() + int64_t{i} * p.n_heads * d, sizeof(float) * p.n_heads * d);
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
  SA_CHECK(p.kv_type == KvType::Act || p.kv_type == KvType::Bf16 || kv_type_has_scales(p.kv_type),
           "attention: the CPU reads fp32, bf16, fp8 or int8 keys, not ", kv_type_name(p.kv_type));
  const bool scaled = kv_type_has_scales(p.kv_type);
  SA_CHECK(!scaled || (p.kv_scale_offset >= int64_t{p.n_kv_heads} * p.head_dim &&
                       p.kv_stride >= p.kv_scale_offset + 4 * int64_t{p.n_kv_heads}),
           "attention: ", kv_type_name(p.kv_type), " rows of ", p.kv_stride, " bytes cannot hold ",
           p.n_kv_heads, " heads of ", p.head_dim, " values and their scales at byte ",
           p.kv_scale_offset);
  cpu::blas_single_threaded();
  if (p.n_q == 0) return;
  if (p.n_q <= kFewRows ||
      (!p.causal && int64_t{p.n_q} * (p.n_heads / p.n_kv_heads) <= kSharedRows))
    attention_few_rows(p);
  else
    attention_many_rows(p);
}

}  // namespace starattn
