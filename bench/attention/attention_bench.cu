// Times the CUDA attention kernels against the machine's measured ceilings.
//   prefill: causal, d=128, 32 q / 8 kv heads, 32K tokens; FLOPs = 4 * 32 * 128 * N^2 / 2
//   decode:  1 query over 128K keys, GQA 32/8, d=128;     bytes = 2 * 128K * 8 * 128 * 2 (K + V)
// CUDA events around each launch, warm-up first, median of repeats, random normal data.
// Build: bash build-cuda-att/build.sh (see bench/attention/NOTES.md). Usage: attention_bench [out]
// writes "name ms rate unit" lines to `out` for sdpa_baseline.py's side-by-side table.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <vector>

#include "backend/cuda/attention.h"
#include "backend/cuda/attention_common.cuh"
#include "starattn/error.h"

namespace {

using bf16 = __nv_bfloat16;
constexpr double kPeakTflops = 989.0;  // H100 SXM dense bf16, the roofline the table quotes

void ck(cudaError_t e, const char* what) {
  if (e != cudaSuccess) starattn::fail(what, ": ", cudaGetErrorString(e));
}
#define BCK(call) ck((call), #call)

__global__ void fill_normal(bf16* x, size_t n, uint64_t seed) {
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n;
       i += size_t{gridDim.x} * blockDim.x) {
    uint64_t h = seed + (i + 1) * 0x9E3779B97F4A7C15ull;
    h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
    h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
    h ^= h >> 31;
    const float u1 = (static_cast<float>(h >> 40) + 0.5f) / 16777216.0f;
    const float u2 = (static_cast<float>(h & 0xFFFFFF) + 0.5f) / 16777216.0f;
    x[i] = __float2bfloat16_rn(sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2));
  }
}

bf16* random_bf16(size_t n, uint64_t seed) {
  bf16* p = nullptr;
  BCK(cudaMalloc(&p, n * sizeof(bf16)));
  fill_normal<<<2048, 256>>>(p, n, seed);
  BCK(cudaGetLastError());
  return p;
}

// Median milliseconds of `reps` timed runs after `warm` untimed ones.
double median_ms(const std::function<void()>& fn, int warm, int reps) {
  for (int i = 0; i < warm; ++i) fn();
  BCK(cudaDeviceSynchronize());
  cudaEvent_t a, b;
  BCK(cudaEventCreate(&a));
  BCK(cudaEventCreate(&b));
  std::vector<float> t(reps);
  for (int i = 0; i < reps; ++i) {
    BCK(cudaEventRecord(a));
    fn();
    BCK(cudaEventRecord(b));
    BCK(cudaEventSynchronize(b));
    BCK(cudaEventElapsedTime(&t[i], a, b));
  }
  BCK(cudaEventDestroy(a));
  BCK(cudaEventDestroy(b));
  std::sort(t.begin(), t.end());
  return t[reps / 2];
}

struct Row {
  const char* name;
  double ms, rate;
  const char* unit;
  double ratio;
};

starattn::cuda::AttnParams params(bf16* q, bf16* k, bf16* v, bf16* out, float* lse, int n_q,
                                  int n_kv, bool causal) {
  starattn::cuda::AttnParams p;
  p.q = q, p.k = k, p.v = v, p.out = out, p.lse = lse;
  p.n_q = n_q, p.n_kv = n_kv, p.n_heads = 32, p.n_kv_heads = 8, p.head_dim = 128;
  p.q_stride = p.out_stride = 32 * 128, p.kv_stride = 8 * 128;
  p.scale = 1.0f / std::sqrt(128.0f), p.causal = causal, p.causal_offset = n_kv - n_q;
  return p;
}

