// FP8 KV on the GPU against the CPU twin on the same quantised data: rows quantised by the GPU's
// write (kv_write.cu) are byte for byte the CPU's quantize_kv_rows_fp8 of the same bf16 values,
// and every attention kernel reading them (split-KV decode, both prefill kernels, the dispatch)
// matches attention_cpu over the same bytes: odd shapes, GQA groups 1/4/8, head_dim 64/128, every
// mask mode, padded row strides, outputs poisoned with NaN. Every test skips without a GPU.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "attention/kv_format.h"
#include "backend/cpu/attention_cpu.h"
#include "backend/cuda/attention.h"
#include "backend/cuda/attention_common.cuh"
#include "backend/cuda/kv_write.h"
#include "cuda/cuda_test_util.h"
#include "starattn/error.h"
#include "test_util.h"

namespace starattn {
namespace {

using bf16 = __nv_bfloat16;
using Fn = void (*)(const cuda::AttnParams&, cudaStream_t);
using test::DevBuf;

// Every E4M3 code in every byte of a word through both conversions (attention_common.cuh).
__global__ void convert_both_ways(const uint32_t* words, int n, uint32_t* fast, uint32_t* exact) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const uint32_t w = words[i];
  cuda::attn::fp8x4_to_bf16x2_pairs(w, fast[2 * i], fast[2 * i + 1]);
  const uint32_t lo = cuda::attn::fp8x2_to_bf16x2(w), hi = cuda::attn::fp8x2_to_bf16x2(w >> 16);
  exact[2 * i] = (lo & 0xFFFFu) | (hi << 16);          // (b0, b2)
  exact[2 * i + 1] = (lo >> 16) | (hi & 0xFFFF0000u);  // (b1, b3)
}

TEST(CudaFp8, IntegerConversionIsBitExact) {
  SA_REQUIRE_GPU();
  std::vector<uint32_t> words;
  for (uint32_t a = 0; a < 256; ++a)
    for (uint32_t b = 0; b < 256; ++b)  // each byte position sees every code beside every other
      words.push_back(a | (b << 8) | (((a * 37 + b) & 0xFF) << 16) | (((b * 91 + a) & 0xFF) << 24));
  const int n = static_cast<int>(words.size());
  DevBuf<uint32_t> d_words(words), fast(2 * words.size()), exact(2 * words.size());
  convert_both_ways<<<(n + 255) / 256, 256>>>(d_words.get(), n, fast.get(), exact.get());
  SA_CUDA(cudaDeviceSynchronize());
  const std::vector<uint32_t> f = fast.host(), e = exact.host();
  // Each bf16 half equal bit for bit, except that a NaN code need only give a NaN (exponent all
  // ones, a mantissa bit set).
  auto is_nan = [](uint32_t h) { return (h & 0x7F80u) == 0x7F80u && (h & 0x7Fu) != 0u; };
  int bad = 0, nans = 0;
  for (size_t i = 0; i < f.size(); ++i)
    for (int half = 0; half < 2; ++half) {
      const uint32_t got = (f[i] >> (16 * half)) & 0xFFFFu, want = (e[i] >> (16 * half)) & 0xFFFFu;
      const bool ok = is_nan(want) ? is_nan(got) : got == want;
      nans += is_nan(want);
      if (!ok && bad++ < 5)
        ADD_FAILURE() << std::hex << "word " << words[i / 2] << " pair " << i % 2 << " half "
                      << half << ": " << got << " != " << want;
    }
  EXPECT_EQ(bad, 0);
  EXPECT_GT(nans, 0);  // the NaN codes were among the words
}

struct Case {
  int n_q, n_kv, n_heads, n_kv_heads, d;
  bool causal;
  int64_t offset;
  int pad_rows;     // extra 16-byte pieces per KV row (a wider row stride than the format's)
  int v_range = 0;  // V rows' magnitudes: 0 as kv_values, else v_gain's range
  std::string str() const {
    std::ostringstream s;
    s << "n_q " << n_q << " n_kv " << n_kv << " heads " << n_heads << "/" << n_kv_heads << " d "
      << d << (causal ? " causal offset " + std::to_string(offset) : " full") << " pad " << pad_rows
      << " v_range " << v_range;
    return s.str();
  }
};

// Keys with outlier channels and values of mixed scales, so the per-row scales matter.
std::vector<float> kv_values(size_t rows, int kvd, std::mt19937& rng, bool keys) {
  std::vector<float> x = test::random_vec(rows * kvd, rng, keys ? 2.0f : 1.0f);
  for (size_t j = 0; j < rows; ++j) {
    if (keys) x[j * kvd + 3] *= 20.0f;
    if (j % 7 == 0)
      for (int e = 0; e < kvd; ++e) x[j * kvd + e] *= 1e-2f;
  }
  return test::bf16_round(x);
}

// Gains for V row j: 1 all rows 1e-12 (their scales far under f16's range), 2 all 1e4, 3 from
// 1e-30 to 1e6 by factors of 1000 with every fifth row zero, 4 by runs of 128 rows (a prefill
// tile) from 1e-6 up to 1e4 by factors of 100, over and over.
float v_gain(int range, size_t j) {
  if (range == 1) return 1e-12f;
  if (range == 2) return 1e4f;
  if (range == 4) return std::pow(10.0f, float(j / 128 % 6) * 2 - 6);
  return j % 5 == 0 ? 0.0f : std::pow(10.0f, float(j % 13) * 3 - 30);
}

// bf16 K and V on the device, quantised there into fp8 rows (stride row_stride bytes), the rows
// read back, and q.
struct Fp8Trial {
  Case c;
  KvRowFormat f;
  int64_t row_stride;
  std::vector<float> q, k, v;
  std::vector<uint8_t> k8, v8;  // the GPU's rows
  DevBuf<bf16> dq;
  DevBuf<uint8_t> dk8, dv8;

