// The KV formats (attention/kv_format.h). FP8 E4M3: conversions against PyTorch's float8_e4m3fn
// (tests/fixtures/fp8, written by tools/make_fp8_fixtures.py), the quantise-dequantise error
// against the bound E4M3's 3 mantissa bits give, attention over fp8 rows against attention over
// the same rows dequantised, and the KV cache's fp8 rows. bf16: the CPU cache's rounding and
// attention over its rows.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "attention/kv_format.h"
#include "backend/cpu/attention_cpu.h"
#include "backend/cpu/cpu_backend.h"
#include "engine/kv_cache.h"
#include "model/ggml_types.h"
#include "model/loader.h"
#include "starattn/error.h"
#include "test_util.h"

namespace starattn {
namespace {

// tests/fixtures/fp8/e4m3.bin (format in tools/make_fp8_fixtures.py).
struct Fp8Fixture {
  std::vector<float> x;
  std::vector<uint8_t> q;
  std::vector<float> table;
  int rows = 0, heads = 0, head_dim = 0;
  std::vector<float> row_x, row_scale;
  std::vector<uint8_t> row_q;
};

Fp8Fixture load_fixture() {
  std::ifstream f(test::fixture("fp8/e4m3.bin"), std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(f)),
                                std::istreambuf_iterator<char>());
  size_t at = 0;
  auto take = [&](void* dst, size_t n) {
    SA_CHECK(at + n <= bytes.size(), "fp8 fixture truncated");
    std::memcpy(dst, bytes.data() + at, n);
    at += n;
  };
  auto u32 = [&] {
    uint32_t v;
    take(&v, 4);
    return v;
  };
  char magic[4];
  take(magic, 4);
  SA_CHECK(std::memcmp(magic, "SAF8", 4) == 0 && u32() == 1, "not an fp8 fixture");
  Fp8Fixture fx;
  const uint32_t n = u32();
  fx.x.resize(n);
  fx.q.resize(n);
  take(fx.x.data(), 4 * n);
  take(fx.q.data(), n);
  fx.table.resize(256);
  take(fx.table.data(), 4 * 256);
  fx.rows = static_cast<int>(u32());
  fx.heads = static_cast<int>(u32());
  fx.head_dim = static_cast<int>(u32());
  const size_t vals = static_cast<size_t>(fx.rows) * fx.heads * fx.head_dim;
  fx.row_x.resize(vals);
  fx.row_scale.resize(static_cast<size_t>(fx.rows) * fx.heads);
  fx.row_q.resize(vals);
  take(fx.row_x.data(), 4 * vals);
  take(fx.row_scale.data(), 4 * fx.row_scale.size());
  take(fx.row_q.data(), vals);
  SA_CHECK(at == bytes.size(), "fp8 fixture has trailing bytes");
  return fx;
}

TEST(Fp8, ConversionMatchesTorch) {
  const Fp8Fixture fx = load_fixture();
  ASSERT_GT(fx.x.size(), 2000u);
  int wrong = 0;
  for (size_t i = 0; i < fx.x.size(); ++i) {
    const uint8_t got = fp8_e4m3_from_float(fx.x[i]);
    if (got != fx.q[i] && ++wrong <= 10)
      ADD_FAILURE() << "e4m3(" << fx.x[i] << " = 0x" << std::hex << std::bit_cast<uint32_t>(fx.x[i])
                    << ") = 0x" << int{got} << ", torch 0x" << int{fx.q[i]};
  }
  EXPECT_EQ(wrong, 0);
}

TEST(Fp8, DecodeTableMatchesTorch) {
  const Fp8Fixture fx = load_fixture();
  for (int b = 0; b < 256; ++b) {
    const float got = fp8_e4m3_to_float(static_cast<uint8_t>(b));
    if (std::isnan(fx.table[b])) {
      EXPECT_TRUE(std::isnan(got)) << b;
    } else {
      EXPECT_EQ(std::bit_cast<uint32_t>(got), std::bit_cast<uint32_t>(fx.table[b])) << b;
    }
  }
}

TEST(Fp8, RowsMatchTorch) {
  const Fp8Fixture fx = load_fixture();
  const KvRowFormat f{KvType::Fp8, fx.heads, fx.head_dim, 4};
  const size_t rb = f.row_bytes();
  EXPECT_EQ(rb, static_cast<size_t>(fx.heads * fx.head_dim + 16));  // 4 scales, 16 aligned
  std::vector<uint8_t> out(fx.rows * rb, 0xAB);
  quantize_kv_rows_fp8(f, fx.row_x.data(), fx.rows, out.data());
  int wrong = 0;
  for (int j = 0; j < fx.rows; ++j) {
    const uint8_t* row = out.data() + j * rb;
    for (int e = 0; e < fx.heads * fx.head_dim; ++e)
      wrong += row[e] != fx.row_q[static_cast<size_t>(j) * fx.heads * fx.head_dim + e];
    for (int h = 0; h < fx.heads; ++h) {
      float s;
      std::memcpy(&s, row + f.scale_offset() + 4 * h, 4);
      EXPECT_EQ(std::bit_cast<uint32_t>(s),
                std::bit_cast<uint32_t>(fx.row_scale[static_cast<size_t>(j) * fx.heads + h]))
          << "row " << j << " head " << h;
    }
    for (size_t b = f.scale_offset() + 4 * fx.heads; b < rb; ++b)
      EXPECT_EQ(row[b], 0) << "padding byte " << b << " of row " << j;
  }
  EXPECT_EQ(wrong, 0);
}

TEST(Fp8, NanAndSaturation) {
  EXPECT_EQ(fp8_e4m3_from_float(std::nanf("")), 0x7F);
  EXPECT_EQ(fp8_e4m3_from_float(-std::nanf("")), 0x7F);
  EXPECT_EQ(fp8_e4m3_from_float(INFINITY), 0x7E);
  EXPECT_EQ(fp8_e4m3_from_float(-INFINITY), 0xFE);
  EXPECT_EQ(fp8_e4m3_to_float(0x7E), 448.0f);
  // A NaN in a head is ignored by its scale: the other values keep their precision.
  const float x[4] = {1.0f, std::nanf(""), -2.0f, 0.5f};
  EXPECT_EQ(fp8_head_scale(x, 4), 2.0f / 448.0f);
  const float zeros[3] = {0.0f, -0.0f, 0.0f};
  EXPECT_EQ(fp8_head_scale(zeros, 3), 0.0f);
}

// Quantises [rows, heads, d] and dequantises it back.
std::vector<float> round_trip(const KvRowFormat& f, const std::vector<float>& x, int64_t rows,
                              std::vector<float>* scales) {
  std::vector<uint8_t> q(rows * f.row_bytes());
  quantize_kv_rows_fp8(f, x.data(), rows, q.data());
  std::vector<float> back(x.size()), head(static_cast<size_t>(rows) * f.head_dim);
  scales->assign(static_cast<size_t>(rows) * f.n_kv_heads, 0.0f);
  for (int h = 0; h < f.n_kv_heads; ++h) {
    dequantize_fp8_head(q.data(), static_cast<int64_t>(f.row_bytes()), f.scale_offset(), h,
                        f.head_dim, rows, head.data());
    for (int64_t j = 0; j < rows; ++j) {
      std::memcpy(&(*scales)[j * f.n_kv_heads + h],
                  q.data() + j * f.row_bytes() + f.scale_offset() + 4 * h, 4);
      for (int e = 0; e < f.head_dim; ++e)
        back[(j * f.n_kv_heads + h) * f.head_dim + e] = head[j * f.head_dim + e];
    }
  }
  return back;
}

// |x - x'| <= 2^-4 |x| + 2^-10 s (kv_format.h): E4M3 keeps 3 mantissa bits, so rounding to
// nearest moves a normal value by at most half a step, 2^-4 of its binade's bottom; below 2^-6 s
// (subnormals) the step is 2^-9 s. The fp32 division and product add a few ulps (2^-21 |x|).
void check_bound(const std::vector<float>& x, int rows, int heads, int d, const char* what,
                 double* tightness) {
  const KvRowFormat f{KvType::Fp8, heads, d, 4};
  std::vector<float> s;
  const std::vector<float> back = round_trip(f, x, rows, &s);
  double worst = 0;  // the largest error as a fraction of the bound
  double err2 = 0, ref2 = 0;
  for (int j = 0; j < rows; ++j)
    for (int h = 0; h < heads; ++h)
      for (int e = 0; e < d; ++e) {
        const size_t i = (static_cast<size_t>(j) * heads + h) * d + e;
        const double ax = std::fabs(x[i]), err = std::fabs(static_cast<double>(back[i]) - x[i]);
        const double bound =
            std::ldexp(ax, -4) + std::ldexp(s[j * heads + h], -10) + std::ldexp(ax, -21);
        ASSERT_LE(err, bound) << what << ": x " << x[i] << " back " << back[i] << " scale "
                              << s[j * heads + h];
        worst = std::max(worst, err / bound);
        err2 += err * err, ref2 += ax * ax;
      }
  *tightness = worst;
  // Relative L2 error: uniform rounding error in a 3-bit mantissa is about 2^-4 / sqrt(3) of a
  // value at its binade's bottom, less on average; 0.04 leaves room for the subnormals.
  EXPECT_LT(std::sqrt(err2 / ref2), 0.04) << what;
}

TEST(Fp8, RoundTripWithinE4m3Bound) {
  std::mt19937 rng(7);
  const int rows = 300, heads = 4, d = 128;
  std::vector<float> x(static_cast<size_t>(rows) * heads * d);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& v : x) v = normal(rng);
  double tight = 0;
  check_bound(x, rows, heads, d, "gaussian", &tight);
  // The bound is nearly reached (values just above 1.0625 * 2^e lose 1/17 of themselves).
  EXPECT_GT(tight, 0.9);

