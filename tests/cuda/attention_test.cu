// The CUDA attention kernels against their CPU twins (attention_cpu, merge_attention) on the same
// bf16-rounded inputs: odd shapes, GQA groups 1/4/8, head_dim 64/128, every mask mode, outputs
// poisoned with NaN before each launch. Also FlashAttention's test: the kernel's error against an
// fp64 reference is at most twice that of a naive bf16 attention. Every test skips without a GPU.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "attention/merge.h"
#include "backend/cpu/attention_cpu.h"
#include "backend/cuda/attention.h"
#include "backend/cuda/attention_common.cuh"
#include "starattn/error.h"
#include "test_util.h"
#include "util/splitmix64.h"

namespace starattn {
namespace {

using bf16 = __nv_bfloat16;
using Fn = void (*)(const cuda::AttnParams&, cudaStream_t);
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

#define REQUIRE_GPU()                                                \
  do {                                                               \
    int n_dev_ = 0;                                                  \
    if (cudaGetDeviceCount(&n_dev_) != cudaSuccess || n_dev_ == 0) { \
      (void)cudaGetLastError();                                      \
      GTEST_SKIP() << "no CUDA device: GPU attention tests skipped"; \
    }                                                                \
  } while (0)

void ck(cudaError_t e, const char* what) {
  if (e != cudaSuccess) fail(what, ": ", cudaGetErrorString(e));
}
#define TCK(call) ck((call), #call)

// Normal(0, stddev) from a hash of (seed, i): fresh data for every case, generated on the GPU.
__global__ void fill_normal(bf16* x, size_t n, uint64_t seed, float stddev) {
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n;
       i += size_t{gridDim.x} * blockDim.x) {
    const uint64_t h = splitmix64_at(seed, i);
    const float u1 = (static_cast<float>(h >> 40) + 0.5f) / 16777216.0f;
    const float u2 = (static_cast<float>(h & 0xFFFFFF) + 0.5f) / 16777216.0f;
    x[i] = __float2bfloat16_rn(stddev * sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2));
  }
}

template <typename T>
struct Dev {
  T* p = nullptr;
  size_t n = 0;
  explicit Dev(size_t count) : n(count) { TCK(cudaMalloc(&p, std::max<size_t>(n, 1) * sizeof(T))); }
  ~Dev() { (void)cudaFree(p); }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  std::vector<T> host() const {
    std::vector<T> h(n);
    if (n) TCK(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }
};

std::vector<float> upcast(const std::vector<bf16>& x) {
  std::vector<float> f(x.size());
  for (size_t i = 0; i < x.size(); ++i) f[i] = __bfloat162float(x[i]);
  return f;
}

// A bf16 tensor on the device and its exact fp32 upcast on the host.
struct Tensor {
  Dev<bf16> d;
  std::vector<float> h;
  explicit Tensor(size_t n, float stddev = 1.0f) : d(n) {
    static uint64_t counter = 0;
    if (n) fill_normal<<<1024, 256>>>(d.p, n, ++counter * 0x2545F4914F6CDD1Dull, stddev);
    TCK(cudaGetLastError());
    h = upcast(d.host());
  }
};

struct Case {
  int n_q, n_kv, n_heads, n_kv_heads, d;
  bool causal;
  int64_t offset;
  bool padded;  // row strides larger than heads * head_dim, as in a fused QKV buffer
  std::string str() const {
    std::ostringstream s;
    s << "n_q " << n_q << " n_kv " << n_kv << " heads " << n_heads << "/" << n_kv_heads << " d "
      << d << (causal ? " causal offset " + std::to_string(offset) : " full")
      << (padded ? " padded" : "");
    return s.str();
  }
};

// Inputs, GPU outputs (compact [n_q, heads, d]) and the CPU reference for one case.
struct Trial {
  Case c;
  Tensor q, k, v;
  std::vector<float> out, lse, ref_out, ref_lse;
  int64_t q_stride, kv_stride, out_stride;
  explicit Trial(const Case& cs)
      : c(cs),
        q(size_t(cs.n_q) * (cs.n_heads * cs.d + (cs.padded ? 8 : 0))),
        k(size_t(cs.n_kv) * (cs.n_kv_heads * cs.d + (cs.padded ? 16 : 0))),
        v(size_t(cs.n_kv) * (cs.n_kv_heads * cs.d + (cs.padded ? 16 : 0))),
        q_stride(cs.n_heads * cs.d + (cs.padded ? 8 : 0)),
        kv_stride(cs.n_kv_heads * cs.d + (cs.padded ? 16 : 0)),
        out_stride(cs.n_heads * cs.d + (cs.padded ? 8 : 0)) {}

