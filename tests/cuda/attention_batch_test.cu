// The kernels of a served step's attention against their CPU twins, on the same bf16-rounded
// inputs:
//  - shared-context attention (many query rows over one unmasked KV set, split over the keys):
//    vs attention_cpu for S = 1, 3, 8, 17, 33, 64 query rows, GQA groups 1/4/8, head_dim 64/128,
//    0, 1, 100 and ~70K keys, a key count read at run time, and FlashAttention's "at most twice
//    the error of a naive bf16 kernel" against fp64;
//  - per-sequence items merged in place: vs attention_cpu + merge_attention per item (what
//    Backend::attention_merge_items does by default), items with no past keys, rows that see no
//    key, partials that saw no key (NaN-poisoned), untouched rows, more items than one launch.
// Outputs are poisoned with NaN before every launch. A failure prints the shape and where the
// largest error is. Every test skips without a GPU.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "attention/merge.h"
#include "backend/cpu/attention_cpu.h"
#include "backend/cuda/attention.h"
#include "cuda/cuda_test_util.h"
#include "starattn/error.h"
#include "test_util.h"
#include "util/splitmix64.h"

namespace starattn {
namespace {

using bf16 = __nv_bfloat16;
using Fn = void (*)(const cuda::AttnParams&, cudaStream_t);
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Normal(0, stddev) from a hash of (seed, i), made on the GPU (70K-key tensors in milliseconds).
__global__ void fill_normal(bf16* x, size_t n, uint64_t seed, float stddev) {
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n;
       i += size_t{gridDim.x} * blockDim.x) {
    const uint64_t h = splitmix64_at(seed, i);
    const float u1 = (static_cast<float>(h >> 40) + 0.5f) / 16777216.0f;
    const float u2 = (static_cast<float>(h & 0xFFFFFF) + 0.5f) / 16777216.0f;
    x[i] = __float2bfloat16_rn(stddev * sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2));
  }
}

// A bf16 tensor on the device and its exact fp32 upcast on the host.
struct Tensor {
  test::DevBuf<bf16> d;
  std::vector<float> h;
  explicit Tensor(size_t n, float stddev = 1.0f) : d(n) {
    static uint64_t counter = 0;
    if (n) fill_normal<<<1024, 256>>>(d.get(), n, ++counter * 0x2545F4914F6CDD1Dull, stddev);
    SA_CUDA(cudaGetLastError());
    h = test::to_float(d.host());
  }
};

// One attention result, compact: out [rows, heads, d] fp32 (upcast), lse [rows, heads].
struct Result {
  std::vector<float> out, lse;
};

// Empty when `got` matches `want`: relative L2 of out within tol, no NaN where want has none,
// NaN where want has NaN (rows nothing may write), lse within lse_tol with -inf exact. Otherwise
// one line that says how far off and where the largest error is.
std::string mismatch(const Result& got, const Result& want, int heads, int d, double tol,
                     float lse_tol) {
  std::ostringstream msg;
  if (got.out.size() != want.out.size() || got.lse.size() != want.lse.size()) return "sizes differ";
  double num = 0, den = 0, worst = -1;
  size_t worst_i = 0, nan_bad = 0;
  for (size_t i = 0; i < want.out.size(); ++i) {
    const float g = got.out[i], w = want.out[i];
    if (std::isnan(w) != std::isnan(g) || std::isinf(g)) {
      if (nan_bad++ == 0) worst_i = i, worst = INFINITY;
      continue;
    }
    if (std::isnan(w)) continue;
    const double e = double(g) - w;
    num += e * e, den += double(w) * w;
    if (worst != INFINITY && std::abs(e) > worst) worst = std::abs(e), worst_i = i;
  }
  const double rel = std::sqrt(num / std::max(den, 1e-30));
  if (nan_bad > 0 || rel > tol) {
    const size_t row = worst_i / (size_t(heads) * d), h = worst_i / d % heads, c = worst_i % d;
    msg << "out: rel L2 " << rel << " (tol " << tol << "), " << nan_bad
        << " NaN/inf where not expected; worst at row " << row << " head " << h << " col " << c
        << " (got " << got.out[worst_i] << ", want " << want.out[worst_i] << "). ";
  }
  size_t lse_bad = 0, first = 0;
  for (size_t i = 0; i < want.lse.size(); ++i) {
    const float g = got.lse[i], w = want.lse[i];
    const bool ok = std::isnan(w)   ? std::isnan(g)
                    : std::isinf(w) ? g == w
                                    : std::abs(g - w) <= lse_tol;  // NaN compares false
    if (!ok && lse_bad++ == 0) first = i;
  }
  if (lse_bad > 0)
    msg << "lse: " << lse_bad << " of " << want.lse.size() << " off by more than " << lse_tol
        << ", first at row " << first / heads << " head " << first % heads << " (got "
        << got.lse[first] << ", want " << want.lse[first] << ").";
  return msg.str();
}

