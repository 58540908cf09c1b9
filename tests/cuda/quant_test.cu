// The CUDA kernels for weights kept in GGUF blocks (backend/cuda/quant_gemv.h, Gemm's tiles of
// dequantised rows) against their CPU twin: the CPU's dequantize() (checked against the gguf
// package in gguf_test.cpp) and an fp32 product on the host. Blocks are random bytes with random
// finite fp16 scales, odd shapes (feature counts that are not multiples of a block's 8 warps or a
// tile, rows of odd block counts), outputs poisoned with NaN before each launch; NaN never passes.
// Both sides see the same bf16 x and the same weight values, so fp32 outputs agree to fp32
// summation order (1e-4 relative) and bf16 outputs to bf16 rounding (1e-2). The GEMV's twin is
// the CPU's own 8-bit-activation kernel (quant_kernels.h), with the same quantised x; each of its
// outputs is also checked against the fp32 product within the activations' rounding bound.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/ops.h"
#include "backend/cpu/quant_kernels.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/gemv.h"
#include "backend/cuda/memory_plan.h"
#include "backend/cuda/quant_gemv.h"
#include "cuda/cuda_test_util.h"
#include "model/weights.h"
#include "test_util.h"

namespace starattn {
namespace {

using bf16 = __nv_bfloat16;
using test::DevBuf;
constexpr double kF32Tol = 1e-4, kBf16Tol = 1e-2;
constexpr GgmlType kTypes[] = {GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q4_K};

// Byte offsets of each type's fp16 scales.
std::vector<int> f16_fields(GgmlType t) {
  if (t == GgmlType::Q4_1 || t == GgmlType::Q4_K) return {0, 2};
  return {0};
}

// [rows, cols] random blocks with fp16 scales of magnitude in [2^-9, 2^-6), either sign.
WeightMatrix random_blocks(GgmlType t, int64_t rows, int64_t cols, std::mt19937& rng) {
  const size_t block = ggml_block_bytes(t);
  std::vector<uint8_t> bytes(ggml_row_bytes(t, cols) * rows);
  for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng());
  for (size_t at = 0; at < bytes.size(); at += block)
    for (int f : f16_fields(t)) {
      const uint16_t h =
          static_cast<uint16_t>(((rng() & 1) << 15) | ((6 + rng() % 3) << 10) | (rng() & 0x3FF));
      std::memcpy(&bytes[at + f], &h, 2);
    }
  return WeightMatrix::owned(t, rows, cols, std::move(bytes));
}

struct Shape {
  int out, blocks;  // features, blocks per row
};
constexpr Shape kShapes[] = {{37, 3}, {501, 5}, {1024, 16}};

int64_t cols_of(GgmlType t, const Shape& s) {
  return s.blocks * ggml_block_elems(t);
}

// The GEMV's 8-bit activation scratch, poisoned: every byte it reads must first be written.
DevBuf<uint8_t>& act_scratch() {
  static DevBuf<uint8_t> buf(std::vector<uint8_t>(cuda::kGemvActScratchBytes, 0xFF));
  return buf;
}

cuda::LinearParams params(const WeightMatrix& w, const DevBuf<uint8_t>& dw, const DevBuf<bf16>& dx,
                          int n) {
  cuda::LinearParams p;
  p.act_scratch = act_scratch().get();
  p.x = dx.get();
  p.x_stride = w.cols();
  p.wq = dw.get();
  p.wq_type = w.type();
  p.wq_row_bytes = static_cast<int64_t>(w.row_bytes());
  p.y_stride = w.rows();
  p.n = n;
  p.in = static_cast<int>(w.cols());
  p.out = static_cast<int>(w.rows());
  return p;
}

std::vector<uint8_t> bytes_of(const WeightMatrix& w) {
  return std::vector<uint8_t>(w.data(), w.data() + w.bytes());
}

// The CPU twin: x[n, cols] (already bf16 values) times the dequantised weights, in fp32.
std::vector<float> cpu_product(const std::vector<float>& x, const std::vector<float>& w, int n,
                               int64_t rows, int64_t cols) {
  std::vector<float> y(static_cast<size_t>(n * rows));
  cpu::linear(x.data(), w.data(), nullptr, y.data(), n, static_cast<int>(cols),
              static_cast<int>(rows));
  return y;
}

// The CPU twin of the GEMV: x[n, cols] quantised per 32 (quantize_act), then gemv_q8, both from
// the scalar kernel set.
std::vector<float> cpu_q8_product(const WeightMatrix& w, const std::vector<float>& x, int n) {
  const auto& k = cpu::quant::scalar_kernels();
  const int64_t cols = w.cols(), rows = w.rows();
  std::vector<cpu::quant::ActBlock> act(static_cast<size_t>(cols / 32));
  std::vector<float> y(static_cast<size_t>(n * rows));
  for (int i = 0; i < n; ++i) {
    k.quantize_act(x.data() + i * cols, cols, act.data());
    k.of(w.type())->gemv_q8(w.data(), w.row_bytes(), act.data(), cols, y.data() + i * rows, rows);
  }
  return y;
}

// Each output of the 8-bit-activation product against the fp32 one: the activations' rounding
// moves it by at most sum_j |w_oj| d_j / 2 (d_j = max|x| / 127 over j's block), plus fp32 slack.
void expect_within_act_rounding(const std::vector<float>& got, const std::vector<float>& exact,
                                const std::vector<float>& x, const std::vector<float>& wf, int n,
                                int64_t rows, int64_t cols, const std::string& what) {
  for (int i = 0; i < n; ++i) {
    std::vector<double> half_step(static_cast<size_t>(cols));
    for (int64_t b = 0; b < cols; b += 32) {
      double amax = 0;
      for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(double{x[i * cols + b + j]}));
      for (int j = 0; j < 32; ++j) half_step[b + j] = amax / 127 / 2;
    }
    for (int64_t o = 0; o < rows; ++o) {
      double bound = 0, mag = 0;
      for (int64_t j = 0; j < cols; ++j) {
        bound += std::fabs(double{wf[o * cols + j]}) * half_step[j];
        mag += std::fabs(double{wf[o * cols + j]} * x[i * cols + j]);
      }
      const size_t at = static_cast<size_t>(i * rows + o);
      ASSERT_LE(std::fabs(double{got[at]} - exact[at]), bound * 1.001 + 1e-5 * mag)
          << what << " row " << i << " feature " << o;
    }
  }
}