  // The case over tensors q, k, v, out, lse (host fp32 or device bf16).
  AttnParams params(const void* q_, const void* k_, const void* v_, void* out_, float* lse_) const {
    AttnParams p;
    p.q = q_, p.k = k_, p.v = v_, p.out = out_, p.lse = lse_;
    p.n_q = c.n_q, p.n_kv = c.n_kv, p.n_heads = c.n_heads, p.n_kv_heads = c.n_kv_heads;
    p.head_dim = c.d, p.q_stride = q_stride, p.kv_stride = kv_stride, p.out_stride = out_stride;
    p.scale = 1.0f / std::sqrt(float(c.d)), p.causal = c.causal, p.causal_offset = c.offset;
    return p;
  }
  void gpu(Fn fn) {
    Dev<bf16> d_out(size_t(c.n_q) * out_stride);
    Dev<float> d_lse(size_t(c.n_q) * c.n_heads);
    TCK(cudaMemset(d_out.p, 0xFF, d_out.n * sizeof(bf16)));  // NaN poison
    TCK(cudaMemset(d_lse.p, 0xFF, d_lse.n * sizeof(float)));
    // The engine's parameters over device tensors, as CudaBackend::attention converts them.
    fn(cuda::device_params(params(q.d.p, k.d.p, v.d.p, d_out.p, d_lse.p)), nullptr);
    TCK(cudaDeviceSynchronize());
    out = compact(upcast(d_out.host()));
    lse = d_lse.host();
  }
  void cpu() {
    std::vector<float> o(size_t(c.n_q) * out_stride, 0.0f);
    ref_lse.assign(size_t(c.n_q) * c.n_heads, 0.0f);
    attention_cpu(params(q.h.data(), k.h.data(), v.h.data(), o.data(), ref_lse.data()));
    ref_out = compact(o);
  }
  std::vector<float> compact(const std::vector<float>& o) const {
    const size_t w = size_t(c.n_heads) * c.d;
    std::vector<float> r(size_t(c.n_q) * w);
    for (int i = 0; i < c.n_q; ++i) std::copy_n(o.begin() + i * out_stride, w, r.begin() + i * w);
    return r;
  }
};

// |lse - ref| <= tol, -inf exact, NaN never.
int lse_mismatches(const std::vector<float>& a, const std::vector<float>& ref, float tol) {
  int bad = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const bool ok = std::isinf(ref[i]) ? a[i] == ref[i] : std::abs(a[i] - ref[i]) <= tol;
    bad += !ok;  // NaN compares false
  }
  return bad;
}

template <typename Fns>
void expect_matches_cpu(const Case& c, const Fns& fns) {
  SCOPED_TRACE(c.str());
  Trial r(c);
  r.cpu();
  for (Fn fn : fns) {
    r.gpu(fn);
    EXPECT_LE(test::rel_l2(r.out, r.ref_out), 1e-2);
    EXPECT_EQ(lse_mismatches(r.lse, r.ref_lse, 1e-2f), 0);
  }
}

// The prefill kernels this device runs: mma.sync always, wgmma on sm_90.
std::vector<Fn> prefill_kernels() {
  std::vector<Fn> fns{cuda::attn::prefill_mma};
  if (cuda::attn::device_has_wgmma()) fns.push_back(cuda::attn::prefill_wgmma);
  return fns;
}

// Mask modes: full, causal, causal with a positive offset, causal with rows that see nothing.
Case with_mask(Case c, int mode) {
  c.causal = mode != 0;
  c.offset = mode == 2 ? std::max(c.n_kv - c.n_q, 1) : mode == 3 ? -(c.n_q / 3) - 1 : 0;
  return c;
}

TEST(CudaAttention, PrefillMatchesCpu) {
  REQUIRE_GPU();
  const int sizes[] = {1, 3, 37, 501, 3771};
  const std::vector<Fn> kernels = prefill_kernels();
  int i = 0;
  for (int n_q : sizes)
    for (int n_kv : sizes)
      for (int d : {64, 128})
        for (int group : {1, 4, 8})
          for (int mode = 0; mode < 4; ++mode, ++i) {
            const int kvh = int64_t{n_q} * n_kv > 1000000 ? 1 : 2;
            const Case c{n_q, n_kv, group * kvh, kvh, d, false, 0, i % 3 == 0};
            expect_matches_cpu(with_mask(c, mode), kernels);
          }
}