  explicit Fp8Trial(const Case& cs)
      : c(cs),
        f{KvType::Fp8, cs.n_kv_heads, cs.d, 2},
        row_stride(static_cast<int64_t>(f.row_bytes()) + 16 * cs.pad_rows),
        dq(size_t(cs.n_q) * cs.n_heads * cs.d),
        dk8(size_t(std::max(cs.n_kv, 1)) * row_stride),
        dv8(size_t(std::max(cs.n_kv, 1)) * row_stride) {
    std::mt19937 rng(cs.n_q * 1000003 + cs.n_kv * 31 + cs.d + cs.n_heads);
    const int kvd = c.n_kv_heads * c.d;
    q = test::bf16_round(test::random_vec(size_t(c.n_q) * c.n_heads * c.d, rng));
    k = kv_values(c.n_kv, kvd, rng, true);
    v = kv_values(c.n_kv, kvd, rng, false);
    if (c.v_range != 0) {
      for (size_t j = 0; j < size_t(c.n_kv); ++j)
        for (int e = 0; e < kvd; ++e) v[j * kvd + e] *= v_gain(c.v_range, j);
      v = test::bf16_round(v);
    }
    dq.upload(test::to_bf16(q));
    if (c.n_kv == 0) return;
    DevBuf<bf16> dk(test::to_bf16(k)), dv(test::to_bf16(v));
    // Quantise straight into the strided rows when the stride is the format's; otherwise into a
    // packed buffer and copy each row to its place (padding bytes stay 0xFF).
    DevBuf<uint8_t> pk(size_t(c.n_kv) * f.row_bytes()), pv(size_t(c.n_kv) * f.row_bytes());
    cuda::KvWriteParams w;
    w.dst[0] = pk.get(), w.dst[1] = pv.get();
    w.src[0] = dk.get(), w.src[1] = dv.get();
    w.format = f;
    w.row = 0;
    w.n = c.n_kv;
    cuda::write_kv_rows(w, nullptr);
    SA_CUDA(cudaMemcpy2D(dk8.get(), row_stride, pk.get(), f.row_bytes(), f.row_bytes(), c.n_kv,
                         cudaMemcpyDeviceToDevice));
    SA_CUDA(cudaMemcpy2D(dv8.get(), row_stride, pv.get(), f.row_bytes(), f.row_bytes(), c.n_kv,
                         cudaMemcpyDeviceToDevice));
    k8 = dk8.host();
    v8 = dv8.host();
  }