  // Outliers: a few channels 100x larger (as keys often have), a heavy-tailed head, and single
  // values 1e4 times the rest. The per-head scale follows the outlier; small values then fall
  // among the subnormals, and the bound's second term covers them.
  std::student_t_distribution<float> heavy(1.5f);
  for (int j = 0; j < rows; ++j)
    for (int h = 0; h < heads; ++h)
      for (int e = 0; e < d; ++e) {
        float& v = x[(static_cast<size_t>(j) * heads + h) * d + e];
        v = h == 1 ? heavy(rng) : normal(rng);
        if (e == 3 || e == 77) v *= 100.0f;
        if (h == 2 && e == j % d) v = 1e4f;
      }
  check_bound(x, rows, heads, d, "outliers", &tight);
}

// Attention over fp8 or int8 rows == attention over the same rows dequantised to fp32 (in any
// chunking: only the order of the P V sums differs), and differs from unquantised attention by a
// little.
TEST(Fp8, AttentionReadsRowsAsDequantised) {
  struct Case {
    int n_q, n_kv, n_heads, n_kv_heads, d;
    bool causal;
    int offset;
  };
  for (KvType type : {KvType::Fp8, KvType::Int8})
    for (const Case& c : {Case{5, 2500, 8, 2, 64, false, 0}, Case{37, 1100, 4, 4, 32, true, 1063},
                          Case{1, 3, 8, 1, 16, false, 0}, Case{130, 130, 6, 3, 128, true, 0}}) {
      std::mt19937 rng(c.n_kv);
      std::normal_distribution<float> normal(0.0f, 1.0f);
      const KvRowFormat f{type, c.n_kv_heads, c.d, 4};
      const int kvd = c.n_kv_heads * c.d, qd = c.n_heads * c.d;
      std::vector<float> q(static_cast<size_t>(c.n_q) * qd), k(static_cast<size_t>(c.n_kv) * kvd),
          v(k.size());
      for (float& x : q) x = normal(rng);
      for (float& x : k) x = 2 * normal(rng);
      for (float& x : v) x = normal(rng);
      std::vector<float> s, kd, vd;
      std::vector<uint8_t> k8(c.n_kv * f.row_bytes()), v8(k8.size());
      if (type == KvType::Fp8) {
        kd = round_trip(f, k, c.n_kv, &s), vd = round_trip(f, v, c.n_kv, &s);
        quantize_kv_rows_fp8(f, k.data(), c.n_kv, k8.data());
        quantize_kv_rows_fp8(f, v.data(), c.n_kv, v8.data());
      } else {
        kd = k, vd = v;
        round_kv_rows_int8_grid(kd.data(), c.n_kv, c.n_kv_heads, c.d, c.d);
        round_kv_rows_int8_grid(vd.data(), c.n_kv, c.n_kv_heads, c.d, c.d);
        quantize_kv_rows_int8(f, k.data(), c.n_kv, k8.data());
        quantize_kv_rows_int8(f, v.data(), c.n_kv, v8.data());
      }

      auto attend = [&](const void* kk, const void* vv, bool fp8, std::vector<float>* lse) {
        std::vector<float> out(q.size(), NAN);
        lse->assign(static_cast<size_t>(c.n_q) * c.n_heads, NAN);
        AttnParams p;
        p.q = q.data();
        p.k = kk;
        p.v = vv;
        p.out = out.data();
        p.lse = lse->data();
        p.n_q = c.n_q;
        p.n_kv = c.n_kv;
        p.n_heads = c.n_heads;
        p.n_kv_heads = c.n_kv_heads;
        p.head_dim = c.d;
        p.q_stride = p.out_stride = qd;
        p.kv_stride = fp8 ? f.stride_elements() : kvd;
        p.kv_type = fp8 ? type : KvType::Act;
        p.kv_scale_offset = fp8 ? f.scale_offset() : 0;
        p.scale = 1.0f / std::sqrt(static_cast<float>(c.d));
        p.causal = c.causal;
        p.causal_offset = c.offset;
        attention_cpu(p);
        return out;
      };
      std::vector<float> lse8, lse_d, lse_x;
      const std::vector<float> o8 = attend(k8.data(), v8.data(), true, &lse8);
      const std::vector<float> od = attend(kd.data(), vd.data(), false, &lse_d);
      const std::vector<float> ox = attend(k.data(), v.data(), false, &lse_x);
      const std::string what = std::string(kv_type_name(type)) + " n_q " + std::to_string(c.n_q) +
                               " n_kv " + std::to_string(c.n_kv);
      EXPECT_LT(test::rel_l2(o8, od), 1e-5) << what;
      EXPECT_LT(test::rel_l2(lse8, lse_d), 1e-6) << what;
      // Against the unquantised keys and values: the error of the inputs (fp8: rel 0.02-0.04; int8
      // less) moves the output by about as much, and not zero (the rows are in effect).
      const double drift = test::rel_l2(o8, ox);
      EXPECT_LT(drift, 0.08) << what;
      EXPECT_GT(drift, 1e-3) << what;
    }
}