TEST(CudaAttention, DecodeMatchesCpu) {
  REQUIRE_GPU();
  int i = 0;
  for (int n_kv : {1, 37, 3771, 131077})
    for (int n_q : {1, 2, 3, 4, 8})
      for (int d : {64, 128})
        for (int group : {1, 4, 8})
          for (int mode = 0; mode < 4; ++mode, ++i) {
            const int kvh = n_kv > 10000 ? 1 : 2;
            Case c{n_q, n_kv, group * kvh, kvh, d, mode != 0, 0, i % 3 == 0};
            // full; the KV-cache case (last query sees the last key); offset 0; rows masked.
            c.offset = mode == 1 ? n_kv - n_q : mode == 2 ? 0 : -2;
            expect_matches_cpu(c, std::vector<Fn>{cuda::attention_decode});
          }
}

TEST(CudaAttention, DispatchMatchesCpu) {
  REQUIRE_GPU();
  for (int n_q : {1, 8, 9, 501}) {
    const int n_kv = 3771;
    const std::vector<Fn> fns{cuda::attention};
    expect_matches_cpu(Case{n_q, n_kv, 32, 8, 128, true, n_kv - n_q, false}, fns);
    expect_matches_cpu(Case{n_q, n_kv, 8, 8, 64, false, 0, true}, fns);
  }
}

// fp64 attention and a naive bf16 one (fp32 scores and softmax, P rounded to bf16 before PV,
// output rounded to bf16) on the same inputs. Row i, head h of the compact [n_q, heads, d] output.
void reference_fp64_and_naive(const Trial& r, std::vector<double>& o64, std::vector<double>& lse64,
                              std::vector<float>& naive) {
  const Case& c = r.c;
  const int g = c.n_heads / c.n_kv_heads;
  const double scale = 1.0 / std::sqrt(double(c.d));
  o64.assign(size_t(c.n_q) * c.n_heads * c.d, 0.0);
  naive.assign(o64.size(), 0.0f);
  lse64.assign(size_t(c.n_q) * c.n_heads, -INFINITY);
  std::vector<double> s64(c.n_kv);
  std::vector<float> s32(c.n_kv);
  for (int i = 0; i < c.n_q; ++i)
    for (int h = 0; h < c.n_heads; ++h) {
      const int64_t vis = c.causal ? std::clamp<int64_t>(i + c.offset + 1, 0, c.n_kv) : c.n_kv;
      if (vis == 0) continue;
      const float* qi = r.q.h.data() + i * r.q_stride + h * c.d;
      double m64 = -INFINITY;
      float m32 = -INFINITY;
      for (int64_t j = 0; j < vis; ++j) {
        const float* kj = r.k.h.data() + j * r.kv_stride + (h / g) * c.d;
        double a = 0;
        float b = 0;
        for (int e = 0; e < c.d; ++e) a += double(qi[e]) * kj[e], b += qi[e] * kj[e];
        s64[j] = a * scale, s32[j] = b * float(scale);
        m64 = std::max(m64, s64[j]), m32 = std::max(m32, s32[j]);
      }
      double l64 = 0;
      float l32 = 0;
      for (int64_t j = 0; j < vis; ++j) {
        s64[j] = std::exp(s64[j] - m64), l64 += s64[j];
        s32[j] = std::exp(s32[j] - m32), l32 += s32[j];
      }
      const size_t row = (size_t(i) * c.n_heads + h) * c.d;
      lse64[size_t(i) * c.n_heads + h] = m64 + std::log(l64);
      std::vector<float> acc(c.d, 0.0f);
      for (int64_t j = 0; j < vis; ++j) {
        const float* vj = r.v.h.data() + j * r.kv_stride + (h / g) * c.d;
        const float p = __bfloat162float(__float2bfloat16_rn(s32[j] / l32));
        for (int e = 0; e < c.d; ++e) o64[row + e] += s64[j] / l64 * vj[e], acc[e] += p * vj[e];
      }
      for (int e = 0; e < c.d; ++e) naive[row + e] = __bfloat162float(__float2bfloat16_rn(acc[e]));
    }
}