  cuda::AttnParams params(bf16* out, float* lse) const {
    cuda::AttnParams p;
    p.q = dq.get(), p.out = out, p.lse = lse;
    p.kv_type = KvType::Fp8;
    p.k8 = dk8.get(), p.v8 = dv8.get();
    p.kv_scale_offset = f.scale_offset();
    p.n_q = c.n_q, p.n_kv = c.n_kv, p.n_heads = c.n_heads, p.n_kv_heads = c.n_kv_heads;
    p.head_dim = c.d, p.q_stride = p.out_stride = c.n_heads * c.d, p.kv_stride = row_stride;
    p.scale = 1.0f / std::sqrt(float(c.d)), p.causal = c.causal, p.causal_offset = c.offset;
    return p;
  }

  void gpu(Fn fn, std::vector<float>* out, std::vector<float>* lse) const {
    DevBuf<bf16> d_out(size_t(c.n_q) * c.n_heads * c.d);  // NaN-poisoned
    DevBuf<float> d_lse(size_t(c.n_q) * c.n_heads);
    fn(params(d_out.get(), d_lse.get()), nullptr);
    SA_CUDA(cudaDeviceSynchronize());
    *out = test::to_float(d_out.host());
    *lse = d_lse.host();
  }

  // attention_cpu over the GPU's own fp8 bytes (the first n_kv rows when n_kv >= 0).
  void cpu(std::vector<float>* out, std::vector<float>* lse, int64_t n_kv = -1) const {
    out->assign(size_t(c.n_q) * c.n_heads * c.d, 0.0f);
    lse->assign(size_t(c.n_q) * c.n_heads, 0.0f);
    AttnParams p;
    p.q = q.data(), p.k = k8.data(), p.v = v8.data(), p.out = out->data(), p.lse = lse->data();
    p.kv_type = KvType::Fp8;
    p.kv_scale_offset = f.scale_offset();
    p.n_q = c.n_q, p.n_kv = n_kv >= 0 ? n_kv : c.n_kv, p.n_heads = c.n_heads;
    p.n_kv_heads = c.n_kv_heads;
    p.head_dim = c.d, p.q_stride = p.out_stride = c.n_heads * c.d, p.kv_stride = row_stride;
    p.scale = 1.0f / std::sqrt(float(c.d)), p.causal = c.causal, p.causal_offset = c.offset;
    static const std::vector<uint8_t> none(16);
    if (c.n_kv == 0) p.k = p.v = none.data();
    attention_cpu(p);
  }
};

int lse_mismatches(const std::vector<float>& a, const std::vector<float>& ref, float tol) {
  int bad = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const bool ok = std::isinf(ref[i]) ? a[i] == ref[i] : std::abs(a[i] - ref[i]) <= tol;
    bad += !ok;  // NaN compares false
  }
  return bad;
}

// The kernels take the K codes exactly and scale the scores in fp32, as the CPU does, so the lse
// agrees to fp32 rounding. For P V they round to 16 bits where the CPU keeps fp32: the
// probabilities times the V scales to bf16 (mma.sync prefill) or f16 (decode), or the
// probabilities and the V codes times their scales over a power of two to f16 (Hopper prefill),
// and they write bf16 outputs: the bf16 tests' 1e-2 bound holds for the same reason.
void expect_matches_cpu(const Case& c, const std::vector<Fn>& fns) {
  SCOPED_TRACE(c.str());
  const Fp8Trial t(c);
  std::vector<float> want, want_lse, got, got_lse;
  t.cpu(&want, &want_lse);
  for (Fn fn : fns) {
    t.gpu(fn, &got, &got_lse);
    for (float x : got) ASSERT_FALSE(std::isnan(x));
    EXPECT_LE(test::rel_l2(got, want), 1e-2);
    EXPECT_EQ(lse_mismatches(got_lse, want_lse, 1e-2f), 0);
  }
}