TEST(Fp8, AttentionRefusesRowsTooShortForTheirScales) {
  std::vector<float> q(16, 1.0f), out(16);
  std::vector<uint8_t> kv(64);
  AttnParams p;
  p.q = q.data();
  p.k = kv.data();
  p.v = kv.data();
  p.out = out.data();
  p.n_q = 1;
  p.n_kv = 2;
  p.n_heads = p.n_kv_heads = 1;
  p.head_dim = 16;
  p.q_stride = p.out_stride = 16;
  p.kv_type = KvType::Fp8;
  p.kv_stride = 16;  // the data only: no room for the scale
  p.kv_scale_offset = 16;
  p.scale = 0.25f;
  EXPECT_THROW(attention_cpu(p), Error);
}

// A model shape for the caches' tests (no weights: only KV layouts and attention are used):
// 2 layers, 4 query and 2 kv heads of 8.
Model tiny_kv_model() {
  Model m;
  ModelConfig& c = m.config;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 8;
  c.d_model = 32;
  c.vocab_size = 16;
  return m;
}

TEST(Fp8, KvCacheQuantisesOnWriteAndCopiesRowsAsTheyAre) {
  Model m = tiny_kv_model();
  const ModelConfig& c = m.config;
  CpuBackend b(m.config, m.weights);
  const int kvd = c.kv_dim(), n = 5;
  KvCache act(b, c.n_layers, kvd, 16, 0, KvType::Act);
  KvCache fp8(b, c.n_layers, kvd, 16, 0, KvType::Fp8);
  EXPECT_EQ(act.row_bytes(), static_cast<size_t>(kvd) * 4);
  EXPECT_EQ(fp8.row_bytes(), static_cast<size_t>(kvd) + 16);
  EXPECT_EQ(kv_bytes_for_rows(b, 1000, KvType::Fp8), size_t{2} * 2 * 1000 * (kvd + 16));
  EXPECT_EQ(kv_bytes_for_rows(b, 1000, KvType::Act), size_t{2} * 2 * 1000 * kvd * 4);

  std::vector<float> k(n * kvd), v(n * kvd);
  for (int i = 0; i < n * kvd; ++i) k[i] = std::sin(0.3f * i) * 3, v[i] = std::cos(0.7f * i);
  fp8.write(1, 2, n, k.data(), v.data());
  const KvRowFormat f = b.kv_row_format(KvType::Fp8);
  std::vector<uint8_t> want(n * f.row_bytes());
  quantize_kv_rows_fp8(f, k.data(), n, want.data());
  EXPECT_EQ(std::memcmp(fp8.k_row(1, 2), want.data(), want.size()), 0);
  quantize_kv_rows_fp8(f, v.data(), n, want.data());
  EXPECT_EQ(std::memcmp(fp8.v_row(1, 2), want.data(), want.size()), 0);

  // put_rows: another cache's rows go in unchanged (no second rounding).
  KvCache other(b, c.n_layers, kvd, 8, 0, KvType::Fp8);
  other.put_rows(0, 1, n, fp8.k_row(1, 2), fp8.v_row(1, 2));
  EXPECT_EQ(std::memcmp(other.k_row(0, 1), fp8.k_row(1, 2), n * f.row_bytes()), 0);
  EXPECT_EQ(std::memcmp(other.v_row(0, 1), fp8.v_row(1, 2), n * f.row_bytes()), 0);
  EXPECT_THROW(other.put_rows(0, 4, n, fp8.k_row(1, 2), fp8.v_row(1, 2)), Error);  // past capacity
}