// ---- shared context ----------------------------------------------------------------------------

struct Shape {
  int n_q, n_kv, kv_heads, group, d;
  bool padded;  // row strides wider than heads * d, as in a fused QKV buffer
  int heads() const { return kv_heads * group; }
  int64_t q_stride() const { return int64_t{heads()} * d + (padded ? 8 : 0); }
  int64_t kv_stride() const { return int64_t{kv_heads} * d + (padded ? 16 : 0); }
  std::string str() const {
    std::ostringstream s;
    s << "S " << n_q << " n_kv " << n_kv << " heads " << heads() << "/" << kv_heads << " d " << d
      << " packed rows per kv head " << n_q * group << (padded ? " padded" : "");
    return s.str();
  }
};

// K and V of up to n_kv rows (callers use a prefix), and q of n_q rows.
struct Inputs {
  Shape s;
  Tensor q, k, v;
  Inputs(const Shape& sh, int n_kv_alloc)
      : s(sh),
        q(size_t(sh.n_q) * sh.q_stride()),
        k(size_t(n_kv_alloc) * sh.kv_stride()),
        v(size_t(n_kv_alloc) * sh.kv_stride()) {}
};

template <typename P>
void fill_params(P& p, const Shape& s, int64_t out_stride) {
  p.n_q = s.n_q, p.n_kv = s.n_kv, p.n_heads = s.heads(), p.n_kv_heads = s.kv_heads;
  p.head_dim = s.d, p.q_stride = s.q_stride(), p.kv_stride = s.kv_stride();
  p.out_stride = out_stride, p.scale = 1.0f / std::sqrt(float(s.d)), p.causal = false;
}

// Drops the padding columns of [rows, stride] rows.
std::vector<float> compact(const std::vector<float>& o, int rows, int64_t stride, int64_t width) {
  std::vector<float> r(size_t(rows) * width);
  for (int i = 0; i < rows; ++i) std::copy_n(o.begin() + i * stride, width, r.begin() + i * width);
  return r;
}

// The GPU result over s.n_kv keys; with n_kv_bound > 0 the kernel gets that as n_kv and reads
// the true count s.n_kv from device memory.
Result run_gpu(Fn fn, const Inputs& in, int n_kv_bound = 0) {
  const Shape& s = in.s;
  const int64_t width = int64_t{s.heads()} * s.d, out_stride = s.q_stride();
  test::DevBuf<bf16> out(size_t(s.n_q) * out_stride);  // NaN-poisoned
  test::DevBuf<float> lse(size_t(s.n_q) * s.heads());
  test::DevBuf<int> count(std::vector<int>{s.n_kv});
  cuda::AttnParams p;
  fill_params(p, s, out_stride);
  p.q = in.q.d.get(), p.k = in.k.d.get(), p.v = in.v.d.get(), p.out = out.get(), p.lse = lse.get();
  if (n_kv_bound > 0) p.n_kv = n_kv_bound, p.n_kv_at = count.get();
  fn(p, nullptr);
  SA_CUDA(cudaDeviceSynchronize());
  return {compact(test::to_float(out.host()), s.n_q, out_stride, width), lse.host()};
}

