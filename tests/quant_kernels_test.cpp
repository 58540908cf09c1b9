// The CPU kernels for weights kept in GGUF blocks (backend/cpu/quant_*.cpp) against the oracle:
// dequantize() (itself checked against the gguf package in gguf_test.cpp) followed by products in
// double. Blocks are random bytes (every bit pattern is a valid block) with random finite fp16
// scales, on odd shapes: rows not a multiple of the kernels' 4-row groups or 16-row chunks, and
// row lengths of an odd number of blocks (GGUF rows are whole blocks: 32 elements, 256 for the
// K-quants). Every kernel build the CPU runs (scalar, AVX2, AVX-VNNI, AVX512-VNNI), 1 and 2
// threads.
//
// The bounds, per output y[r] = sum_i w[r, i] x[i]:
// - Matrix-vector products (Gemv) quantise x in blocks of 32 to x^ = d q with d = max|x| / 127,
//   so |x - x^| <= d / 2 (plus fp32 rounding of x / d). Against the products with x^ itself the
//   kernel's sums are exact in the integers and only fp32 rounding remains: at most
//   gamma * sum_i a_i |x^_i| with gamma = (blocks + 16) * 2^-22, where a_i >= |each term that
//   makes w_i| (a weight is scale * code + offset, so a_i = |w_i| + 2 |offset_i| covers it).
//   Against x: add sum_i |w_i| |x_i - x^_i|.
// - Panels (prefill) round x to x^ as Gemv does, dequantise exactly as dequantize() does and use
//   sgemm: against x^, gamma' = (cols + 16) * 2^-23 times sum_i a_i |x^_i| (the classic bound of
//   a dot product in fp32); against x, the same activation term as Gemv. GemvF32 is the same
//   with x itself.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "backend/cpu/quant_kernels.h"
#include "backend/cpu/quant_matmul.h"
#include "model/ggml_types.h"
#include "model/weights.h"
#include "starattn/error.h"