TEST(Fp8, KvTypeNames) {
  EXPECT_EQ(parse_kv_type("bf16"), KvType::Bf16);
  EXPECT_EQ(parse_kv_type("fp8"), KvType::Fp8);
  EXPECT_EQ(parse_kv_type("f32"), KvType::F32);
  EXPECT_STREQ(kv_type_name(KvType::Fp8), "fp8");
  EXPECT_STREQ(kv_type_name(KvType::Bf16), "bf16");
  EXPECT_STREQ(kv_type_name(KvType::F32), "f32");
  EXPECT_STREQ(kv_type_name(KvType::Act), "act");
  EXPECT_EQ(parse_kv_type("int8"), KvType::Int8);
  EXPECT_STREQ(kv_type_name(KvType::Int8), "int8");
  EXPECT_THROW(parse_kv_type("int4"), Error);
  EXPECT_THROW(parse_kv_type("act"), Error);
  EXPECT_THROW(parse_kv_type(nullptr), Error);
}

// The nearest bf16 of x, ties to even, found without fp32_to_bf16's bit tricks: the two bf16
// values around x (truncation and one step up) and the one closer to x in double.
uint16_t nearest_bf16(float x) {
  const uint32_t u = std::bit_cast<uint32_t>(x);
  const uint16_t lo = static_cast<uint16_t>(u >> 16), hi = static_cast<uint16_t>(lo + 1);
  const double a = std::abs(double(x) - double(std::bit_cast<float>(uint32_t{lo} << 16)));
  const double b = std::abs(double(x) - double(std::bit_cast<float>(uint32_t{hi} << 16)));
  if (a != b) return a < b ? lo : hi;
  return (lo & 1) ? hi : lo;
}