TEST(CudaAttention, ErrorAtMostTwiceNaiveBf16) {
  REQUIRE_GPU();
  const struct {
    Case c;
    Fn fn;
  } cases[] = {{{301, 1100, 8, 2, 128, true, 799, false}, cuda::attention_prefill},
               {{301, 1100, 8, 2, 64, true, 799, false}, cuda::attention_prefill},
               {{200, 900, 4, 4, 128, false, 0, false}, cuda::attention_prefill},
               {{301, 1100, 8, 2, 128, true, 799, false}, cuda::attn::prefill_mma},
               {{200, 900, 4, 4, 64, false, 0, false}, cuda::attn::prefill_mma},
               {{3, 20000, 8, 1, 128, false, 0, false}, cuda::attention_decode},
               {{2, 9000, 4, 1, 64, true, 8998, false}, cuda::attention_decode}};
  for (const auto& t : cases) {
    SCOPED_TRACE(t.c.str());
    Trial r(t.c);
    r.gpu(t.fn);
    std::vector<double> o64, lse64;
    std::vector<float> naive;
    reference_fp64_and_naive(r, o64, lse64, naive);
    double err_kernel = 0, err_naive = 0, lse_err = 0;
    for (size_t i = 0; i < o64.size(); ++i) {
      err_kernel = std::max(err_kernel, std::abs(r.out[i] - o64[i]));
      err_naive = std::max(err_naive, std::abs(naive[i] - o64[i]));
      if (std::isnan(r.out[i])) err_kernel = INFINITY;
    }
    for (size_t i = 0; i < lse64.size(); ++i)
      lse_err = std::max(lse_err, std::abs(r.lse[i] - lse64[i]));
    EXPECT_LE(err_kernel, 2 * err_naive) << "naive bf16 max error " << err_naive;
    EXPECT_LE(lse_err, 1e-3);
  }
}

// Split the keys into three parts (one empty), attend to each, merge on the GPU: equals the whole.
TEST(CudaAttention, MergeOfSplitKvEqualsWhole) {
  REQUIRE_GPU();
  for (int n_q : {3, 501})
    for (bool causal : {false, true}) {
      const int n_kv = 3771, heads = 8, kvh = 2, d = 128, cut = 1234;
      const Case whole{n_q, n_kv, heads, kvh, d, causal, n_kv - n_q, false};
      SCOPED_TRACE(whole.str());
      Trial r(whole);
      r.cpu();
      const size_t n_out = size_t(n_q) * heads * d, n_lse = size_t(n_q) * heads;
      Dev<bf16> out_a(n_out), out_b(n_out);
      Dev<float> lse_a(n_lse), lse_b(n_lse);
      const int begin[] = {0, cut, cut}, end[] = {cut, cut, n_kv};
      for (int part = 0; part < 3; ++part) {
        cuda::AttnParams p;
        p.q = r.q.d.p, p.k = r.k.d.p + begin[part] * r.kv_stride;
        p.v = r.v.d.p + begin[part] * r.kv_stride;
        p.out = part == 0 ? out_a.p : out_b.p, p.lse = part == 0 ? lse_a.p : lse_b.p;
        TCK(cudaMemset(p.out, 0xFF, n_out * sizeof(bf16)));
        TCK(cudaMemset(p.lse, 0xFF, n_lse * sizeof(float)));
        p.n_q = n_q, p.n_kv = end[part] - begin[part], p.n_heads = heads, p.n_kv_heads = kvh;
        p.head_dim = d, p.q_stride = r.q_stride, p.kv_stride = r.kv_stride,
        p.out_stride = heads * d;
        p.scale = 1.0f / std::sqrt(float(d)), p.causal = causal;
        p.causal_offset = whole.offset - begin[part];  // the same global mask, shifted
        cuda::attention(p, nullptr);
        if (part > 0)
          cuda::merge_attention(out_a.p, lse_a.p, out_b.p, lse_b.p, n_q, heads, d, nullptr);
      }
      TCK(cudaDeviceSynchronize());
      EXPECT_LE(test::rel_l2(upcast(out_a.host()), r.ref_out), 1e-2);
      EXPECT_EQ(lse_mismatches(lse_a.host(), r.ref_lse, 1e-2f), 0);
    }
}