Result run_cpu(const Inputs& in) {
  const Shape& s = in.s;
  const int64_t width = int64_t{s.heads()} * s.d;
  Result r;
  r.out.assign(size_t(s.n_q) * width, 0.0f);
  r.lse.assign(size_t(s.n_q) * s.heads(), 0.0f);
  AttnParams p;
  fill_params(p, s, width);
  p.q = in.q.h.data(), p.k = in.k.h.data(), p.v = in.v.h.data();
  p.out = r.out.data(), p.lse = r.lse.data();
  attention_cpu(p);
  return r;
}

TEST(SharedContextAttention, MatchesCpu) {
  SA_REQUIRE_GPU();
  const Fn kernels[] = {cuda::attention_shared, cuda::attention};  // direct, and the dispatch
  const char* names[] = {"attention_shared", "attention (dispatch)"};
  for (int d : {64, 128})
    for (int n_kv : {0, 1, 100, 70001}) {
      // The long case keeps one kv head so the fp32 reference stays quick.
      const int kvh = n_kv > 10000 ? 1 : 2;
      const bool padded = n_kv == 100;
      for (int group : {1, 4, 8})
        for (int n_q : {1, 3, 8, 17, 33, 64}) {
          const Shape s{n_q, n_kv, kvh, group, d, padded};
          SCOPED_TRACE(s.str());
          const Inputs in(s, n_kv);
          const Result want = run_cpu(in);
          for (int f = 0; f < 2; ++f)
            EXPECT_EQ(mismatch(run_gpu(kernels[f], in), want, s.heads(), d, 1e-2, 1e-2f), "")
                << names[f];
        }
    }
}

// A few small shapes that cover both row tilings, several key slices, a partial last tile and
// padded strides: quick enough for compute-sanitizer (bench/attention/run_device.sh).
TEST(SharedContextAttention, SmallShapes) {
  SA_REQUIRE_GPU();
  for (const Shape& s : {Shape{33, 300, 2, 4, 128, false}, Shape{3, 100, 2, 4, 64, true},
                         Shape{64, 70, 1, 8, 64, false}, Shape{5, 0, 2, 4, 128, false}}) {
    SCOPED_TRACE(s.str());
    const Inputs in(s, s.n_kv);
    EXPECT_EQ(
        mismatch(run_gpu(cuda::attention_shared, in), run_cpu(in), s.heads(), s.d, 1e-2, 1e-2f),
        "");
  }
}

// Many rows: the row blocks fill the chip alone, so there is one key slice and no merge pass.
TEST(SharedContextAttention, ManyRowsOneSlice) {
  SA_REQUIRE_GPU();
  for (const Shape& s : {Shape{1100, 700, 2, 8, 128, false}, Shape{700, 3000, 4, 4, 64, true}}) {
    SCOPED_TRACE(s.str());
    const Inputs in(s, s.n_kv);
    EXPECT_EQ(
        mismatch(run_gpu(cuda::attention_shared, in), run_cpu(in), s.heads(), s.d, 1e-2, 1e-2f),
        "");
  }
}

// The key count read from device memory when the kernel runs (a replayed CUDA graph): n_kv is
// only the bound that sizes the grid; the result must equal attention over the true count.
TEST(SharedContextAttention, KeyCountReadAtRunTime) {
  SA_REQUIRE_GPU();
  const int bound = 5000;
  for (int d : {64, 128})
    for (int true_kv : {0, 1, 1234, bound})
      for (int n_q : {3, 33}) {
        const Shape s{n_q, true_kv, 2, 4, d, false};
        SCOPED_TRACE(s.str() + " bound " + std::to_string(bound));
        const Inputs in(s, bound);
        const Result want = run_cpu(in);
        for (Fn fn : {cuda::attention_shared, cuda::attention})
          EXPECT_EQ(mismatch(run_gpu(fn, in, bound), want, s.heads(), d, 1e-2, 1e-2f), "");
      }
}