// The CPU's bf16 cache (the CLI's default): F32 is its fp32 cache, Bf16 rows hold the nearest
// bf16 of each value, rows move as they are, and attention reads them as those values.
TEST(KvBf16, CpuCacheRoundsOnWriteAndAttentionReadsTheRoundedValues) {
  Model m = tiny_kv_model();
  const ModelConfig& c = m.config;
  CpuBackend b(m.config, m.weights);
  const int kvd = c.kv_dim(), n = 1300;                       // past one 1024-row conversion chunk
  EXPECT_EQ(b.kv_row_format(KvType::F32).type, KvType::Act);  // fp32 is the CPU's own type
  EXPECT_EQ(b.kv_row_format(KvType::Bf16).type, KvType::Bf16);
  KvCache bf(b, c.n_layers, kvd, n + 4, 0, KvType::Bf16);
  EXPECT_EQ(bf.row_bytes(), static_cast<size_t>(kvd) * 2);
  EXPECT_EQ(kv_bytes_for_rows(b, 1000, KvType::Bf16), size_t{2} * 2 * 1000 * kvd * 2);
  EXPECT_EQ(kv_bytes_for_rows(b, 1000, KvType::F32), kv_bytes_for_rows(b, 1000, KvType::Act));

  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> k(n * kvd), v(n * kvd), q(7 * c.n_heads * c.head_dim);
  for (float& x : k) x = 3 * normal(rng);
  for (float& x : v) x = normal(rng);
  for (float& x : q) x = normal(rng);
  k[7] = std::bit_cast<float>(0x3F808000u);  // halfway between two bf16 values: to even (down)
  k[8] = std::bit_cast<float>(0x3F818000u);  // halfway, odd below: up
  v[3] = NAN;
  bf.write(1, 2, n, k.data(), v.data());
  std::vector<float> kr(k.size()), vr(v.size());
  const auto* kb = static_cast<const uint16_t*>(bf.k_row(1, 2));
  const auto* vb = static_cast<const uint16_t*>(bf.v_row(1, 2));
  for (size_t i = 0; i < k.size(); ++i) {
    ASSERT_EQ(kb[i], nearest_bf16(k[i])) << "k[" << i << "] = " << k[i];
    if (i != 3) {
      ASSERT_EQ(vb[i], nearest_bf16(v[i])) << "v[" << i << "] = " << v[i];
    }
    kr[i] = bf16_to_fp32(kb[i]);
    vr[i] = bf16_to_fp32(vb[i]);
  }
  EXPECT_TRUE(std::isnan(vr[3]));
  vr[3] = v[3] = 0.0f;
  bf.write(1, 2, 1, k.data(), v.data());  // the row again, without the NaN

  // Attention over the bf16 rows == over fp32 rows of the rounded values, in either path: 7 query
  // rows (tasks of a head and a block of rows, the keys converted in two chunks), then 2 and 1
  // (tasks of a kv head and a split of 512 keys, three splits merged). Only sum order differs.
  for (int n_q : {7, 2, 1}) {
    auto attend = [&](const void* kk, const void* vv, KvType t) {
      std::vector<float> out(static_cast<size_t>(n_q) * c.n_heads * c.head_dim, NAN);
      const KvRowFormat f = b.kv_row_format(t);
      AttnParams p = kv_attn_params(c, f, q.data(), kk, vv, out.data(), nullptr, n_q, n);
      p.causal = true;
      p.causal_offset = n - n_q;
      attention_cpu(p);
      return out;
    };
    const std::vector<float> got = attend(bf.k_row(1, 2), bf.v_row(1, 2), KvType::Bf16);
    const std::vector<float> want = attend(kr.data(), vr.data(), KvType::Act);
    EXPECT_LT(test::rel_l2(got, want), 1e-6) << n_q << " query rows";
    const std::vector<float> exact = attend(k.data(), v.data(), KvType::Act);
    EXPECT_GT(test::rel_l2(got, exact), 1e-5) << "the bf16 rows are in effect";
  }
}