// The GPU merge against the CPU merge, with rows where either side or both saw no key.
TEST(CudaAttention, MergeMatchesCpuWithMaskedRows) {
  REQUIRE_GPU();
  const int rows = 37, heads = 8, d = 64;
  const size_t n = size_t(rows) * heads;
  Tensor a(n * d), b(n * d), la(n, 3.0f), lb(n, 3.0f);
  std::vector<float> lse_a(la.h), lse_b(lb.h), out_a(a.h);
  for (size_t i = 0; i < n; ++i) {
    if (i % 3 == 0) lse_a[i] = kNegInf;
    if (i % 5 == 0) lse_b[i] = kNegInf;
  }
  Dev<float> d_la(n), d_lb(n);
  TCK(cudaMemcpy(d_la.p, lse_a.data(), n * sizeof(float), cudaMemcpyHostToDevice));
  TCK(cudaMemcpy(d_lb.p, lse_b.data(), n * sizeof(float), cudaMemcpyHostToDevice));
  cuda::merge_attention(a.d.p, d_la.p, b.d.p, d_lb.p, rows, heads, d, nullptr);
  TCK(cudaDeviceSynchronize());
  merge_attention(out_a.data(), lse_a.data(), b.h.data(), lse_b.data(), rows, heads, d);
  EXPECT_LE(test::rel_l2(upcast(a.d.host()), out_a), 1e-2);
  EXPECT_EQ(lse_mismatches(d_la.host(), lse_a, 1e-5f), 0);
}

// The N-way merge of an allgather's parts against the CPU's, on the same bf16 outputs: rows that
// some parts, or every part, saw no key; 1 to 17 parts; both head dims.
TEST(CudaAttention, MergePartsMatchesCpu) {
  REQUIRE_GPU();
  for (int d : {64, 128})
    for (int parts : {1, 3, 17}) {
      SCOPED_TRACE("head_dim " + std::to_string(d) + ", parts " + std::to_string(parts));
      const int rows = 13, heads = 8;
      const size_t n = size_t(rows) * heads, each = n * d * sizeof(bf16) + n * sizeof(float);
      std::vector<char> gathered(each * parts);
      std::vector<float> cpu_parts;  // the same parts with fp32 outputs, as the CPU merge reads
      std::mt19937 rng(17 * d + parts);
      std::normal_distribution<float> z(0.0f, 1.0f);
      for (int p = 0; p < parts; ++p) {
        auto* o = reinterpret_cast<bf16*>(gathered.data() + p * each);
        auto* l = reinterpret_cast<float*>(gathered.data() + p * each + n * d * sizeof(bf16));
        for (size_t i = 0; i < n * d; ++i) o[i] = __float2bfloat16_rn(z(rng));
        for (size_t i = 0; i < n; ++i)
          l[i] = (i % 7 == size_t(p) % 7) || i == 5 ? kNegInf : 20.0f * z(rng);
        for (size_t i = 0; i < n * d; ++i) cpu_parts.push_back(__bfloat162float(o[i]));
        cpu_parts.insert(cpu_parts.end(), l, l + n);
      }
      Dev<char> d_parts(gathered.size());
      TCK(cudaMemcpy(d_parts.p, gathered.data(), gathered.size(), cudaMemcpyHostToDevice));
      Dev<bf16> out(n * d);
      Dev<float> lse(n);
      TCK(cudaMemset(out.p, 0xFF, n * d * sizeof(bf16)));
      TCK(cudaMemset(lse.p, 0xFF, n * sizeof(float)));
      cuda::merge_attention_parts(out.p, lse.p, d_parts.p, each, parts, rows, heads, d, nullptr);
      TCK(cudaDeviceSynchronize());
      std::vector<float> want(n * d), want_lse(n);
      merge_attention_parts(want.data(), want_lse.data(), cpu_parts.data(),
                            (n * d + n) * sizeof(float), parts, rows, heads, d);
      const std::vector<float> got = upcast(out.host());
      for (float x : got) ASSERT_FALSE(std::isnan(x));
      EXPECT_LE(test::rel_l2(got, want), 1e-2);
      EXPECT_EQ(lse_mismatches(lse.host(), want_lse, 1e-5f), 0);
    }
}

TEST(CudaAttention, UnsupportedHeadDimThrowsNamingIt) {
  REQUIRE_GPU();
  Dev<bf16> x(1024);
  Dev<float> l(16);
  cuda::AttnParams p;
  p.q = p.k = p.v = x.p, p.out = x.p, p.lse = l.p;
  p.n_q = 1, p.n_kv = 1, p.n_heads = 1, p.n_kv_heads = 1, p.head_dim = 96;
  p.q_stride = p.kv_stride = p.out_stride = 96, p.scale = 0.1f;
  try {
    cuda::attention(p, nullptr);
    FAIL() << "head_dim 96 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("96"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace starattn
