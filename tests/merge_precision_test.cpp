// Precision of the phase-2 merge of (out, lse) partials from H ranks against one fp64 attention
// over the union of the keys (bench/merge_precision/merge_study.h builds the inputs and the
// merges; docs/ACCURACY.md "Merge precision" has the full table). The bounds are in units of the
// formats' unit roundoff u:
//   - a partial's out stored with u_out is off by at most u_out (the values are in [-1, 1]), and
//     the merge is a convex combination, so storing the partials costs at most u_out;
//   - a partial's lse stored with u_lse is off by up to u_lse * |lse| in absolute terms, which
//     scales its weight by exp(+-u_lse * |lse|): at most ~2 u_lse max|lse| on the output;
//   - a sequential merge that rounds its accumulator after each of the H - 1 steps adds up to
//     u_out per step, damped by the later weights: at most ~H/2 u_out for equal weights.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>

#include "../bench/merge_precision/merge_study.h"
#include "attention/merge.h"
#include "test_util.h"

namespace starattn::merge_study {
namespace {

constexpr int kHeadDim = 64, kKeysPerRank = 16, kRows = 32;
const std::vector<int> kRanks = {2, 3, 4, 8, 16, 32, 64};
const double kU32 = unit_roundoff(Fmt::F32), kU16 = unit_roundoff(Fmt::BF16);

// kRows rows per (input, H), made once: the fp64 attention over up to 1,024 keys is the slow part.
const std::vector<Row>& rows_for(Input kind, int ranks) {
  static std::map<std::pair<Input, int>, std::vector<Row>> cache;
  std::vector<Row>& rows = cache[{kind, ranks}];
  if (rows.empty()) {
    std::mt19937_64 rng(7919 * static_cast<int>(kind) + ranks);
    for (int i = 0; i < kRows; ++i) {
      rows.push_back(make_row(kind, ranks, kKeysPerRank, kHeadDim, rng));
    }
  }
  return rows;
}

// starattn's CPU merge itself (src/attention/merge.cpp), rank by rank as phase 2 calls it.
State cpu_merge(const Row& r) {
  State acc = stored_partial(r, 0, Fmt::F32, Fmt::F32);
  for (int h = 1; h < r.ranks; ++h) {
    const State p = stored_partial(r, h, Fmt::F32, Fmt::F32);
    merge_attention(acc.out.data(), &acc.lse, p.out.data(), &p.lse, 1, 1, kHeadDim);
  }
  return acc;
}

TEST(MergePrecision, RoundingMatchesTheConversions) {
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> mant(1.0, 2.0);
  std::uniform_int_distribution<int> expo(-140, 127);
  for (int i = 0; i < 200000; ++i) {
    const double x = (i % 2 ? -1 : 1) * std::ldexp(mant(rng), expo(rng));
    const float f = static_cast<float>(x);
    ASSERT_EQ(round_to(x, Fmt::F32), static_cast<double>(f)) << x;
    // bf16 against the bit trick the CUDA tests use; fp16 against the compiler's _Float16.
    ASSERT_EQ(round_to(f, Fmt::BF16), test::bf16_value(test::bf16_bits(f))) << f;
#ifdef __FLT16_MANT_DIG__
    ASSERT_EQ(round_to(f, Fmt::F16), static_cast<double>(static_cast<_Float16>(f))) << f;
#endif
  }
  // Ties go to even; past the largest finite value, inf.
  EXPECT_EQ(round_to(1.0 + std::ldexp(1.0, -8), Fmt::BF16), 1.0);
  EXPECT_EQ(round_to(1.0 + 3 * std::ldexp(1.0, -8), Fmt::BF16), 1.0 + std::ldexp(1.0, -6));
  EXPECT_EQ(round_to(65519.0, Fmt::F16), 65504.0);
  EXPECT_EQ(round_to(65520.0, Fmt::F16), INFINITY);
  EXPECT_EQ(round_to(-INFINITY, Fmt::BF16), -INFINITY);
}

TEST(MergePrecision, TheModelIsStarattnsCpuMerge) {
  // The emulated fp32 sequential merge and merge_attention agree to the bit, so the table's
  // other rows differ from starattn's only by the formats and the order they name.
  const Config fp32{Fmt::F32, Fmt::F32, Order::Sequential, false};
  for (Input kind : all_inputs()) {
    for (int h : kRanks) {
      for (const Row& r : rows_for(kind, h)) {
        const std::vector<float> model = merge_row(r, fp32);
        const State real = cpu_merge(r);
        ASSERT_EQ(std::memcmp(model.data(), real.out.data(), model.size() * sizeof(float)), 0)
            << input_name(kind) << " H=" << h;
      }
    }
  }
}

// The worst err / (u_out + u_lse * max|lse|) over rows, for one input kind and H.
template <typename Merge>
double worst_ratio(Input kind, int h, Fmt out, Fmt lse, Merge merge) {
  double worst = 0;
  for (const Row& r : rows_for(kind, h)) {
    const double e = max_abs_error(merge(r), r.ref);
    worst = std::max(worst, e / (unit_roundoff(out) + unit_roundoff(lse) * max_abs_lse(r)));
  }
  return worst;
}

TEST(MergePrecision, CpuMergeStaysWithinItsFormatForAnyH) {
  // fp32 partials, fp32 lse, rank order: within 4 (u + u max|lse|) for every input up to 64
  // ranks (measured: at most 1.1). The accumulator's rounding does not build up at these H:
  // an fp32 step loses only updates below 2^-24 of the running value.
  for (Input kind : all_inputs()) {
    for (int h : kRanks) {
      const double r = worst_ratio(kind, h, Fmt::F32, Fmt::F32,
                                   [](const Row& row) { return cpu_merge(row).out; });
      EXPECT_LE(r, 4.0) << input_name(kind) << " H=" << h;
    }
  }
}

TEST(MergePrecision, CudaMergeStaysWithinTheSequentialBound) {
  // bf16 partials, fp32 lse, merged in rank order into the first partial's bf16 buffer (the
  // CUDA backend's merge_kernel): within (1 + H/2) u_bf16 + 2 u_fp32 max|lse| for every H, and
  // within 2 u_bf16 (+ the lse term) up to 8 ranks, one node's worth of GPUs.
  const Config cuda{Fmt::BF16, Fmt::F32, Order::Sequential, false};
  for (Input kind : all_inputs()) {
    for (int h : kRanks) {
      SCOPED_TRACE(std::string(input_name(kind)) + " H=" + std::to_string(h));
      for (const Row& r : rows_for(kind, h)) {
        const double e = max_abs_error(merge_row(r, cuda), r.ref);
        const double lse_term = 2 * kU32 * max_abs_lse(r);
        ASSERT_LE(e, (1 + h / 2.0) * kU16 + lse_term);
        if (h <= 8) {
          ASSERT_LE(e, 2 * kU16 + lse_term);
        }
      }
    }
  }
}

TEST(MergePrecision, Fp32AccumulationMakesBf16IndependentOfH) {
  // The same bf16 partials merged with an fp32 accumulator (or the two-pass form) stay within
  // 1.5 u_bf16 at every H; the pairwise tree rounds once per level, (1 + log2 H) u at most.
  const Config acc{Fmt::BF16, Fmt::F32, Order::Sequential, true};
  const Config two{Fmt::BF16, Fmt::F32, Order::TwoPass, true};
  const Config tree{Fmt::BF16, Fmt::F32, Order::Tree, false};
  const Config cuda{Fmt::BF16, Fmt::F32, Order::Sequential, false};
  for (Input kind : all_inputs()) {
    for (int h : kRanks) {
      SCOPED_TRACE(std::string(input_name(kind)) + " H=" + std::to_string(h));
      auto with = [](const Config& c) { return [c](const Row& r) { return merge_row(r, c); }; };
      EXPECT_LE(worst_ratio(kind, h, Fmt::BF16, Fmt::F32, with(acc)), 1.5);
      EXPECT_LE(worst_ratio(kind, h, Fmt::BF16, Fmt::F32, with(two)), 1.5);
      EXPECT_LE(worst_ratio(kind, h, Fmt::BF16, Fmt::F32, with(tree)), 1 + std::log2(h));
    }
  }
  // What docs/ACCURACY.md says of the rank-order bf16 merge: at 64 ranks of ordinary scores it
  // is several times worse than with an fp32 accumulator (late ranks' small updates are lost
  // to the bf16 rounding of the running output).
  const double seq64 = worst_ratio(Input::Ordinary, 64, Fmt::BF16, Fmt::F32,
                                   [&](const Row& r) { return merge_row(r, cuda); });
  EXPECT_GT(seq64, 3.0);
}

TEST(MergePrecision, Bf16LseIsTooCoarse) {
  // A bf16 lse is off by up to |lse| 2^-8: a weight error of a few percent at |lse| ~ 10, and
  // none of the weights right at |lse| ~ 1e4. No output format makes up for it.
  const Config bf16_lse{Fmt::F32, Fmt::BF16, Order::Sequential, false};
  double worst = 0;
  for (const Row& r : rows_for(Input::LargeLse, 4)) {
    worst = std::max(worst, max_abs_error(merge_row(r, bf16_lse), r.ref));
  }
  EXPECT_GT(worst, 0.1);
  double spread = 0;
  for (const Row& r : rows_for(Input::Spread1e2, 4)) {
    spread = std::max(spread, max_abs_error(merge_row(r, bf16_lse), r.ref));
  }
  EXPECT_GT(spread, 4 * kU16);  // worse than storing the outputs themselves in bf16
}

TEST(MergePrecision, RanksWithoutKeysNeverGiveNaN) {
  // A rank with no keys has lse -inf. Its out is never read, so even NaN there (a kernel that
  // left the row unwritten) changes nothing, in every format and order, wherever the rank is.
  std::vector<Config> configs;
  for (Fmt out : {Fmt::F32, Fmt::BF16, Fmt::F16}) {
    for (Fmt lse : {Fmt::F32, Fmt::BF16}) {
      for (Order o : {Order::Sequential, Order::Tree, Order::TwoPass}) {
        configs.push_back({out, lse, o, false});
        configs.push_back({out, lse, o, true});
      }
    }
  }
  for (int h : kRanks) {
    for (const Row& clean : rows_for(Input::EmptyRanks, h)) {
      Row poisoned = clean;
      for (int r = 0; r < h; ++r) {
        if (std::isinf(clean.lse[r])) {
          for (int d = 0; d < kHeadDim; ++d) poisoned.out[r * kHeadDim + d] = NAN;
        }
      }
      const State real = cpu_merge(poisoned);
      ASSERT_LT(max_abs_error(real.out, clean.ref), 4 * kU32 * (1 + max_abs_lse(clean)));
      ASSERT_TRUE(std::isfinite(real.lse));
      for (const Config& c : configs) {
        const std::vector<float> a = merge_row(poisoned, c), b = merge_row(clean, c);
        ASSERT_TRUE(std::isfinite(max_abs_error(a, clean.ref))) << c.name() << " H=" << h;
        ASSERT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0) << c.name();
      }
    }
  }
  // Every rank without keys (attention writes out 0, lse -inf): out 0 and lse -inf, no NaN.
  for (int h : kRanks) {
    Row none;
    none.ranks = h;
    none.head_dim = kHeadDim;
    none.lse.assign(h, -INFINITY);
    none.out.assign(static_cast<size_t>(h) * kHeadDim, 0.0);
    none.ref.assign(kHeadDim, 0.0);
    const State real = cpu_merge(none);
    EXPECT_EQ(real.lse, -INFINITY);
    EXPECT_EQ(max_abs_error(real.out, none.ref), 0.0);
    for (const Config& c : configs) EXPECT_EQ(max_abs_error(merge_row(none, c), none.ref), 0.0);
  }
}

}  // namespace
}  // namespace starattn::merge_study