// FlashAttention's test: against fp64, the kernel's largest error is at most twice that of a
// naive bf16 attention (fp32 scores and softmax, P rounded to bf16 before PV, out rounded).
TEST(SharedContextAttention, ErrorAtMostTwiceNaiveBf16) {
  SA_REQUIRE_GPU();
  for (const Shape& s : {Shape{33, 20000, 1, 4, 128, false}, Shape{64, 5000, 1, 8, 64, false},
                         Shape{17, 9000, 2, 1, 128, false}}) {
    SCOPED_TRACE(s.str());
    const Inputs in(s, s.n_kv);
    const Result got = run_gpu(cuda::attention_shared, in);
    const int heads = s.heads(), d = s.d;
    const double scale = 1.0 / std::sqrt(double(d));
    double err_kernel = 0, err_naive = 0, lse_err = 0;
    std::vector<double> s64(s.n_kv), acc64(d);
    std::vector<float> s32(s.n_kv), acc32(d);
    for (int i = 0; i < s.n_q; ++i)
      for (int h = 0; h < heads; ++h) {
        const float* qi = in.q.h.data() + i * s.q_stride() + h * d;
        const int64_t kv_off = int64_t{h / s.group} * d;
        double m64 = -INFINITY;
        float m32 = -INFINITY;
        for (int j = 0; j < s.n_kv; ++j) {
          const float* kj = in.k.h.data() + j * s.kv_stride() + kv_off;
          double a = 0;
          float b = 0;
          for (int e = 0; e < d; ++e) a += double(qi[e]) * kj[e], b += qi[e] * kj[e];
          s64[j] = a * scale, s32[j] = b * float(scale);
          m64 = std::max(m64, s64[j]), m32 = std::max(m32, s32[j]);
        }
        double l64 = 0;
        float l32 = 0;
        for (int j = 0; j < s.n_kv; ++j) {
          s64[j] = std::exp(s64[j] - m64), l64 += s64[j];
          s32[j] = std::exp(s32[j] - m32), l32 += s32[j];
        }
        std::fill(acc64.begin(), acc64.end(), 0.0);
        std::fill(acc32.begin(), acc32.end(), 0.0f);
        for (int j = 0; j < s.n_kv; ++j) {
          const float* vj = in.v.h.data() + j * s.kv_stride() + kv_off;
          const float p = test::bf16_value(test::bf16_bits(s32[j] / l32));
          for (int e = 0; e < d; ++e) acc64[e] += s64[j] / l64 * vj[e], acc32[e] += p * vj[e];
        }
        const size_t row = (size_t(i) * heads + h) * d;
        for (int e = 0; e < d; ++e) {
          const double naive = test::bf16_value(test::bf16_bits(acc32[e]));
          err_naive = std::max(err_naive, std::abs(naive - acc64[e]));
          const float g = got.out[row + e];
          err_kernel = std::isnan(g) ? INFINITY : std::max(err_kernel, std::abs(g - acc64[e]));
        }
        lse_err =
            std::max(lse_err, std::abs(got.lse[size_t(i) * heads + h] - (m64 + std::log(l64))));
      }
    EXPECT_LE(err_kernel, 2 * err_naive) << "naive bf16 max error " << err_naive;
    EXPECT_LE(lse_err, 1e-3);
  }
}

TEST(SharedContextAttention, RejectsAMask) {
  SA_REQUIRE_GPU();
  const Shape s{3, 10, 1, 4, 64, false};
  const Inputs in(s, s.n_kv);
  test::DevBuf<bf16> out(size_t(s.n_q) * s.heads() * s.d);
  cuda::AttnParams p;
  fill_params(p, s, s.q_stride());
  p.q = in.q.d.get(), p.k = in.k.d.get(), p.v = in.v.d.get(), p.out = out.get();
  p.causal = true;
  EXPECT_THROW(cuda::attention_shared(p, nullptr), Error);
}

// ---- per-sequence items ------------------------------------------------------------------------

struct ItemSpec {
  int n_q, n_kv;
  int64_t causal_offset;
  int gap;  // rows of no item before this one's (they must come back unchanged)
};