TEST(CudaQuant, GemvAgainstTheCpu) {
  SA_REQUIRE_GPU();
  std::mt19937 rng(1);
  for (GgmlType t : kTypes) {
    for (const Shape& s : kShapes) {
      const WeightMatrix w = random_blocks(t, s.out, cols_of(t, s), rng);
      const std::vector<float> wf = w.to_f32();
      DevBuf<uint8_t> dw(bytes_of(w));
      for (int n : {1, 3, 8}) {
        const std::vector<float> x =
            test::bf16_round(test::random_vec(static_cast<size_t>(n * w.cols()), rng));
        DevBuf<bf16> dx(test::to_bf16(x));
        const std::vector<float> want = cpu_q8_product(w, x, n);
        cuda::LinearParams p = params(w, dw, dx, n);
        ASSERT_TRUE(cuda::gemv_supported(p));
        const std::string what = std::string(ggml_type_name(t)) + " " + std::to_string(n) + "x" +
                                 std::to_string(w.cols()) + "->" + std::to_string(w.rows());
        DevBuf<float> yf(want.size());
        p.y_f32 = yf.get();
        cuda::gemv(p, nullptr);
        EXPECT_LT(test::rel_l2(yf.host(), want), kF32Tol) << what;
        expect_within_act_rounding(yf.host(), cpu_product(x, wf, n, w.rows(), w.cols()), x, wf, n,
                                   w.rows(), w.cols(), what);
        DevBuf<bf16> yb(want.size());
        p.y_f32 = nullptr;
        p.y_bf16 = yb.get();
        cuda::gemv(p, nullptr);
        EXPECT_LT(test::rel_l2(test::to_float(yb.host()), want), kBf16Tol) << what << " bf16";
        // y += x W^T into an fp32 residual stream.
        const std::vector<float> r = test::random_vec(want.size(), rng);
        DevBuf<float> acc(r);
        p.y_bf16 = nullptr;
        p.y_f32 = acc.get();
        p.accumulate = true;
        cuda::gemv(p, nullptr);
        std::vector<float> want_acc = r;
        cpu::add_inplace(want_acc.data(), want.data(), static_cast<int64_t>(want.size()));
        EXPECT_LT(test::rel_l2(acc.host(), want_acc), kF32Tol) << what << " accumulate";
      }
    }
  }
}