Case with_mask(Case c, int mode) {
  c.causal = mode != 0;
  c.offset = mode == 2 ? std::max(c.n_kv - c.n_q, 1) : mode == 3 ? -(c.n_q / 3) - 1 : 0;
  return c;
}

TEST(CudaFp8, WriteQuantisesAsTheCpu) {
  SA_REQUIRE_GPU();
  for (int d : {64, 128})
    for (int heads : {1, 3, 8}) {
      SCOPED_TRACE("d " + std::to_string(d) + " kv heads " + std::to_string(heads));
      const Case c{1, 1001, heads, heads, d, false, 0, 0};
      const Fp8Trial t(c);
      std::vector<uint8_t> want(t.k8.size());
      quantize_kv_rows_fp8(t.f, t.k.data(), c.n_kv, want.data());
      EXPECT_EQ(t.k8, want);
      quantize_kv_rows_fp8(t.f, t.v.data(), c.n_kv, want.data());
      EXPECT_EQ(t.v8, want);
    }
}

// The int8-grid experiment (STARATTN_KV_EXPERIMENT, kv_format.h): the GPU's bf16 rows are the
// CPU's rounding of the same values, bit for bit, for every group size, at a row and at a device
// row; fp8 rows are left to the fp8 write.
TEST(CudaFp8, Int8GridWriteMatchesCpu) {
  SA_REQUIRE_GPU();
  std::mt19937 rng(17);
  for (int d : {64, 128})
    for (int heads : {1, 3, 8})
      for (int group : {8, 16, 32, 64, 128}) {
        if (group > d) continue;
        SCOPED_TRACE("d " + std::to_string(d) + " kv heads " + std::to_string(heads) + " group " +
                     std::to_string(group));
        const int n = 37, kvd = heads * d;
        const KvRowFormat f{KvType::Act, heads, d, 2};
        std::vector<float> x = test::bf16_round(kv_values(n, kvd, rng, true));
        std::vector<float> want = x;
        round_kv_rows_int8_grid(want.data(), n, heads, d, group);
        const std::vector<bf16> want16 = test::to_bf16(want);
        DevBuf<bf16> src(test::to_bf16(x));
        DevBuf<int> at(std::vector<int>{3});
        const std::string spec = "int8:" + std::to_string(group);
        ASSERT_EQ(setenv("STARATTN_KV_EXPERIMENT", spec.c_str(), 1), 0);
        for (bool device_row : {false, true}) {
          DevBuf<bf16> k(size_t(n + 5) * kvd), v(size_t(n + 5) * kvd);
          cuda::KvWriteParams w;
          w.dst[0] = k.get(), w.dst[1] = v.get();
          w.src[0] = src.get(), w.src[1] = src.get();
          w.format = f;
          w.row = 3;
          if (device_row) w.row = 0, w.row_at = at.get();
          w.n = n;
          cuda::write_kv_rows(w, nullptr);
          for (const DevBuf<bf16>* out : {&k, &v}) {
            const std::vector<bf16> got = out->host();
            ASSERT_EQ(std::memcmp(got.data() + 3 * kvd, want16.data(), want16.size() * 2), 0);
          }
        }
        unsetenv("STARATTN_KV_EXPERIMENT");
      }
  ASSERT_EQ(setenv("STARATTN_KV_EXPERIMENT", "int8:12", 1), 0);
  const KvRowFormat f{KvType::Act, 2, 64, 2};
  DevBuf<bf16> src(size_t(2) * 64), dst(size_t(2) * 64);
  cuda::KvWriteParams w;
  w.dst[0] = w.dst[1] = dst.get();
  w.src[0] = w.src[1] = src.get();
  w.format = f;
  w.n = 1;
  EXPECT_THROW(cuda::write_kv_rows(w, nullptr), Error);
  unsetenv("STARATTN_KV_EXPERIMENT");
}