// Item i of n: mostly decode rows (1 token), some prefills, past keys 0 to ~3000, one item that
// sees no key at all, one whose first rows see none (negative offset).
std::vector<ItemSpec> item_specs(int n) {
  const int n_qs[] = {1, 1, 7, 1, 2, 37, 1, 1, 3, 1, 1};
  const int pasts[] = {0, 1, 100, 2999, 17, 0, 513, 64, 1, 0, 250};
  std::vector<ItemSpec> v;
  for (int i = 0; i < n; ++i) {
    ItemSpec s;
    s.n_q = i == 2 && n >= 3 ? 300 : n_qs[i % 11];
    const int past = pasts[i % 11];
    s.n_kv = past + s.n_q;
    s.causal_offset = past;
    if (i % 13 == 7) s.n_kv = 0;  // no keys at all: nothing may change
    if (i % 11 == 4) s.n_q = 6, s.n_kv = 6, s.causal_offset = -3;  // rows 0-2 see no key
    s.gap = i % 3 == 1 ? 2 : 0;
    v.push_back(s);
  }
  return v;
}

struct ItemsCase {
  int n_items, kv_heads, group, d;
  std::string str() const {
    std::ostringstream s;
    s << n_items << " items, heads " << kv_heads * group << "/" << kv_heads << " d " << d;
    return s.str();
  }
};

// Runs cuda::attention_merge_items on a random partial result and compares it with
// attention_cpu + merge_attention per item. The partial's lse is -inf at some (row, head), and
// its out there is NaN: merge semantics say nothing of that side may leak into the result.
void check_items(const ItemsCase& c) {
  SCOPED_TRACE(c.str());
  const int heads = c.kv_heads * c.group, d = c.d;
  const int64_t width = int64_t{heads} * d, kv_stride = int64_t{c.kv_heads} * d;
  const std::vector<ItemSpec> specs = item_specs(c.n_items);
  int rows = 0, keys = 0;
  std::vector<int> q_row, kv_row;
  for (const ItemSpec& s : specs) {
    rows += s.gap;
    q_row.push_back(rows), kv_row.push_back(keys);
    rows += s.n_q, keys += s.n_kv;
  }
  rows += 1;  // a last untouched row
  const Tensor q(size_t(rows) * width), k(size_t(keys) * kv_stride), v(size_t(keys) * kv_stride);
  Tensor base_out(size_t(rows) * width), base_lse(size_t(rows) * heads, 3.0f);
  std::vector<float> lse0 = base_lse.h, out0 = base_out.h;
  for (size_t i = 0; i < lse0.size(); ++i)
    if (i % 7 == 3) {
      lse0[i] = kNegInf;
      std::fill_n(out0.begin() + i * d, d, std::numeric_limits<float>::quiet_NaN());
    }
  test::DevBuf<bf16> d_out(test::to_bf16(out0));
  test::DevBuf<float> d_lse(lse0);

  // The items, passed in reverse order (the kernel may not rely on row order).
  std::vector<cuda::AttnItem> items;
  for (int i = c.n_items - 1; i >= 0; --i) {
    cuda::AttnItem it;
    it.k = k.d.get() + kv_row[i] * kv_stride;
    it.v = v.d.get() + kv_row[i] * kv_stride;
    it.q_row = q_row[i], it.n_q = specs[i].n_q, it.n_kv = specs[i].n_kv;
    it.causal_offset = specs[i].causal_offset;
    items.push_back(it);
  }
  cuda::AttnParams batch;
  batch.q = q.d.get(), batch.out = d_out.get(), batch.lse = d_lse.get();
  batch.n_heads = heads, batch.n_kv_heads = c.kv_heads, batch.head_dim = d;
  batch.q_stride = batch.out_stride = width, batch.kv_stride = kv_stride;
  batch.scale = 1.0f / std::sqrt(float(d));
  cuda::attention_merge_items(batch, items.data(), c.n_items, nullptr);
  SA_CUDA(cudaDeviceSynchronize());
  const Result got{test::to_float(d_out.host()), d_lse.host()};

  // The reference: the partial rounded to bf16 as the GPU holds it, then each item in turn.
  Result want{test::bf16_round(out0), lse0};
  for (int i = 0; i < c.n_items; ++i) {
    const ItemSpec& s = specs[i];
    std::vector<float> o(size_t(s.n_q) * width), l(size_t(s.n_q) * heads);
    AttnParams p;
    p.q = q.h.data() + q_row[i] * width;
    p.k = k.h.data() + kv_row[i] * kv_stride, p.v = v.h.data() + kv_row[i] * kv_stride;
    p.out = o.data(), p.lse = l.data();
    p.n_q = s.n_q, p.n_kv = s.n_kv, p.n_heads = heads, p.n_kv_heads = c.kv_heads, p.head_dim = d;
    p.q_stride = p.out_stride = width, p.kv_stride = kv_stride;
    p.scale = batch.scale, p.causal = true, p.causal_offset = s.causal_offset;
    attention_cpu(p);
    merge_attention(want.out.data() + q_row[i] * width, want.lse.data() + q_row[i] * heads,
                    o.data(), l.data(), s.n_q, heads, d);
  }
  EXPECT_EQ(mismatch(got, want, heads, d, 1e-2, 1e-2f), "");
  // Rows of no item: the same bits as before.
  std::vector<char> owned(rows, 0);
  for (int i = 0; i < c.n_items; ++i) std::fill_n(owned.begin() + q_row[i], specs[i].n_q, 1);
  int changed = 0;
  for (int r = 0; r < rows; ++r) {
    if (owned[r]) continue;
    for (int64_t e = 0; e < width; ++e) {
      const float a = got.out[r * width + e], b = want.out[r * width + e];
      changed += !(a == b || (std::isnan(a) && std::isnan(b)));
    }
    for (int h = 0; h < heads; ++h) changed += !(got.lse[r * heads + h] == lse0[r * heads + h]);
  }
  EXPECT_EQ(changed, 0) << "elements of rows that belong to no item changed";
}