// ---- the int8-grid experiment (STARATTN_KV_EXPERIMENT) ----

TEST(KvInt8Grid, ParsesOnlyWhatItDocuments) {
  EXPECT_EQ(parse_kv_int8_grid(nullptr, 128), 0);
  EXPECT_EQ(parse_kv_int8_grid("", 128), 0);
  EXPECT_EQ(parse_kv_int8_grid("int8", 128), 128);
  EXPECT_EQ(parse_kv_int8_grid("int8", 64), 64);
  EXPECT_EQ(parse_kv_int8_grid("int8:32", 128), 32);
  EXPECT_EQ(parse_kv_int8_grid("int8:8", 64), 8);
  for (const char* bad : {"int4", "INT8", "int8:", "int8:0", "int8:12", "int8:256", "int8:-8",
                          "int8:32x", "int8:99999999", " int8"})
    EXPECT_THROW(parse_kv_int8_grid(bad, 128), Error) << bad;
  EXPECT_THROW(parse_kv_int8_grid("int8:128", 64), Error) << "a group wider than the head";
}

// What a symmetric int8 quantiser must give: every value on its group's grid k * amax / 127 with
// |k| <= 127, within half a step of the input, the group's largest kept, zeros kept, groups
// independent of each other, and rounding twice the same as once.
TEST(KvInt8Grid, RowsLandOnTheirGroupsGrid) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int rows = 40, heads = 3, d = 64;
  for (int group : {8, 32, 64}) {
    SCOPED_TRACE("group " + std::to_string(group));
    std::vector<float> x(static_cast<size_t>(rows) * heads * d);
    for (size_t i = 0; i < x.size(); ++i) x[i] = normal(rng) * (i % 17 == 0 ? 50.0f : 1.0f);
    for (int e = 0; e < d; ++e) x[e] = 0.0f;  // row 0, head 0: all zeros
    std::vector<float> y = x;
    round_kv_rows_int8_grid(y.data(), rows, heads, d, group);
    for (size_t g0 = 0; g0 < x.size(); g0 += group) {
      float amax = 0.0f;
      for (int e = 0; e < group; ++e) amax = std::max(amax, std::fabs(x[g0 + e]));
      const float step = amax / 127.0f;
      for (int e = 0; e < group; ++e) {
        const float in = x[g0 + e], out = y[g0 + e];
        if (amax == 0.0f) {
          ASSERT_EQ(out, 0.0f);
          continue;
        }
        const float k = out / step;
        ASSERT_NEAR(k, std::round(k), 1e-3f) << "off the grid at " << g0 + e;
        ASSERT_LE(std::fabs(std::round(k)), 127.0f);
        ASSERT_LE(std::fabs(out - in), 0.5f * step * (1 + 1e-5f)) << "at " << g0 + e;
        if (std::fabs(in) == amax) {
          ASSERT_NEAR(std::fabs(out), amax, amax * 1e-6f);
        }
      }
    }
    // Twice: the same steps again, up to the last bit of a scale recomputed from a rounded amax.
    std::vector<float> twice = y;
    round_kv_rows_int8_grid(twice.data(), rows, heads, d, group);
    for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(twice[i], y[i], 1e-6f * 50 * 5) << i;
    // An outlier in one group moves no other group's values.
    std::vector<float> z = x;
    z[5 * group + 1] = 1e6f;
    round_kv_rows_int8_grid(z.data(), rows, heads, d, group);
    for (size_t i = 0; i < z.size(); ++i) {
      if (i / group != 5) {
        ASSERT_EQ(z[i], y[i]) << i;
      }
    }
  }
  // A worked case: amax 1 gives steps of 1/127; 0.3 is 38.1 steps, so 38/127.
  std::vector<float> w(8, 0.0f);
  w[0] = 1.0f, w[1] = 0.3f, w[2] = -0.5f;
  round_kv_rows_int8_grid(w.data(), 1, 1, 8, 8);
  EXPECT_FLOAT_EQ(w[1], 38.0f / 127.0f);
  EXPECT_FLOAT_EQ(w[2], -64.0f / 127.0f);  // -63.5 steps: ties go to even
}