namespace starattn {
namespace {

using cpu::QuantPath;
using cpu::quant::ActBlock;
using cpu::quant::KernelSet;

struct TypeLayout {
  GgmlType type;
  std::vector<int> f16_fields;  // byte offsets of fp16 scales
  int codes_begin, codes_end;   // the bytes that hold the codes (zero codes give the offset)
};

const std::vector<TypeLayout>& layouts() {
  static const std::vector<TypeLayout> l = {
      {GgmlType::Q8_0, {0}, 2, 34},      {GgmlType::Q4_0, {0}, 2, 18},
      {GgmlType::Q4_1, {0, 2}, 4, 20},   {GgmlType::Q4_K, {0, 2}, 16, 144},
      {GgmlType::Q5_K, {0, 2}, 16, 176}, {GgmlType::Q6_K, {208}, 0, 192},
  };
  return l;
}

const std::vector<const KernelSet*>& kernel_sets() {
  return cpu::quant::runnable_kernel_sets();
}

// A random finite fp16 of magnitude in [2^-6, 2^-3), either sign.
uint16_t random_f16(std::mt19937& rng) {
  const uint32_t sign = rng() & 1, exp = 9 + rng() % 3, mant = rng() & 0x3FF;
  return static_cast<uint16_t>((sign << 15) | (exp << 10) | mant);
}

struct Matrix {
  WeightMatrix w;
  std::vector<float> values;  // dequantize()d [rows, cols]
  std::vector<float> mag;     // a_i = |w_i| + 2 |offset_i|
};

Matrix random_matrix(const TypeLayout& t, int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  const size_t row_bytes = ggml_row_bytes(t.type, cols), block = ggml_block_bytes(t.type);
  std::vector<uint8_t> bytes(row_bytes * rows);
  for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng());
  std::vector<uint8_t> offsets = bytes;  // the same blocks with every code zero
  for (size_t at = 0; at < bytes.size(); at += block) {
    for (int f : t.f16_fields) {
      const uint16_t h = random_f16(rng);
      std::memcpy(&bytes[at + f], &h, 2);
      std::memcpy(&offsets[at + f], &h, 2);
    }
    std::memset(&offsets[at + t.codes_begin], 0, t.codes_end - t.codes_begin);
  }
  Matrix m;
  m.w = WeightMatrix::owned(t.type, rows, cols, bytes);
  m.values = m.w.to_f32();
  const std::vector<float> off = WeightMatrix::owned(t.type, rows, cols, offsets).to_f32();
  m.mag.resize(m.values.size());
  for (size_t i = 0; i < m.values.size(); ++i)
    m.mag[i] = std::abs(m.values[i]) + 2 * std::abs(off[i]);
  return m;
}

std::vector<float> random_x(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = dist(rng);
  return x;
}

// x^ = d q (exactly, in double) of the kernel set's quantisation of each row of x [n, cols].
std::vector<double> quantised(const KernelSet& ks, const std::vector<float>& x, int64_t cols) {
  std::vector<ActBlock> a(x.size() / 32);
  for (size_t r = 0; r < x.size() / cols; ++r)
    ks.quantize_act(x.data() + r * cols, cols, a.data() + r * cols / 32);
  std::vector<double> out(x.size());
  for (size_t b = 0; b < a.size(); ++b)
    for (int i = 0; i < 32; ++i) out[b * 32 + i] = double(a[b].d) * a[b].q[i];
  return out;
}

struct Shape {
  int64_t rows, cols;
  int n;
};

// Runs linear_blocks on every kernel set, thread count and path, and checks every output.
void check_matrix(const TypeLayout& t, const Shape& s, uint32_t seed) {
  const Matrix m = random_matrix(t, s.rows, s.cols, seed);
  const std::vector<float> x = random_x(s.n * s.cols, seed + 1);
  const int saved_threads = omp_get_max_threads();
  for (const KernelSet* ks : kernel_sets()) {
    const std::vector<double> xq = quantised(*ks, x, s.cols);
    for (int threads : {1, 2}) {
      omp_set_num_threads(threads);
      for (QuantPath path : {QuantPath::Gemv, QuantPath::GemvF32, QuantPath::Panel}) {
        std::vector<float> y(static_cast<size_t>(s.n * s.rows), NAN);
        cpu::linear_blocks(x.data(), m.w, y.data(), s.n, path, *ks);
        // Gemv and Panel multiply the 8-bit activations (Panel rounds x as Gemv does, so that
        // the path does not change a result); GemvF32 takes x as it is.
        const bool gemv = path != QuantPath::GemvF32;
        const double gamma = path == QuantPath::Gemv ? (s.cols / 32.0 + 16) * std::ldexp(1.0, -22)
                                                     : (s.cols + 16.0) * std::ldexp(1.0, -23);
        for (int t_ = 0; t_ < s.n; ++t_) {
          for (int64_t r = 0; r < s.rows; ++r) {
            double want = 0, want_q = 0, mag = 0, act = 0;
            for (int64_t i = 0; i < s.cols; ++i) {
              const size_t wi = r * s.cols + i, xi = t_ * s.cols + i;
              const double xv = gemv ? xq[xi] : x[xi];
              want += double(m.values[wi]) * x[xi];
              want_q += double(m.values[wi]) * xv;
              mag += m.mag[wi] * std::abs(xv);
              act += std::abs(double(m.values[wi])) * std::abs(x[xi] - xq[xi]);
            }
            const double got = y[t_ * s.rows + r];
            const auto where = [&] {
              return std::string(ggml_type_name(t.type)) + " " + ks->name + " path " +
                     std::to_string(static_cast<int>(path)) + " threads " +
                     std::to_string(threads) + " [" + std::to_string(s.rows) + ", " +
                     std::to_string(s.cols) + "] n " + std::to_string(s.n) + " at (" +
                     std::to_string(t_) + ", " + std::to_string(r) + ")";
            };
            ASSERT_FALSE(std::isnan(got)) << where();
            ASSERT_LE(std::abs(got - want_q), gamma * mag) << where();
            if (gemv) {
              ASSERT_LE(std::abs(got - want), gamma * mag + act * (1 + 1e-6)) << where();
            }
          }
        }
      }
    }
  }
  omp_set_num_threads(saved_threads);
}

TEST(QuantKernels, ProductsWithinTheFormatsBound) {
  uint32_t seed = 1;
  for (const TypeLayout& t : layouts()) {
    const int64_t blk = ggml_block_elems(t.type);
    // Odd block counts per row, odd row counts; the last shape is large enough (> 2e6
    // multiply-adds) that two threads really share it.
    for (const Shape& s : {Shape{1, blk, 1}, Shape{5, 3 * blk, 3}, Shape{37, 9 * blk, 1},
                           Shape{70, blk == 32 ? 19 * blk : 3 * blk, 5},
                           Shape{333, blk == 32 ? 73 * blk : 9 * blk, 9}})
      check_matrix(t, s, seed++);
  }
}

// The x86 builds differ only in how they form the 8-bit dot products, whose integers are the same
// either way, so their products must agree bit for bit (a wrong VNNI path would part them).
TEST(QuantKernels, X86BuildsAgreeBitForBit) {
  std::vector<const KernelSet*> x86;
  for (const KernelSet* ks : kernel_sets())
    if (ks != &cpu::quant::scalar_kernels()) x86.push_back(ks);
  if (x86.size() < 2) GTEST_SKIP() << "this CPU runs fewer than two x86 kernel builds";
  uint32_t seed = 200;
  for (const TypeLayout& t : layouts()) {
    const int64_t cols = (ggml_block_elems(t.type) == 32 ? 19 : 3) * ggml_block_elems(t.type);
    const int64_t rows = 37;
    const Matrix m = random_matrix(t, rows, cols, seed++);
    const std::vector<float> x = random_x(2 * cols, seed++);
    std::vector<std::vector<float>> y;
    for (const KernelSet* ks : x86) {
      y.emplace_back(2 * rows, NAN);
      cpu::linear_blocks(x.data(), m.w, y.back().data(), 2, QuantPath::Gemv, *ks);
    }
    for (size_t k = 1; k < y.size(); ++k)
      EXPECT_EQ(0, std::memcmp(y[0].data(), y[k].data(), y[0].size() * 4))
          << ggml_type_name(t.type) << ": " << x86[0]->name << " against " << x86[k]->name;
  }
}

TEST(QuantKernels, Bf16Products) {
  std::mt19937 rng(3);
  for (const Shape& s : {Shape{7, 40, 1}, Shape{333, 2056, 9}}) {
    const std::vector<float> v = random_x(s.rows * s.cols, 11);
    const WeightMatrix w = WeightMatrix::bf16_from(v, s.rows, s.cols);
    const std::vector<float> wf = w.to_f32(), x = random_x(s.n * s.cols, 12);
    for (const KernelSet* ks : kernel_sets()) {
      for (QuantPath path : {QuantPath::Gemv, QuantPath::Panel}) {
        std::vector<float> y(static_cast<size_t>(s.n * s.rows), NAN);
        cpu::linear_blocks(x.data(), w, y.data(), s.n, path, *ks);
        for (int t = 0; t < s.n; ++t)
          for (int64_t r = 0; r < s.rows; ++r) {
            double want = 0, mag = 0;
            for (int64_t i = 0; i < s.cols; ++i) {
              want += double(wf[r * s.cols + i]) * x[t * s.cols + i];
              mag += std::abs(double(wf[r * s.cols + i]) * x[t * s.cols + i]);
            }
            ASSERT_LE(std::abs(y[t * s.rows + r] - want),
                      (s.cols + 16) * std::ldexp(1.0, -23) * mag)
                << ks->name << " row " << r;
          }
      }
    }
  }
}

TEST(QuantKernels, PanelsDequantiseExactlyAsTheReference) {
  uint32_t seed = 100;
  for (const TypeLayout& t : layouts()) {
    const int64_t cols = 3 * ggml_block_elems(t.type), rows = 7;
    const Matrix m = random_matrix(t, rows, cols, seed++);
    for (const KernelSet* ks : kernel_sets()) {
      std::vector<float> out(rows * cols, NAN);
      ks->of(t.type)->dequantize(m.w.data(), m.w.row_bytes(), cols, out.data(), rows);
      EXPECT_EQ(0, std::memcmp(out.data(), m.values.data(), out.size() * 4))
          << ggml_type_name(t.type) << " " << ks->name;
    }
  }
}

TEST(QuantKernels, ActivationQuantisation) {
  std::vector<float> x = random_x(32 * 6, 5);
  for (int i = 0; i < 32; ++i) x[32 + i] = 0.0f;                         // an all-zero block
  for (int i = 0; i < 32; ++i) x[64 + i] = (i % 2 ? 1 : -1) * 0.5f * i;  // both signs, a zero
  x[128 + 3] = NAN;                                                      // NaN reaches the output
  x[160 + 7] = INFINITY;
  std::vector<std::vector<ActBlock>> got;
  for (const KernelSet* ks : kernel_sets()) {
    std::vector<ActBlock> a(6);
    ks->quantize_act(x.data(), 192, a.data());
    for (int b = 0; b < 4; ++b) {
      float amax = 0;
      int sum[2] = {0, 0};
      for (int i = 0; i < 32; ++i) amax = std::max(amax, std::abs(x[32 * b + i]));
      EXPECT_EQ(a[b].d, amax / 127.0f) << ks->name;
      for (int i = 0; i < 32; ++i) {
        EXPECT_LE(std::abs(a[b].q[i]), 127);
        EXPECT_LE(std::abs(x[32 * b + i] - double(a[b].d) * a[b].q[i]), a[b].d * 0.5 * (1 + 1e-6))
            << ks->name << " block " << b << " element " << i;
        sum[i / 16] += a[b].q[i];
      }
      EXPECT_EQ(a[b].sum[0], sum[0]);
      EXPECT_EQ(a[b].sum[1], sum[1]);
      EXPECT_EQ(a[b].dsum, a[b].d * static_cast<float>(sum[0] + sum[1]));
    }
    EXPECT_TRUE(std::isnan(a[4].d) && std::isnan(a[5].d)) << ks->name;
    got.push_back(a);
  }
  // The builds agree bit for bit, so their products differ only in fp32 summation order.
  for (size_t k = 1; k < got.size(); ++k)
    for (int b = 0; b < 4; ++b)
      EXPECT_EQ(0, std::memcmp(&got[0][b], &got[k][b], sizeof(ActBlock))) << "block " << b;

  // A NaN in x gives NaN outputs, as the fp32 product would.
  const Matrix m = random_matrix(layouts()[0], 3, 192, 9);
  for (const KernelSet* ks : kernel_sets()) {
    std::vector<float> y(3, 0.0f);
    cpu::linear_blocks(x.data(), m.w, y.data(), 1, QuantPath::Gemv, *ks);
    for (float v : y) EXPECT_TRUE(std::isnan(v)) << ks->name;
  }
}

TEST(QuantKernels, TypesWithoutKernelsAreRefused) {
  const WeightMatrix w = WeightMatrix::owned(GgmlType::Q5_0, 1, 32, std::vector<uint8_t>(22));
  std::vector<float> x(32), y(1);
  try {
    cpu::linear_blocks(x.data(), w, y.data(), 1);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Q5_0"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace starattn