TEST(CudaFp8, WriteAtADeviceRowAndBf16Copies) {
  SA_REQUIRE_GPU();
  const int d = 128, heads = 2, n = 3, kvd = heads * d;
  const KvRowFormat f8{KvType::Fp8, heads, d, 2}, f16{KvType::Act, heads, d, 2};
  std::mt19937 rng(5);
  const std::vector<float> x = kv_values(n, kvd, rng, true);
  DevBuf<bf16> src(test::to_bf16(x));
  DevBuf<int> at(std::vector<int>{4});
  for (const KvRowFormat& f : {f8, f16}) {
    DevBuf<uint8_t> k(10 * f.row_bytes()), v(10 * f.row_bytes());
    cuda::KvWriteParams w;
    w.dst[0] = k.get(), w.dst[1] = v.get();
    w.src[0] = src.get(), w.src[1] = src.get();
    w.format = f;
    w.row_at = at.get();
    w.n = n;
    cuda::write_kv_rows(w, nullptr);
    const std::vector<uint8_t> got = k.host();
    std::vector<uint8_t> want(n * f.row_bytes());
    if (f.type == KvType::Fp8) {
      quantize_kv_rows_fp8(f, x.data(), n, want.data());
    } else {
      const std::vector<bf16> b = test::to_bf16(x);
      std::memcpy(want.data(), b.data(), want.size());
    }
    EXPECT_TRUE(std::equal(want.begin(), want.end(), got.begin() + 4 * f.row_bytes()))
        << kv_type_name(f.type);
    EXPECT_EQ(got[4 * f.row_bytes() - 1], 0xFF) << "a row before the target was written";
    EXPECT_EQ(got[7 * f.row_bytes()], 0xFF) << "a row after the target was written";
  }
}

TEST(CudaFp8, PrefillMatchesCpu) {
  SA_REQUIRE_GPU();
  const int sizes[] = {1, 3, 37, 501, 3771};
  int i = 0;
  for (int n_q : sizes)
    for (int n_kv : sizes)
      for (int d : {64, 128})
        for (int group : {1, 4, 8})
          for (int mode = 0; mode < 4; ++mode, ++i) {
            const int kvh = int64_t{n_q} * n_kv > 1000000 ? 1 : 2;
            const Case c{n_q, n_kv, group * kvh, kvh, d, false, 0, i % 3 == 0 ? 1 : 0};
            std::vector<Fn> fns = {cuda::attn::prefill_mma, cuda::attention_prefill};
            if (cuda::attn::device_has_wgmma()) fns.push_back(cuda::attn::prefill_wgmma);
            expect_matches_cpu(with_mask(c, mode), fns);
          }
}

TEST(CudaFp8, DecodeMatchesCpu) {
  SA_REQUIRE_GPU();
  int i = 0;
  for (int n_kv : {1, 37, 3771, 131077})
    for (int n_q : {1, 2, 3, 8})
      for (int d : {64, 128})
        for (int group : {1, 4, 8})
          for (int mode = 0; mode < 4; ++mode, ++i) {
            // 1, 2, 4 and 8 kv heads (blocks of 1, 2 and 4 heads); the long cache with one, and
            // with the 8 of Llama-3.1-8B's single-token decode.
            int kvh = 1 << (i / 4 % 4);
            if (n_kv > 10000) kvh = n_q == 1 && group == 4 ? 8 : 1;
            Case c{n_q, n_kv, group * kvh, kvh, d, mode != 0, 0, i % 3 == 0 ? 2 : 0};
            c.offset = mode == 1 ? n_kv - n_q : mode == 2 ? 0 : -2;
            expect_matches_cpu(c, {cuda::attention_decode});
          }
}