int run(const char* out_path) {
  cudaDeviceProp prop;
  BCK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s, %d SMs, L2 %d MB\n", prop.name, prop.multiProcessorCount,
              prop.l2CacheSize >> 20);
  std::vector<Row> rows;

  // Ceiling for bytes: a 1 GiB device-to-device copy, counting bytes read plus written.
  const size_t copy_bytes = size_t{1} << 30;
  void *src = nullptr, *dst = nullptr;
  BCK(cudaMalloc(&src, copy_bytes));
  BCK(cudaMalloc(&dst, copy_bytes));
  BCK(cudaMemset(src, 1, copy_bytes));
  const double copy_ms = median_ms(
      [&] { BCK(cudaMemcpyAsync(dst, src, copy_bytes, cudaMemcpyDeviceToDevice)); }, 3, 20);
  const double copy_tbs = 2.0 * copy_bytes / (copy_ms * 1e-3) / 1e12;
  rows.push_back({"d2d copy (ceiling)", copy_ms, copy_tbs, "TB/s", 1.0});
  BCK(cudaFree(src));
  BCK(cudaFree(dst));

  {  // causal prefill, 32K tokens
    const int n = 32768;
    bf16* q = random_bf16(static_cast<size_t>(n) * 32 * 128, 1);
    bf16* k = random_bf16(static_cast<size_t>(n) * 8 * 128, 2);
    bf16* v = random_bf16(static_cast<size_t>(n) * 8 * 128, 3);
    bf16* out = random_bf16(static_cast<size_t>(n) * 32 * 128, 4);
    float* lse = nullptr;
    BCK(cudaMalloc(&lse, static_cast<size_t>(n) * 32 * sizeof(float)));
    const auto p = params(q, k, v, out, lse, n, n, true);
    const double flops = 4.0 * 32 * 128 * double(n) * n / 2;
    const struct {
      const char* name;
      void (*fn)(const starattn::cuda::AttnParams&, cudaStream_t);
    } kernels[] = {{"prefill causal 32K d128 GQA 32/8", starattn::cuda::attention_prefill},
                   {"prefill causal 32K (mma.sync)", starattn::cuda::attn::prefill_mma}};
    for (const auto& kern : kernels) {
      const double ms = median_ms([&] { kern.fn(p, nullptr); }, 2, 10);
      const double tflops = flops / (ms * 1e-3) / 1e12;
      rows.push_back({kern.name, ms, tflops, "TFLOP/s", tflops / kPeakTflops});
    }
    for (void* ptr : {(void*)q, (void*)k, (void*)v, (void*)out, (void*)lse}) BCK(cudaFree(ptr));
  }
  for (int n_q : {1, 4}) {  // decode over 128K keys (non-causal: every key visible)
    const int n_kv = 131072;
    bf16* q = random_bf16(static_cast<size_t>(n_q) * 32 * 128, 5);
    bf16* k = random_bf16(static_cast<size_t>(n_kv) * 8 * 128, 6);
    bf16* v = random_bf16(static_cast<size_t>(n_kv) * 8 * 128, 7);
    bf16* out = random_bf16(static_cast<size_t>(n_q) * 32 * 128, 8);
    float* lse = nullptr;
    BCK(cudaMalloc(&lse, static_cast<size_t>(n_q) * 32 * sizeof(float)));
    const auto p = params(q, k, v, out, lse, n_q, n_kv, n_q > 1);
    const double ms = median_ms([&] { starattn::cuda::attention(p, nullptr); }, 10, 100);
    const double tbs = 2.0 * n_kv * 8 * 128 * 2 / (ms * 1e-3) / 1e12;
    rows.push_back({n_q == 1 ? "decode 1q x 128K GQA 32/8" : "decode 4q x 128K GQA 32/8 causal", ms,
                    tbs, "TB/s", tbs / copy_tbs});
    for (void* ptr : {(void*)q, (void*)k, (void*)v, (void*)out, (void*)lse}) BCK(cudaFree(ptr));
  }

  std::printf("\n%-36s %10s %12s %8s\n", "ours", "ms", "rate", "roofline");
  for (const Row& r : rows)
    std::printf("%-36s %10.3f %7.1f %-7s %7.1f%%\n", r.name, r.ms, r.rate, r.unit, 100 * r.ratio);
  if (out_path != nullptr) {
    FILE* f = std::fopen(out_path, "w");
    if (f == nullptr) starattn::fail("cannot write ", out_path);
    for (const Row& r : rows) std::fprintf(f, "%s|%.6f|%.4f|%s\n", r.name, r.ms, r.rate, r.unit);
    std::fclose(f);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc > 1 ? argv[1] : nullptr);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "attention_bench: %s\n", e.what());
    return 1;
  }
}
