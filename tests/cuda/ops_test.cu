// Every op of the CUDA backend against its CPU twin (backend/cpu/ops.h) on random
// inputs with odd sizes (1, 3, 37, 501 tokens; widths that are not tile multiples), outputs
// poisoned with NaN before each launch, bf16 tolerances (rel L2 <= 1e-2); NaN never passes.
// Argmax: argmax_test.cu.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <utility>
#include <vector>

#include "attention/kv_format.h"
#include "backend/cpu/ops.h"
#include "backend/cuda/elementwise.h"
#include "backend/cuda/embedding.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/gemv.h"
#include "backend/cuda/memory_plan.h"
#include "backend/cuda/random_fill.h"
#include "backend/cuda/rmsnorm.h"
#include "backend/cuda/rope.h"
#include "cuda/cuda_test_util.h"
#include "engine/engine_memory.h"
#include "model/config.h"
#include "model/rope_freq.h"
#include "test_util.h"

namespace starattn {
namespace {

using bf16 = __nv_bfloat16;
using test::DevBuf;
constexpr int kTokens[] = {1, 3, 37, 501};
constexpr double kBf16Tol = 1e-2;

ModelConfig rope_config(int head_dim, bool llama3) {
  ModelConfig c;
  c.head_dim = head_dim;
  c.rope_theta = 500000.0f;
  if (llama3) {
    c.rope_scaling.llama3 = true;
    c.rope_scaling.factor = 8.0f;
    c.rope_scaling.low_freq_factor = 1.0f;
    c.rope_scaling.high_freq_factor = 4.0f;
    c.rope_scaling.original_max_positions = 8192;
  }
  return c;
}

TEST(CudaOps, Embedding) {
  SA_REQUIRE_GPU();
  std::mt19937 rng(1);
  for (int d : {37, 576}) {
    const int vocab = 1001;
    const std::vector<float> table = test::bf16_round(test::random_vec(size_t{1} * vocab * d, rng));
    DevBuf<bf16> dt(test::to_bf16(table));
    for (int n : kTokens) {
      std::vector<int> tok(n);
      for (int& t : tok) t = static_cast<int>(rng() % vocab);
      tok[0] = vocab - 1;
      DevBuf<int> dtok(tok);
      DevBuf<float> out(size_t{1} * n * d);
      cuda::embedding({dtok.get(), dt.get(), out.get(), n, d, vocab}, nullptr);
      const std::vector<float> got = out.host();
      std::vector<float> want(got.size());
      for (int i = 0; i < n; ++i)
        std::copy_n(table.begin() + int64_t{tok[i]} * d, d, want.begin() + int64_t{i} * d);
      EXPECT_EQ(test::rel_l2(got, want), 0.0) << "n " << n << " d " << d;
    }
  }
  // An id outside the vocabulary gives NaN, which no comparison lets through.
  DevBuf<bf16> dt(std::vector<bf16>(8 * 4, test::to_bf16(1.0f)));
  DevBuf<int> bad(std::vector<int>{8});
  DevBuf<float> out(4);
  cuda::embedding({bad.get(), dt.get(), out.get(), 1, 4, 8}, nullptr);
  EXPECT_TRUE(std::isnan(out.host()[0]));
}

TEST(CudaOps, RmsNorm) {
  SA_REQUIRE_GPU();
  std::mt19937 rng(2);
  for (int d : {37, 64, 100, 4096}) {
    const std::vector<float> w = test::random_vec(d, rng, 0.1f, 1.0f);
    DevBuf<float> dw(w);
    for (int n : kTokens) {
      const std::vector<float> x = test::random_vec(size_t{1} * n * d, rng, 3.0f);
      std::vector<float> want(x.size());
      cpu::rmsnorm(x.data(), w.data(), want.data(), n, d, 1e-5f);
      DevBuf<float> dx(x);
      DevBuf<bf16> yb(x.size());
      DevBuf<float> yf(x.size());
      cuda::RmsNormParams p;
      p.x = dx.get();
      p.w = dw.get();
      p.y_bf16 = yb.get();
      p.n = n;
      p.d = d;
      p.eps = 1e-5f;
      cuda::rmsnorm(p, nullptr);
      EXPECT_LT(test::rel_l2(test::to_float(yb.host()), want), kBf16Tol) << n << "x" << d;
      p.y_bf16 = nullptr;
      p.y_f32 = yf.get();
      cuda::rmsnorm(p, nullptr);
      EXPECT_LT(test::rel_l2(yf.host(), want), 1e-5) << n << "x" << d;
      // In place (the final norm runs so).
      p.y_f32 = dx.get();
      cuda::rmsnorm(p, nullptr);
      EXPECT_LT(test::rel_l2(dx.host(), want), 1e-5) << n << "x" << d << " in place";
    }
  }
}

TEST(CudaOps, RopeTable) {
  SA_REQUIRE_GPU();
  std::mt19937 rng(3);
  const ModelConfig c = rope_config(128, true);
  const std::vector<float> inv = rope_inv_freq(c);
  DevBuf<float> dinv(inv);
  for (int n : kTokens) {
    std::vector<int> pos(n);
    for (int& p : pos) p = static_cast<int>(rng() % (1u << 20));
    pos[0] = 0;
    const cpu::RopeTable want = cpu::rope_table(inv, pos.data(), n);
    DevBuf<int> dpos(pos);
    DevBuf<float> dc(want.cos.size()), ds(want.sin.size());
    cuda::rope_table({dpos.get(), dinv.get(), dc.get(), ds.get(), n, 64}, nullptr);
    const std::vector<float> gc = dc.host(), gs = ds.host();
    double worst = 0;
    for (size_t i = 0; i < gc.size(); ++i)
      worst = std::max({worst, std::fabs(double{gc[i]} - want.cos[i]),
                        std::fabs(double{gs[i]} - want.sin[i]), std::isnan(gc[i]) ? 1.0 : 0.0});
    EXPECT_LE(worst, 1e-6) << "n " << n;
  }
}

TEST(CudaOps, QkvBiasRopeSplit) {
  SA_REQUIRE_GPU();
  std::mt19937 rng(4);
  struct Shape {
    int heads, kv_heads, hd;
  };
  for (Shape s : {Shape{8, 1, 64}, Shape{8, 2, 128}, Shape{3, 1, 12}, Shape{4, 4, 16}}) {
    for (bool bias : {false, true}) {
      const ModelConfig c = rope_config(s.hd, true);
      const std::vector<float> inv = rope_inv_freq(c);
      DevBuf<float> dinv(inv);
      const int q = s.heads * s.hd, kv = s.kv_heads * s.hd, w = q + 2 * kv;
      const std::vector<float> b = test::random_vec(w, rng, 0.5f);
      DevBuf<float> db(b);
      for (int n : kTokens) {
        const std::vector<float> qkv = test::bf16_round(test::random_vec(size_t{1} * n * w, rng));
        std::vector<int> pos(n);
        for (int& p : pos) p = static_cast<int>(rng() % 200000);
        // CPU: bias in fp32, split, rotate.
        std::vector<float> wq(size_t{1} * n * q), wk(size_t{1} * n * kv), wv(size_t{1} * n * kv);
        for (int i = 0; i < n; ++i)
          for (int j = 0; j < w; ++j) {
            const float x = qkv[size_t{1} * i * w + j] + (bias ? b[j] : 0.0f);
            if (j < q) {
              wq[size_t{1} * i * q + j] = x;
            } else if (j < q + kv) {
              wk[size_t{1} * i * kv + j - q] = x;
            } else {
              wv[size_t{1} * i * kv + j - q - kv] = x;
            }
          }
        const cpu::RopeTable t = cpu::rope_table(inv, pos.data(), n);
        cpu::apply_rope(wq.data(), t, n, s.heads, s.hd);
        cpu::apply_rope(wk.data(), t, n, s.kv_heads, s.hd);

        DevBuf<bf16> dqkv(test::to_bf16(qkv));
        DevBuf<int> dpos(pos);
        DevBuf<float> dc(t.cos.size()), ds(t.sin.size());
        DevBuf<bf16> dq(wq.size()), dk(wk.size()), dv(wv.size());
        cuda::rope_table({dpos.get(), dinv.get(), dc.get(), ds.get(), n, s.hd / 2}, nullptr);
        cuda::QkvRopeParams p;
        p.qkv = dqkv.get();
        p.qkv_stride = w;
        p.bias = bias ? db.get() : nullptr;
        p.cos = dc.get();
        p.sin = ds.get();
        p.q = dq.get();
        p.k = dk.get();
        p.v = dv.get();
        p.n = n;
        p.n_heads = s.heads;
        p.n_kv_heads = s.kv_heads;
        p.head_dim = s.hd;
        cuda::qkv_rope(p, nullptr);
        const std::string what = "heads " + std::to_string(s.heads) + "/" +
                                 std::to_string(s.kv_heads) + " hd " + std::to_string(s.hd) +
                                 " n " + std::to_string(n) + " bias " + std::to_string(bias);
        EXPECT_LT(test::rel_l2(test::to_float(dq.host()), wq), kBf16Tol) << "q " << what;
        EXPECT_LT(test::rel_l2(test::to_float(dk.host()), wk), kBf16Tol) << "k " << what;
        EXPECT_LT(test::rel_l2(test::to_float(dv.host()), wv), kBf16Tol) << "v " << what;
      }
    }
  }
}

TEST(CudaOps, Swiglu) {
  SA_REQUIRE_GPU();
  std::mt19937 rng(5);
  for (int f : {37, 256, 1537}) {
    for (int n : kTokens) {
      const std::vector<float> gu =
          test::bf16_round(test::random_vec(size_t{2} * n * f, rng, 2.0f));
      std::vector<float> gate(size_t{1} * n * f), up(gate.size());
      for (int i = 0; i < n; ++i)
        for (int j = 0; j < f; ++j) {
          gate[size_t{1} * i * f + j] = gu[size_t{2} * i * f + j];
          up[size_t{1} * i * f + j] = gu[size_t{2} * i * f + f + j];
        }
      cpu::swiglu(gate.data(), up.data(), static_cast<int64_t>(gate.size()));
      DevBuf<bf16> dgu(test::to_bf16(gu));
      DevBuf<bf16> out(gate.size());
      cuda::swiglu({dgu.get(), 2 * f, out.get(), n, f}, nullptr);
      EXPECT_LT(test::rel_l2(test::to_float(out.host()), gate), kBf16Tol) << n << "x" << f;
    }
  }
}

TEST(CudaOps, BiasAddAndResidualAdd) {
  SA_REQUIRE_GPU();
  std::mt19937 rng(6);
  for (int m : {1, 37, 576}) {
    for (int n : kTokens) {
      const std::vector<float> y = test::bf16_round(test::random_vec(size_t{1} * n * m, rng));
      const std::vector<float> b = test::random_vec(m, rng);
      std::vector<float> want = y;
      for (int i = 0; i < n; ++i)
        for (int j = 0; j < m; ++j) want[size_t{1} * i * m + j] += b[j];
      DevBuf<bf16> dy(test::to_bf16(y));
      DevBuf<float> db(b);
      cuda::bias_add({dy.get(), m, db.get(), n, m}, nullptr);
      EXPECT_LT(test::rel_l2(test::to_float(dy.host()), want), kBf16Tol) << n << "x" << m;

      const std::vector<float> x = test::random_vec(y.size(), rng);
      std::vector<float> xs = x;
      cpu::add_inplace(xs.data(), y.data(), static_cast<int64_t>(y.size()));
      DevBuf<float> dx(x);
      DevBuf<bf16> dy2(test::to_bf16(y));
      cuda::residual_add({dx.get(), dy2.get(), static_cast<int64_t>(y.size())}, nullptr);
      EXPECT_LT(test::rel_l2(dx.host(), xs), 1e-6) << n << "x" << m;
    }
  }
}

TEST(CudaOps, LinearBf16OutAndFp32Accumulate) {
  SA_REQUIRE_GPU();
  std::mt19937 rng(7);
  SA_CUDA(cudaSetDevice(0));
  cuda::Gemm gemm(nullptr);
  struct Shape {
    int in, out;
  };
  for (Shape s : {Shape{100, 37}, Shape{576, 1536}, Shape{4096, 1024}}) {
    const std::vector<float> w =
        test::bf16_round(test::random_vec(size_t{1} * s.out * s.in, rng, 0.05f));
    DevBuf<bf16> dw(test::to_bf16(w));
    for (int n : kTokens) {
      const std::vector<float> x = test::bf16_round(test::random_vec(size_t{1} * n * s.in, rng));
      std::vector<float> want(size_t{1} * n * s.out);
      cpu::linear(x.data(), w.data(), nullptr, want.data(), n, s.in, s.out);
      DevBuf<bf16> dx(test::to_bf16(x));
      DevBuf<bf16> yb(want.size());
      cuda::LinearParams p;
      p.x = dx.get();
      p.x_stride = s.in;
      p.w = dw.get();
      p.y_bf16 = yb.get();
      p.y_stride = s.out;
      p.n = n;
      p.in = s.in;
      p.out = s.out;
      gemm.linear(p);
      const std::string what =
          std::to_string(n) + "x" + std::to_string(s.in) + "->" + std::to_string(s.out);
      EXPECT_LT(test::rel_l2(test::to_float(yb.host()), want), kBf16Tol) << what;

      // y += x · W^T into an fp32 residual stream.
      const std::vector<float> r = test::random_vec(want.size(), rng);
      DevBuf<float> yf(r);
      p.y_bf16 = nullptr;
      p.y_f32 = yf.get();
      p.accumulate = true;
      gemm.linear(p);
      std::vector<float> want_acc = r;
      cpu::add_inplace(want_acc.data(), want.data(), static_cast<int64_t>(want.size()));
      EXPECT_LT(test::rel_l2(yf.host(), want_acc), 1e-3) << what << " accumulate";
    }
  }
}

// The decode GEMV for 1..8 rows against the CPU and against cuBLAS, bf16 and fp32-accumulate
// outputs, odd output counts, strided input rows.
TEST(CudaOps, GemvForFewRows) {
  SA_REQUIRE_GPU();
  std::mt19937 rng(10);
  SA_CUDA(cudaSetDevice(0));
  cuda::Gemm gemm(nullptr);
  struct Shape {
    int in, out;
  };
  for (Shape s : {Shape{72, 131}, Shape{2048, 3001}, Shape{4096, 1027}, Shape{14336, 509}}) {
    const std::vector<float> w =
        test::bf16_round(test::random_vec(size_t{1} * s.out * s.in, rng, 0.05f));
    DevBuf<bf16> dw(test::to_bf16(w));
    for (int n = 1; n <= cuda::kGemvMaxRows; ++n) {
      const int64_t xs = s.in + 8;  // strided rows
      std::vector<float> x = test::bf16_round(test::random_vec(size_t{1} * n * xs, rng));
      std::vector<float> xc(size_t{1} * n * s.in);
      for (int i = 0; i < n; ++i) std::copy_n(x.begin() + i * xs, s.in, xc.begin() + i * s.in);
      std::vector<float> want(size_t{1} * n * s.out);
      cpu::linear(xc.data(), w.data(), nullptr, want.data(), n, s.in, s.out);
      DevBuf<bf16> dx(test::to_bf16(x));
      cuda::LinearParams p;
      p.x = dx.get();
      p.x_stride = xs;
      p.w = dw.get();
      p.y_stride = s.out;
      p.n = n;
      p.in = s.in;
      p.out = s.out;
      ASSERT_TRUE(cuda::gemv_supported(p));
      DevBuf<bf16> yb(want.size()), yc(want.size());
      p.y_bf16 = yb.get();
      cuda::gemv(p, nullptr);
      p.y_bf16 = yc.get();
      gemm.linear_cublas(p);
      const std::string what =
          std::to_string(n) + "x" + std::to_string(s.in) + "->" + std::to_string(s.out);
      const std::vector<float> got = test::to_float(yb.host());
      EXPECT_LT(test::rel_l2(got, want), kBf16Tol) << what;
      EXPECT_LT(test::rel_l2(got, test::to_float(yc.host())), kBf16Tol) << what << " vs cuBLAS";

      const std::vector<float> r = test::random_vec(want.size(), rng);
      DevBuf<float> yf(r);
      p.y_bf16 = nullptr;
      p.y_f32 = yf.get();
      p.accumulate = true;
      cuda::gemv(p, nullptr);
      std::vector<float> want_acc = r;
      cpu::add_inplace(want_acc.data(), want.data(), static_cast<int64_t>(want.size()));
      EXPECT_LT(test::rel_l2(yf.host(), want_acc), 1e-5) << what << " accumulate";
    }
  }
  cuda::LinearParams odd;  // in not a multiple of 8: cuBLAS takes it
  odd.n = 1;
  odd.in = 100;
  odd.x_stride = 100;
  EXPECT_FALSE(cuda::gemv_supported(odd));
}

// The decode FFN's fused gate/up GEMV + SwiGLU against the CPU (linear, then swiglu) and against
// the unfused gemv() + swiglu(); outputs poisoned so an unwritten element fails.
TEST(CudaOps, GemvSwigluForFewRows) {
  SA_REQUIRE_GPU();
  std::mt19937 rng(12);
  SA_CUDA(cudaSetDevice(0));
  struct Shape {
    int in, f;
  };
  for (Shape s : {Shape{72, 37}, Shape{2048, 1501}, Shape{4096, 14336}}) {
    const int out = 2 * s.f;
    const std::vector<float> w =
        test::bf16_round(test::random_vec(size_t{1} * out * s.in, rng, 0.05f));
    DevBuf<bf16> dw(test::to_bf16(w));
    for (int n : {1, 2, 5, cuda::kGemvMaxRows}) {
      const std::vector<float> x = test::bf16_round(test::random_vec(size_t{1} * n * s.in, rng));
      std::vector<float> gu(size_t{1} * n * out), gate(size_t{1} * n * s.f), up(gate.size());
      cpu::linear(x.data(), w.data(), nullptr, gu.data(), n, s.in, out);
      for (int i = 0; i < n; ++i)
        for (int j = 0; j < s.f; ++j) {
          gate[size_t{1} * i * s.f + j] =
              test::bf16_value(test::bf16_bits(gu[size_t{1} * i * out + j]));
          up[size_t{1} * i * s.f + j] =
              test::bf16_value(test::bf16_bits(gu[size_t{1} * i * out + s.f + j]));
        }
      cpu::swiglu(gate.data(), up.data(), static_cast<int64_t>(gate.size()));
      DevBuf<bf16> dx(test::to_bf16(x));
      cuda::LinearParams p;
      p.x = dx.get();
      p.x_stride = s.in;
      p.w = dw.get();
      p.n = n;
      p.in = s.in;
      p.out = out;
      DevBuf<bf16> fused(test::to_bf16(std::vector<float>(gate.size(), NAN)));
      p.y_bf16 = fused.get();
      p.y_stride = s.f;
      cuda::gemv_swiglu(p, nullptr);
      DevBuf<bf16> dgu(gu.size()), unfused(gate.size());
      p.y_bf16 = dgu.get();
      p.y_stride = out;
      cuda::gemv(p, nullptr);
      cuda::swiglu({dgu.get(), out, unfused.get(), n, s.f}, nullptr);
      const std::string what =
          std::to_string(n) + "x" + std::to_string(s.in) + "->2x" + std::to_string(s.f);
      const std::vector<float> got = test::to_float(fused.host());
      EXPECT_LT(test::rel_l2(got, gate), kBf16Tol) << what;
      EXPECT_LT(test::rel_l2(got, test::to_float(unfused.host())), 1e-3) << what << " vs unfused";
    }
  }
}

TEST(CudaOps, RandomFill) {
  SA_REQUIRE_GPU();
  const int64_t n = 1 << 20;
  DevBuf<bf16> a(n), b(n), c(n);
  cuda::RandomFillParams p;
  p.count = n;
  p.half_width = 0.02f * std::sqrt(3.0f);
  p.seed = 42;
  p.x_bf16 = a.get();
  cuda::random_fill(p, nullptr);
  p.x_bf16 = b.get();
  cuda::random_fill(p, nullptr);
  p.seed = 43;
  p.x_bf16 = c.get();
  cuda::random_fill(p, nullptr);
  const std::vector<float> va = test::to_float(a.host()), vb = test::to_float(b.host()),
                           vc = test::to_float(c.host());
  double s = 0, ss = 0;
  for (float v : va) {
    ASSERT_FALSE(std::isnan(v));
    s += v;
    ss += double{v} * v;
  }
  const double mean = s / n, sd = std::sqrt(ss / n - mean * mean);
  EXPECT_LT(std::fabs(mean), 2e-4);
  EXPECT_NEAR(sd, 0.02, 0.0005);
  EXPECT_EQ(test::rel_l2(va, vb), 0.0) << "same seed, same values";
  EXPECT_GT(test::rel_l2(va, vc), 1.0) << "another seed, other values";

  DevBuf<float> f(1000);
  cuda::RandomFillParams q;
  q.x_f32 = f.get();
  q.count = 1000;
  q.mean = 1.0f;
  q.half_width = 0.1f;
  cuda::random_fill(q, nullptr);
  for (float v : f.host()) ASSERT_TRUE(v >= 0.9f && v <= 1.1f) << v;
}

// The planner's arithmetic needs no GPU.
TEST(CudaMemoryPlan, SizesAndMessage) {
  const ModelConfig c = llama31_8b_config();
  const cuda::WeightLayout w = cuda::weight_layout(c);
  EXPECT_NEAR(static_cast<double>(w.total), 2.0 * 8.03e9, 0.02e9);  // Llama-3.1-8B: 8.03B params
  const size_t bf16_row = 1024 * 2, fp8_row = 1024 + 8 * 4;  // 8 kv heads of 128: bytes + scales
  EXPECT_EQ(KvRowFormat({KvType::Act, 8, 128, 2}).row_bytes(), bf16_row);
  EXPECT_EQ(KvRowFormat({KvType::Fp8, 8, 128, 2}).row_bytes(), fp8_row);
  EXPECT_EQ(cuda::kv_cache_bytes(c, 32768, bf16_row), size_t{2} * 32 * 32768 * 1024 * 2);
  // Each of the 2 * n_layers arrays takes whole 2 MiB pages: 32768 fp8 rows are 16.5 pages.
  const size_t page = size_t{2} << 20, fp8_array = (32768 * fp8_row + page - 1) / page * page;
  EXPECT_EQ(fp8_array, 17 * page);
  EXPECT_EQ(cuda::kv_cache_bytes(c, 32768, fp8_row), size_t{2} * 32 * fp8_array);
  const cuda::WorkspaceLayout s = cuda::workspace_layout(c, 501);
  EXPECT_EQ(s.rows, 501);
  EXPECT_EQ(s.att, s.qkv);
  EXPECT_LE(s.v + size_t{501} * 1024 * 2, s.total);
  EXPECT_LE(s.act + size_t{501} * 14336 * 2, s.total);
  const cuda::MemoryNeed need = cuda::memory_need(c, w.total, 1 << 20, 512, bf16_row);
  EXPECT_EQ(need.kv, cuda::kv_cache_bytes(c, 1 << 20, bf16_row));
  // The caller's scratch is counted in the workspace, byte for byte.
  const size_t scratch = hook_scratch_bytes(c, DType::BF16, 8192);
  EXPECT_EQ(cuda::memory_need(c, w.total, 0, 8192, bf16_row, false, scratch).workspace -
                cuda::memory_need(c, w.total, 0, 8192, bf16_row, false, 0).workspace,
            scratch);
  // What fits in 140 GiB next to the weights and an engine's scratch for 8192-token calls: the
  // fp8 cache holds 2048/1056 times the rows, and the answer is the largest count whose need fits.
  const size_t h200 = size_t{140} << 30;
  const int64_t fit16 = cuda::kv_rows_that_fit(c, w.total, 8192, bf16_row, h200, false, scratch);
  const int64_t fit8 = cuda::kv_rows_that_fit(c, w.total, 8192, fp8_row, h200, false, scratch);
  EXPECT_NEAR(static_cast<double>(fit8) / fit16, 2048.0 / 1056.0, 1e-3);
  EXPECT_GT(fit8, int64_t{1} << 20);  // a 1M-token context fits with fp8
  EXPECT_LT(fit16, int64_t{1} << 20);
  for (const auto& [rows, row] : {std::pair{fit16, bf16_row}, std::pair{fit8, fp8_row}}) {
    EXPECT_LE(cuda::memory_need(c, w.total, rows, 8192, row, false, scratch).total(), h200);
    EXPECT_GT(cuda::memory_need(c, w.total, rows + 32768, 8192, row, false, scratch).total(), h200);
  }
  EXPECT_EQ(cuda::kv_rows_that_fit(c, w.total, 8192, fp8_row, w.total), 0);
  const std::string msg = cuda::shortfall_message("cuda:0 (H100)", need, size_t{60} << 30);
  EXPECT_NE(msg.find("needs 1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("KV 128.00 GiB"), std::string::npos) << msg;
  EXPECT_NE(msg.find("60.00 GiB free"), std::string::npos) << msg;
  EXPECT_NE(msg.find("more ranks, a smaller --block-size, a shorter context or --kv-type fp8"),
            std::string::npos);
}

}  // namespace
}  // namespace starattn