// V rows far from 1 in magnitude, and far from each other: the decode carries each key's V
// scale in its probability, which must neither overflow nor vanish.
TEST(CudaFp8, DecodeOverVScalesFarApart) {
  SA_REQUIRE_GPU();
  for (int range : {1, 2, 3})
    for (int n_kv : {37, 5003})
      for (int kvh : {1, 8}) {
        Case c{1, n_kv, 4 * kvh, kvh, 128, false, 0, 0};
        c.v_range = range;
        expect_matches_cpu(c, {cuda::attention_decode});
      }
}

// The same for the prefill kernels, and each (query, head) row on its own, so that rows far
// smaller than others count too. The Hopper kernel carries V in f16 relative to the largest V
// scale so far and sends a tile with a scale over 2^14 under it as bf16 instead: ranges 1 and 2
// stay in f16, range 3's tiles all go as bf16, and range 4 moves the output's unit up with each
// run of larger rows, then sends the runs after the drop back to 1e-6 as bf16.
TEST(CudaFp8, PrefillOverVScalesFarApart) {
  SA_REQUIRE_GPU();
  std::vector<Fn> fns = {cuda::attn::prefill_mma, cuda::attention_prefill};
  if (cuda::attn::device_has_wgmma()) fns.push_back(cuda::attn::prefill_wgmma);
  for (int range : {1, 2, 3, 4})
    for (int d : {64, 128})
      for (const Case& base :
           {Case{37, 37, 4, 1, d, false, 0, 0}, Case{300, 5003, 8, 2, d, true, 4703, 0}}) {
        Case c = base;
        c.v_range = range;
        SCOPED_TRACE(c.str());
        expect_matches_cpu(c, fns);
        const Fp8Trial t(c);
        std::vector<float> want, want_lse, got, got_lse;
        t.cpu(&want, &want_lse);
        for (Fn fn : fns) {
          t.gpu(fn, &got, &got_lse);
          int bad = 0;
          for (size_t r = 0; r < want.size() / d; ++r)
            bad += !(test::rel_l2(got.data() + r * d, want.data() + r * d, d) <= 2e-2);
          EXPECT_EQ(bad, 0);
        }
      }
}

TEST(CudaFp8, DispatchMatchesCpu) {
  SA_REQUIRE_GPU();
  for (int n_q : {1, 8, 9, 501}) {
    const int n_kv = 3771;
    expect_matches_cpu(Case{n_q, n_kv, 32, 8, 128, true, n_kv - n_q, 0}, {cuda::attention});
    expect_matches_cpu(Case{n_q, n_kv, 8, 8, 64, false, 0, 1}, {cuda::attention});
  }
}

// A replayed decode step reads the key count from device memory: fewer keys than n_kv. The rows
// past it are a cache's unwritten or stale rows: here all bytes 0xFF (NaN codes and scales),
// which no output may see (the Hopper kernel copies whole tiles of rows and must drop them).
TEST(CudaFp8, DecodeWithADeviceKeyCount) {
  SA_REQUIRE_GPU();
  for (int d : {64, 128})
    for (int kvh : {1, 2, 8}) {
      const Case full{1, 5000, 4 * kvh, kvh, d, false, 0, 0};
      SCOPED_TRACE(full.str());
      const Fp8Trial t(full);
      const int n = 3001;
      const size_t tail = size_t(full.n_kv - n) * t.row_stride;
      SA_CUDA(cudaMemset(t.dk8.get() + n * t.row_stride, 0xFF, tail));
      SA_CUDA(cudaMemset(t.dv8.get() + n * t.row_stride, 0xFF, tail));
      DevBuf<int> n_at(std::vector<int>{n});
      DevBuf<bf16> out(size_t(full.n_heads) * d);
      DevBuf<float> lse(full.n_heads);
      cuda::AttnParams p = t.params(out.get(), lse.get());
      p.n_kv_at = n_at.get();
      cuda::attention_decode(p, nullptr);
      const std::vector<float> got = test::to_float(out.host());
      std::vector<float> want, want_lse;
      t.cpu(&want, &want_lse, n);
      for (float x : got) ASSERT_FALSE(std::isnan(x));
      EXPECT_LE(test::rel_l2(got, want), 1e-2);
      EXPECT_EQ(lse_mismatches(lse.host(), want_lse, 1e-2f), 0);
    }
}