// The CPU backend applies the experiment to its fp32 and bf16 rows and leaves fp8 rows alone.
TEST(KvInt8Grid, CpuBackendRoundsRowsAsTheyAreWritten) {
  Model m = tiny_kv_model();
  const ModelConfig& c = m.config;
  CpuBackend b(m.config, m.weights);
  const int n = 3, kvd = static_cast<int>(c.kv_dim());
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> k(static_cast<size_t>(n) * kvd), v(k.size());
  for (float& x : k) x = normal(rng);
  for (float& x : v) x = normal(rng);
  std::vector<float> want_k = k, want_v = v;
  round_kv_rows_int8_grid(want_k.data(), n, c.n_kv_heads, c.head_dim, c.head_dim);
  round_kv_rows_int8_grid(want_v.data(), n, c.n_kv_heads, c.head_dim, c.head_dim);

  ASSERT_EQ(setenv("STARATTN_KV_EXPERIMENT", "int8", 1), 0);
  KvCache f32(b, c.n_layers, c.kv_dim(), 8, 0, KvType::F32);
  KvCache bf(b, c.n_layers, c.kv_dim(), 8, 0, KvType::Bf16);
  KvCache f8(b, c.n_layers, c.kv_dim(), 8, 0, KvType::Fp8);
  f32.write(0, 1, n, k.data(), v.data());
  bf.write(0, 1, n, k.data(), v.data());
  f8.write(0, 1, n, k.data(), v.data());
  ASSERT_EQ(setenv("STARATTN_KV_EXPERIMENT", "int4", 1), 0);
  EXPECT_THROW(f32.write(0, 1, n, k.data(), v.data()), Error);
  unsetenv("STARATTN_KV_EXPERIMENT");

  const auto* kf = static_cast<const float*>(f32.k_row(0, 1));
  const auto* vf = static_cast<const float*>(f32.v_row(0, 1));
  EXPECT_EQ(std::vector<float>(kf, kf + k.size()), want_k);
  EXPECT_EQ(std::vector<float>(vf, vf + v.size()), want_v);
  const auto* kb = static_cast<const uint16_t*>(bf.k_row(0, 1));
  for (size_t i = 0; i < k.size(); ++i) ASSERT_EQ(kb[i], fp32_to_bf16(want_k[i])) << i;
  std::vector<uint8_t> want8(static_cast<size_t>(n) * f8.row_bytes());
  quantize_kv_rows_fp8(b.kv_row_format(KvType::Fp8), k.data(), n, want8.data());
  const auto* k8 = static_cast<const uint8_t*>(f8.k_row(0, 1));
  EXPECT_EQ(std::vector<uint8_t>(k8, k8 + want8.size()), want8);
}