TEST(CudaQuant, GemvSwigluAgainstTheCpu) {
  SA_REQUIRE_GPU();
  std::mt19937 rng(2);
  for (GgmlType t : kTypes) {
    const int f = 333;
    const WeightMatrix w = random_blocks(t, 2 * f, 3 * ggml_block_elems(t), rng);
    const std::vector<float> wf = w.to_f32();
    DevBuf<uint8_t> dw(bytes_of(w));
    for (int n : {1, 5}) {
      const std::vector<float> x =
          test::bf16_round(test::random_vec(static_cast<size_t>(n * w.cols()), rng));
      DevBuf<bf16> dx(test::to_bf16(x));
      const std::vector<float> gu = test::bf16_round(cpu_q8_product(w, x, n));
      std::vector<float> want(static_cast<size_t>(n) * f);
      for (int i = 0; i < n; ++i)
        for (int j = 0; j < f; ++j) {
          const float g = gu[i * 2 * f + j], u = gu[i * 2 * f + f + j];
          want[i * f + j] = g / (1.0f + std::exp(-g)) * u;
        }
      DevBuf<bf16> y(want.size());
      cuda::LinearParams p = params(w, dw, dx, n);
      p.y_bf16 = y.get();
      p.y_stride = f;
      cuda::gemv_swiglu(p, nullptr);
      EXPECT_LT(test::rel_l2(test::to_float(y.host()), want), kBf16Tol)
          << ggml_type_name(t) << " n " << n;
    }
  }
}

TEST(CudaQuant, ManyRowsThroughDequantisedTiles) {
  SA_REQUIRE_GPU();
  std::mt19937 rng(3);
  SA_CUDA(cudaSetDevice(0));
  cuda::Gemm gemm(nullptr);
  for (GgmlType t : kTypes) {
    for (const Shape& s : kShapes) {
      const WeightMatrix w = random_blocks(t, s.out, cols_of(t, s), rng);
      // The GEMM sees the weights rounded to bf16; so does the twin.
      const std::vector<float> wf = test::bf16_round(w.to_f32());
      DevBuf<uint8_t> dw(bytes_of(w));
      // Tiles of 64 rows: several per matrix, the last one partial.
      gemm.set_dequant_scratch_bytes(static_cast<size_t>(w.cols()) * 2 * 100);
      for (int n : {9, 37, 501}) {
        const std::vector<float> x =
            test::bf16_round(test::random_vec(static_cast<size_t>(n * w.cols()), rng));
        DevBuf<bf16> dx(test::to_bf16(x));
        const std::vector<float> want = cpu_product(x, wf, n, w.rows(), w.cols());
        cuda::LinearParams p = params(w, dw, dx, n);
        const std::vector<float> r = test::random_vec(want.size(), rng);
        DevBuf<float> acc(r);
        p.y_f32 = acc.get();
        p.accumulate = true;
        gemm.linear(p);
        std::vector<float> want_acc = r;
        cpu::add_inplace(want_acc.data(), want.data(), static_cast<int64_t>(want.size()));
        EXPECT_LT(test::rel_l2(acc.host(), want_acc), kF32Tol)
            << ggml_type_name(t) << " " << n << "x" << w.cols() << "->" << w.rows();
        DevBuf<bf16> yb(want.size());
        p.y_f32 = nullptr;
        p.accumulate = false;
        p.y_bf16 = yb.get();
        gemm.linear(p);
        EXPECT_LT(test::rel_l2(test::to_float(yb.host()), want), kBf16Tol) << ggml_type_name(t);
      }
    }
  }
}