// The Hopper prefill kernel's fp8 pipeline on long key ranges: many tiles through its two-stage
// ring, a cached prefix before the block (causal_offset), and keys that end inside a tile.
TEST(CudaFp8, WgmmaPrefillOverManyTilesMatchesCpu) {
  SA_REQUIRE_GPU();
  if (!cuda::attn::device_has_wgmma()) GTEST_SKIP() << "no sm_90 device";
  for (int d : {64, 128}) {
    expect_matches_cpu(Case{1000, 9001, 8, 2, d, true, 8001, 0}, {cuda::attn::prefill_wgmma});
    expect_matches_cpu(Case{257, 6007, 8, 1, d, false, 0, 1}, {cuda::attn::prefill_wgmma});
  }
}

// A NaN code in the cache (only a NaN activation writes one) reaches every output that reads it,
// never a finite value: here one V code, which every query head of its kv head sees at its column.
// The other kv head's outputs stay finite.
TEST(CudaFp8, ANanCodeReachesTheOutput) {
  SA_REQUIRE_GPU();
  for (int d : {64, 128}) {
    SCOPED_TRACE("d " + std::to_string(d));
    const Case c{5, 300, 8, 2, d, false, 0, 0};
    const Fp8Trial t(c);
    const int key = 123, kvh = 1, col = d / 2 + 3, group = c.n_heads / c.n_kv_heads;
    const uint8_t nan_code = 0x7F;
    SA_CUDA(cudaMemcpy(t.dv8.get() + key * t.row_stride + kvh * d + col, &nan_code, 1,
                       cudaMemcpyHostToDevice));
    std::vector<Fn> fns = {cuda::attention_decode, cuda::attn::prefill_mma};
    if (cuda::attn::device_has_wgmma()) fns.push_back(cuda::attn::prefill_wgmma);
    for (Fn fn : fns) {
      std::vector<float> out, lse;
      t.gpu(fn, &out, &lse);
      int missed = 0, poisoned = 0;
      for (int i = 0; i < c.n_q; ++i)
        for (int h = 0; h < c.n_heads; ++h)
          for (int e = 0; e < d; ++e) {
            const float x = out[(size_t(i) * c.n_heads + h) * d + e];
            if (h / group == kvh && e == col) missed += !std::isnan(x);
            if (h / group != kvh) poisoned += !std::isfinite(x);
          }
      EXPECT_EQ(missed, 0);
      EXPECT_EQ(poisoned, 0);
    }
  }
}

TEST(CudaFp8, BadRowsAreRefused) {
  SA_REQUIRE_GPU();
  const Fp8Trial t(Case{130, 200, 8, 2, 128, true, 70, 0});
  DevBuf<bf16> out(size_t(130) * 8 * 128);
  DevBuf<float> lse(size_t(130) * 8);
  const cuda::AttnParams p = t.params(out.get(), lse.get());
  cuda::AttnParams bad = p;
  bad.kv_stride = 2 * 128;  // the 2 kv heads' bytes only: no room for the scales
  EXPECT_THROW(cuda::attention(bad, nullptr), Error);
  bad = p;
  bad.k = reinterpret_cast<const bf16*>(p.k8);  // both pointer kinds set
  EXPECT_THROW(cuda::attention(bad, nullptr), Error);
}

}  // namespace
}  // namespace starattn