// Int8 rows read back exactly as the int8 grid of a head's values (kv_format.h): codes within
// -127..127 with the head's largest at +-127, the scale amax / 127, zero padding, and NaN kept.
TEST(KvInt8, RowsReadBackAsTheGrid) {
  const KvRowFormat f{KvType::Int8, 3, 64, 4};
  EXPECT_EQ(f.row_bytes(), size_t{208});
  EXPECT_EQ(f.scale_offset(), 192);
  const int n = 50, kvd = static_cast<int>(f.kv_dim());
  std::mt19937 rng(21);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n) * kvd);
  for (size_t i = 0; i < x.size(); ++i) x[i] = normal(rng) * (i % 64 == 5 ? 30.0f : 1.0f);
  for (int e = 0; e < 64; ++e) x[static_cast<size_t>(kvd) + 64 + e] = 0.0f;  // row 1, head 1
  x[2 * kvd + 7] = std::nanf("");                                            // row 2, head 0
  std::vector<uint8_t> rows(n * f.row_bytes(), 0xAB);
  quantize_kv_rows_int8(f, x.data(), n, rows.data());
  std::vector<float> grid = x;
  round_kv_rows_int8_grid(grid.data(), n, 3, 64, 64);
  for (int h = 0; h < 3; ++h) {
    std::vector<float> back(static_cast<size_t>(n) * 64);
    dequantize_int8_head(rows.data(), f.row_bytes(), f.scale_offset(), h, 64, n, back.data());
    for (int j = 0; j < n; ++j) {
      const uint8_t* row = rows.data() + j * f.row_bytes();
      const auto* codes = reinterpret_cast<const int8_t*>(row + h * 64);
      int largest = 0;
      for (int e = 0; e < 64; ++e) {
        const float want = grid[static_cast<size_t>(j) * kvd + h * 64 + e];
        const float got = back[static_cast<size_t>(j) * 64 + e];
        if (j == 2 && h == 0 && e == 7) {
          EXPECT_EQ(codes[e], -128);
          EXPECT_TRUE(std::isnan(got));
          continue;
        }
        ASSERT_EQ(got, want) << "row " << j << " head " << h << " value " << e;  // -0 == 0
        ASSERT_GE(codes[e], -127);
        largest = std::max(largest, std::abs(int{codes[e]}));
      }
      EXPECT_EQ(largest, j == 1 && h == 1 ? 0 : 127) << "row " << j << " head " << h;
    }
  }
  for (int j = 0; j < n; ++j)
    for (size_t b = 192 + 12; b < 208; ++b) ASSERT_EQ(rows[j * f.row_bytes() + b], 0) << j;
  // An infinite value makes its head unreadable, never finite and wrong.
  std::vector<float> inf(kvd, 1.0f);
  inf[70] = INFINITY;
  quantize_kv_rows_int8(f, inf.data(), 1, rows.data());
  std::vector<float> back(64);
  dequantize_int8_head(rows.data(), f.row_bytes(), f.scale_offset(), 1, 64, 1, back.data());
  for (float v : back) EXPECT_TRUE(std::isnan(v));
  dequantize_int8_head(rows.data(), f.row_bytes(), f.scale_offset(), 0, 64, 1, back.data());
  for (float v : back) EXPECT_EQ(v, 1.0f);
}

// The CPU backend stores int8 rows as quantize_kv_rows_int8 makes them, and reports their size.
TEST(KvInt8, CpuCacheQuantisesOnWrite) {
  Model m = tiny_kv_model();
  const ModelConfig& c = m.config;
  CpuBackend b(m.config, m.weights);
  const int n = 4, kvd = static_cast<int>(c.kv_dim());
  KvCache i8(b, c.n_layers, c.kv_dim(), 8, 0, KvType::Int8);
  EXPECT_EQ(i8.row_bytes(), static_cast<size_t>(kvd) + 16);
  EXPECT_EQ(kv_bytes_for_rows(b, 1000, KvType::Int8), kv_bytes_for_rows(b, 1000, KvType::Fp8));
  std::vector<float> k(static_cast<size_t>(n) * kvd), v(k.size());
  for (size_t i = 0; i < k.size(); ++i) k[i] = std::sin(0.3f * i) * 3, v[i] = std::cos(0.7f * i);
  i8.write(1, 2, n, k.data(), v.data());
  std::vector<uint8_t> want(n * i8.row_bytes());
  const KvRowFormat f = b.kv_row_format(KvType::Int8);
  quantize_kv_rows_int8(f, v.data(), n, want.data());
  const auto* got = static_cast<const uint8_t*>(i8.v_row(1, 2));
  EXPECT_EQ(std::vector<uint8_t>(got, got + want.size()), want);
}

}  // namespace
}  // namespace starattn