TEST(CudaQuant, DequantisationAndEmbeddingAreExact) {
  SA_REQUIRE_GPU();
  std::mt19937 rng(4);
  for (GgmlType t : kTypes) {
    const int vocab = 77, d = static_cast<int>(3 * ggml_block_elems(t));
    const WeightMatrix w = random_blocks(t, vocab, d, rng);
    const std::vector<float> wf = w.to_f32();
    DevBuf<uint8_t> dw(bytes_of(w));
    // Rows 5..40 to bf16: the CPU's values rounded to bf16, bit for bit.
    DevBuf<bf16> rows(static_cast<size_t>(36) * d);
    cuda::dequantize_rows(t, dw.get(), static_cast<int64_t>(w.row_bytes()), 5, 36, d, rows.get(),
                          nullptr);
    const std::vector<float> got = test::to_float(rows.host());
    for (size_t i = 0; i < got.size(); ++i)
      ASSERT_EQ(got[i], test::bf16_value(test::bf16_bits(wf[5 * d + i])))
          << ggml_type_name(t) << " " << i;
    // Embedding rows in fp32, exactly; an id outside the vocabulary gives NaN.
    const std::vector<int> tok = {3, 76, 0, 3, vocab};
    DevBuf<int> dtok(tok);
    DevBuf<float> out(tok.size() * d);
    cuda::EmbeddingQuantParams e;
    e.tokens = dtok.get();
    e.table = dw.get();
    e.type = t;
    e.row_bytes = static_cast<int64_t>(w.row_bytes());
    e.out = out.get();
    e.n = static_cast<int>(tok.size());
    e.d = d;
    e.vocab = vocab;
    cuda::embedding_quant(e, nullptr);
    const std::vector<float> emb = out.host();
    for (int i = 0; i + 1 < e.n; ++i)
      for (int j = 0; j < d; ++j)
        ASSERT_EQ(emb[i * d + j], wf[tok[i] * d + j]) << ggml_type_name(t) << " token " << i;
    for (int j = 0; j < d; ++j) ASSERT_TRUE(std::isnan(emb[4 * d + j]));
  }
}

TEST(CudaQuant, RandomBlocksAreFiniteWithTheIntendedSpread) {
  SA_REQUIRE_GPU();
  for (GgmlType t : kTypes) {
    const int64_t rows = 64, cols = 4096, blocks = rows * cols / ggml_block_elems(t);
    DevBuf<uint8_t> d(ggml_row_bytes(t, cols) * rows);
    cuda::random_blocks(t, d.get(), blocks, 42, nullptr);
    const std::vector<float> v = WeightMatrix::owned(t, rows, cols, d.host()).to_f32();
    double sum = 0, sq = 0;
    for (float x : v) {
      ASSERT_TRUE(std::isfinite(x));
      sum += x;
      sq += double(x) * x;
    }
    const double mean = sum / v.size(), sd = std::sqrt(sq / v.size() - mean * mean);
    EXPECT_GT(sd, 0.01) << ggml_type_name(t);
    EXPECT_LT(sd, 0.04) << ggml_type_name(t);
  }
}

TEST(CudaQuant, MemoryPlanCountsTheRealSize) {
  const ModelConfig c = [] {
    ModelConfig m;
    m.n_layers = 2;
    m.d_model = 512;
    m.n_heads = 8;
    m.n_kv_heads = 2;
    m.head_dim = 64;
    m.d_ffn = 1536;
    m.vocab_size = 1000;
    return m;
  }();
  cuda::WeightTypes q;
  q.tok_embd = q.output = GgmlType::Q8_0;
  q.layers.assign(2, {GgmlType::Q4_K, GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::Q4_1});
  const cuda::WeightLayout bf = cuda::weight_layout(c), ql = cuda::weight_layout(c, q);
  EXPECT_FALSE(bf.quantised);
  EXPECT_TRUE(ql.quantised);
  const size_t d = 512, qkv = 512 + 2 * 128, f = 1536;
  const size_t matrices = 2 * 1000 * d / 32 * 34 + 2 * (qkv * d / 256 * 144 + d * 512 / 32 * 18 +
                                                        2 * f * d / 256 * 144 + d * f / 32 * 20);
  const size_t norms = (d + 2 * 2 * d) * 4;
  EXPECT_GE(ql.total, matrices + norms);
  EXPECT_LE(ql.total, matrices + norms + 256 * 16);  // alignment of each piece
  EXPECT_LT(ql.total * 3, bf.total);
  EXPECT_EQ(cuda::memory_need(c, ql.total, 0, 1, 2048, true).workspace -
                cuda::memory_need(c, ql.total, 0, 1, 2048, false).workspace,
            cuda::kDequantScratchBytes);
}

}  // namespace
}  // namespace starattn
