// attention_cpu against a naive fp64 reference, and the merge of partial results against one
// attention over the union of the keys.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "attention/merge.h"
#include "backend/cpu/attention_cpu.h"

namespace starattn {
namespace {

struct Case {
  int n_q, n_kv, n_heads, n_kv_heads, head_dim;
  bool causal;
  int offset;
};

std::vector<float> random_vec(size_t n, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Naive fp64 attention with the same mask rule; lse -inf and out 0 for rows that see no key.
void reference(const Case& c, const std::vector<float>& q, const std::vector<float>& k,
               const std::vector<float>& v, std::vector<double>& out, std::vector<double>& lse) {
  const int d = c.head_dim, group = c.n_heads / c.n_kv_heads;
  out.assign(static_cast<size_t>(c.n_q) * c.n_heads * d, 0.0);
  lse.assign(static_cast<size_t>(c.n_q) * c.n_heads, -std::numeric_limits<double>::infinity());
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  for (int i = 0; i < c.n_q; ++i) {
    const int vis = c.causal ? std::clamp(i + c.offset + 1, 0, c.n_kv) : c.n_kv;
    for (int h = 0; h < c.n_heads; ++h) {
      if (vis == 0) continue;
      const int g = h / group;
      std::vector<double> s(vis);
      double m = -1e300;
      for (int j = 0; j < vis; ++j) {
        double dot = 0;
        for (int e = 0; e < d; ++e)
          dot += static_cast<double>(q[(static_cast<size_t>(i) * c.n_heads + h) * d + e]) *
                 k[(static_cast<size_t>(j) * c.n_kv_heads + g) * d + e];
        s[j] = dot * scale;
        m = std::max(m, s[j]);
      }
      double sum = 0;
      for (double& x : s) sum += (x = std::exp(x - m));
      for (int j = 0; j < vis; ++j)
        for (int e = 0; e < d; ++e)
          out[(static_cast<size_t>(i) * c.n_heads + h) * d + e] +=
              s[j] / sum * v[(static_cast<size_t>(j) * c.n_kv_heads + g) * d + e];
      lse[static_cast<size_t>(i) * c.n_heads + h] = m + std::log(sum);
    }
  }
}

AttnParams params(const Case& c, const float* q, const float* k, const float* v, float* out,
                  float* lse) {
  AttnParams p;
  p.q = q;
  p.k = k;
  p.v = v;
  p.out = out;
  p.lse = lse;
  p.n_q = c.n_q;
  p.n_kv = c.n_kv;
  p.n_heads = c.n_heads;
  p.n_kv_heads = c.n_kv_heads;
  p.head_dim = c.head_dim;
  p.q_stride = static_cast<int64_t>(c.n_heads) * c.head_dim;
  p.kv_stride = static_cast<int64_t>(c.n_kv_heads) * c.head_dim;
  p.out_stride = p.q_stride;
  p.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  p.causal = c.causal;
  p.causal_offset = c.offset;
  return p;
}

class AttentionVsReference : public testing::TestWithParam<Case> {};

TEST_P(AttentionVsReference, OutputAndLseMatchFp64) {
  const Case c = GetParam();
  std::mt19937 rng(1234 + c.n_q * 7 + c.n_kv);
  auto q = random_vec(static_cast<size_t>(c.n_q) * c.n_heads * c.head_dim, rng);
  auto k = random_vec(static_cast<size_t>(c.n_kv) * c.n_kv_heads * c.head_dim, rng);
  auto v = random_vec(static_cast<size_t>(c.n_kv) * c.n_kv_heads * c.head_dim, rng);
  // Poisoned outputs: an element the kernel forgets to write fails the comparison.
  std::vector<float> out(q.size(), std::numeric_limits<float>::quiet_NaN());
  std::vector<float> lse(static_cast<size_t>(c.n_q) * c.n_heads,
                         std::numeric_limits<float>::quiet_NaN());
  attention_cpu(params(c, q.data(), k.data(), v.data(), out.data(), lse.data()));
  std::vector<double> ro, rl;
  reference(c, q, k, v, ro, rl);
  for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], ro[i], 2e-5) << "out[" << i << "]";
  for (size_t i = 0; i < lse.size(); ++i) {
    if (std::isinf(rl[i])) {
      ASSERT_TRUE(std::isinf(lse[i]) && lse[i] < 0) << "lse[" << i << "] should be -inf";
    } else {
      ASSERT_NEAR(lse[i], rl[i], 2e-5 * std::max(1.0, std::abs(rl[i]))) << "lse[" << i << "]";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, AttentionVsReference,
    testing::Values(Case{1, 1, 4, 4, 64, false, 0}, Case{3, 37, 8, 2, 64, false, 0},
                    Case{37, 37, 8, 1, 128, true, 0}, Case{5, 40, 8, 8, 64, true, 35},
                    Case{17, 30, 4, 1, 128, true, 13},
                    // negative offset: the first rows see no key (lse -inf, out 0)
                    Case{9, 12, 4, 2, 64, true, -4}, Case{300, 301, 2, 1, 64, true, 1},
                    Case{1, 0, 4, 2, 64, false, 0},
                    // A few rows over many keys: the kv head's query heads together, the keys in
                    // splits of 512 merged by log-sum-exp (SmolLM2's decode shape; causal rows
                    // that end inside a split or see none of the last).
                    Case{1, 1500, 9, 3, 64, false, 0}, Case{3, 1100, 8, 2, 64, true, 1022},
                    Case{4, 1030, 4, 1, 128, true, 509},
                    // Unmasked rows of several tokens (a served step's sequences over one
                    // context): all their rows in one product per kv head and split, in one
                    // split and in three; past 256 product rows they tile as prefill does.
                    Case{6, 1100, 8, 2, 64, false, 0}, Case{2, 600, 9, 3, 128, false, 0},
                    Case{70, 40, 8, 2, 64, false, 0}));

// Splits the keys of one attention into parts (some empty), merges the partial results and
// compares with attention over the union. This is Star Attention's phase-2 merge.
TEST(Merge, PartialsOverSplitKeysEqualUnion) {
  const int n_q = 7, n_kv = 50, n_heads = 8, n_kv_heads = 2, d = 64;
  std::mt19937 rng(99);
  auto q = random_vec(static_cast<size_t>(n_q) * n_heads * d, rng, 2.0f);
  auto k = random_vec(static_cast<size_t>(n_kv) * n_kv_heads * d, rng, 2.0f);
  auto v = random_vec(static_cast<size_t>(n_kv) * n_kv_heads * d, rng);
  Case whole{n_q, n_kv, n_heads, n_kv_heads, d, false, 0};
  std::vector<float> out_u(q.size()), lse_u(static_cast<size_t>(n_q) * n_heads);
  attention_cpu(params(whole, q.data(), k.data(), v.data(), out_u.data(), lse_u.data()));

  const int cuts[] = {0, 0, 13, 13, 31, 50, 50};  // parts: [0,0) [0,13) [13,13) [13,31) ...
  std::vector<float> acc_o(q.size(), 0.0f),
      acc_l(lse_u.size(), -std::numeric_limits<float>::infinity());
  for (size_t p = 0; p + 1 < std::size(cuts); ++p) {
    const int lo = cuts[p], n = cuts[p + 1] - cuts[p];
    Case part{n_q, n, n_heads, n_kv_heads, d, false, 0};
    std::vector<float> o(q.size()), l(lse_u.size());
    const size_t off = static_cast<size_t>(lo) * n_kv_heads * d;
    attention_cpu(params(part, q.data(), k.data() + off, v.data() + off, o.data(), l.data()));
    merge_attention(acc_o.data(), acc_l.data(), o.data(), l.data(), n_q, n_heads, d);
  }
  for (size_t i = 0; i < out_u.size(); ++i) ASSERT_NEAR(acc_o[i], out_u[i], 1e-5);
  for (size_t i = 0; i < lse_u.size(); ++i) ASSERT_NEAR(acc_l[i], lse_u[i], 1e-5);
}

// The N-way merge of an allgather's [out | lse] blocks equals attention over the union of the
// parts' keys, with empty parts and a part that dominates, and needs no order of pairwise merges.
TEST(Merge, PartsOfAnAllgatherEqualUnion) {
  const int n_q = 5, n_heads = 4, n_kv_heads = 2, d = 64;
  const int cuts[] = {0, 0, 9, 9, 40, 41, 70, 70};  // 7 parts, two of them empty
  const int n_kv = 70, parts = static_cast<int>(std::size(cuts)) - 1;
  std::mt19937 rng(5);
  auto q = random_vec(static_cast<size_t>(n_q) * n_heads * d, rng, 2.0f);
  auto k = random_vec(static_cast<size_t>(n_kv) * n_kv_heads * d, rng, 2.0f);
  auto v = random_vec(static_cast<size_t>(n_kv) * n_kv_heads * d, rng);
  for (int j = 9; j < 40; ++j)  // keys of part 2 score far above the rest
    for (int c = 0; c < n_kv_heads * d; ++c) k[static_cast<size_t>(j) * n_kv_heads * d + c] *= 4;
  const Case whole{n_q, n_kv, n_heads, n_kv_heads, d, false, 0};
  std::vector<float> out_u(q.size()), lse_u(static_cast<size_t>(n_q) * n_heads);
  attention_cpu(params(whole, q.data(), k.data(), v.data(), out_u.data(), lse_u.data()));
  const size_t out_n = q.size(), each = (out_n + lse_u.size()) * sizeof(float);
  std::vector<float> gathered(each / sizeof(float) * parts, std::nanf(""));
  for (int p = 0; p < parts; ++p) {
    float* o = gathered.data() + p * (each / sizeof(float));
    const Case part{n_q, cuts[p + 1] - cuts[p], n_heads, n_kv_heads, d, false, 0};
    const size_t off = static_cast<size_t>(cuts[p]) * n_kv_heads * d;
    attention_cpu(params(part, q.data(), k.data() + off, v.data() + off, o, o + out_n));
  }
  std::vector<float> out(q.size(), std::nanf("")), lse(lse_u.size(), std::nanf(""));
  merge_attention_parts(out.data(), lse.data(), gathered.data(), each, parts, n_q, n_heads, d);
  for (size_t i = 0; i < out_u.size(); ++i) ASSERT_NEAR(out[i], out_u[i], 1e-5) << i;
  for (size_t i = 0; i < lse_u.size(); ++i) ASSERT_NEAR(lse[i], lse_u[i], 1e-5) << i;
  // Every part empty: out 0 and lse -inf, never NaN.
  for (int p = 0; p < parts; ++p) {
    float* o = gathered.data() + p * (each / sizeof(float));
    std::fill(o, o + out_n, 0.0f);
    std::fill(o + out_n, o + each / sizeof(float), -std::numeric_limits<float>::infinity());
  }
  merge_attention_parts(out.data(), lse.data(), gathered.data(), each, parts, n_q, n_heads, d);
  for (float x : out) ASSERT_EQ(x, 0.0f);
  for (float x : lse) ASSERT_TRUE(std::isinf(x) && x < 0);
}

TEST(Merge, ExtremeLseDifferencesStayFinite) {
  // lse gaps far beyond exp()'s range: an unguarded log(1 + exp(x)) would give inf / NaN.
  const float neg_inf = -std::numeric_limits<float>::infinity();
  std::vector<float> oa = {1, 2}, la = {500.0f}, ob = {3, 4}, lb = {-500.0f};
  merge_attention(oa.data(), la.data(), ob.data(), lb.data(), 1, 1, 2);
  EXPECT_FLOAT_EQ(oa[0], 1.0f);
  EXPECT_FLOAT_EQ(la[0], 500.0f);
  std::vector<float> oc = {7, 8}, lc = {neg_inf}, od = {5, 6}, ld = {3.0f};
  merge_attention(oc.data(), lc.data(), od.data(), ld.data(), 1, 1, 2);
  EXPECT_FLOAT_EQ(oc[0], 5.0f);
  EXPECT_FLOAT_EQ(lc[0], 3.0f);
  std::vector<float> oe = {0, 0}, le = {neg_inf}, of = {9, 9}, lf = {neg_inf};
  merge_attention(oe.data(), le.data(), of.data(), lf.data(), 1, 1, 2);
  EXPECT_EQ(oe[0], 0.0f);
  EXPECT_TRUE(std::isinf(le[0]));
}

}  // namespace
}  // namespace starattn