TEST(AttentionMergeItems, MatchesCpuPerItemAttentionAndMerge) {
  SA_REQUIRE_GPU();
  for (int d : {64, 128})
    for (int group : {1, 4, 8})
      for (int n_items : {1, 3, 17, 33, 64}) check_items({n_items, 2, group, d});
}

TEST(AttentionMergeItems, SmallBatch) {
  SA_REQUIRE_GPU();
  check_items({5, 2, 4, 64});
  check_items({3, 1, 8, 128});
}

// More items than one launch carries: the table is cut into several launches.
TEST(AttentionMergeItems, MoreItemsThanOneLaunch) {
  SA_REQUIRE_GPU();
  check_items({cuda::kItemsPerLaunch * 2 + 5, 1, 4, 64});
  check_items({cuda::kItemsPerLaunch + 1, 2, 8, 128});
}

TEST(AttentionMergeItems, RejectsOverlappingRowsAndAMissingLse) {
  SA_REQUIRE_GPU();
  const int heads = 4, d = 64;
  const Tensor q(size_t(10) * heads * d), kv(size_t(10) * d);
  test::DevBuf<bf16> out(size_t(10) * heads * d);
  test::DevBuf<float> lse(size_t(10) * heads);
  cuda::AttnParams batch;
  batch.q = q.d.get(), batch.out = out.get(), batch.lse = lse.get();
  batch.n_heads = heads, batch.n_kv_heads = 1, batch.head_dim = d;
  batch.q_stride = batch.out_stride = heads * d, batch.kv_stride = d, batch.scale = 0.125f;
  cuda::AttnItem a, b;
  a.k = b.k = a.v = b.v = kv.d.get();
  a.q_row = 0, a.n_q = 4, a.n_kv = 4, b.q_row = 3, b.n_q = 2, b.n_kv = 2;
  const cuda::AttnItem both[] = {a, b};
  try {
    cuda::attention_merge_items(batch, both, 2, nullptr);
    FAIL() << "overlapping items were accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("share rows"), std::string::npos) << e.what();
  }
  batch.lse = nullptr;
  EXPECT_THROW(cuda::attention_merge_items(batch, &a, 1, nullptr), Error);
  batch.lse = lse.get();
  EXPECT_NO_THROW(cuda::attention_merge_items(batch, nullptr, 0, nullptr));
}

}  // namespace
}  // namespace starattn
