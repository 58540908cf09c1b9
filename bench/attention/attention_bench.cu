// Times the CUDA attention kernels against the machine's measured ceilings.
//   prefill: causal, d=128, 32 q / 8 kv heads, 32K tokens; FLOPs = 4 * 32 * 128 * N^2 / 2;
//            also over fp8 KV rows
//   decode:  1 query over 128K keys, GQA 32/8, d=128;     bytes = 2 * 128K * 8 * 128 * 2 (K + V);
//            also over fp8 KV rows (bytes = 2 * 128K * 1056: E4M3 codes and fp32 scales)
//   shared context: S = 1, 8, 32, 64 sequences x 1 token over the same 128K unmasked keys (a
//            served step's sequences on one context), GQA 32/8, d=128: one call reads K + V once
//            (537 MB) for 4 * S * 32 * 128 * 128K FLOPs; against the kernels the dispatch used
//            before the shared-context kernel (split-KV decode, flash prefill) and against S
//            separate one-row decodes (S reads of K + V). Roofline = max(bytes at the copy rate,
//            FLOPs at the bf16 peak) / measured;
//   items:   32 sequences x 1 row over their own 2K keys, merged in place: one launch of
//            attention_merge_items against 32 x (attention + merge).
// CUDA events around each launch, warm-up first, median of repeats, random normal data.
// Build: bash bench/attention/build.sh (see bench/attention/NOTES.md). Usage: attention_bench [out]
// writes "name ms rate unit" lines to `out` for sdpa_baseline.py's side-by-side table.
// ATTN_BENCH_DECODE_ONLY=1 runs the copy ceiling and the decode rows alone (kernel variants).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "backend/cuda/attention.h"
#include "backend/cuda/attention_common.cuh"
#include "backend/cuda/kv_write.h"
#include "starattn/error.h"
#include "util/splitmix64.h"

namespace {

using bf16 = __nv_bfloat16;
constexpr double kPeakTflops = 989.0;  // H100 / H200 SXM dense bf16, the roofline the table quotes

void ck(cudaError_t e, const char* what) {
  if (e != cudaSuccess) starattn::fail(what, ": ", cudaGetErrorString(e));
}
#define BCK(call) ck((call), #call)

__global__ void fill_normal(bf16* x, size_t n, uint64_t seed) {
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n;
       i += size_t{gridDim.x} * blockDim.x) {
    const uint64_t h = starattn::splitmix64_at(seed, i);
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
  std::string name;
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

// The KV rows of the 8B shape in fp8 (E4M3 + a scale per token and kv head).
constexpr starattn::KvRowFormat kFp8Rows{starattn::KvType::Fp8, 8, 128, 2};

// p over fp8 KV rows of n_kv keys instead of bf16 k and v: quantised from them by the cache's own
// write into new buffers *k8 and *v8, which the caller frees.
starattn::cuda::AttnParams with_fp8_rows(starattn::cuda::AttnParams p, const bf16* k, const bf16* v,
                                         int n_kv, void** k8, void** v8) {
  BCK(cudaMalloc(k8, static_cast<size_t>(n_kv) * kFp8Rows.row_bytes()));
  BCK(cudaMalloc(v8, static_cast<size_t>(n_kv) * kFp8Rows.row_bytes()));
  starattn::cuda::KvWriteParams w;
  w.dst[0] = *k8, w.dst[1] = *v8, w.src[0] = k, w.src[1] = v, w.format = kFp8Rows, w.n = n_kv;
  starattn::cuda::write_kv_rows(w, nullptr);
  p.k = p.v = nullptr;
  p.kv_type = starattn::KvType::Fp8;
  p.k8 = static_cast<const uint8_t*>(*k8), p.v8 = static_cast<const uint8_t*>(*v8);
  p.kv_stride = static_cast<int64_t>(kFp8Rows.row_bytes());
  p.kv_scale_offset = kFp8Rows.scale_offset();
  return p;
}

int run(const char* out_path) {
  const char* only = std::getenv("ATTN_BENCH_DECODE_ONLY");
  const bool decode_only = only != nullptr && std::strcmp(only, "1") == 0;
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

  if (!decode_only) {  // causal prefill, 32K tokens
    const int n = 32768;
    bf16* q = random_bf16(static_cast<size_t>(n) * 32 * 128, 1);
    bf16* k = random_bf16(static_cast<size_t>(n) * 8 * 128, 2);
    bf16* v = random_bf16(static_cast<size_t>(n) * 8 * 128, 3);
    bf16* out = random_bf16(static_cast<size_t>(n) * 32 * 128, 4);
    float* lse = nullptr;
    BCK(cudaMalloc(&lse, static_cast<size_t>(n) * 32 * sizeof(float)));
    const auto p = params(q, k, v, out, lse, n, n, true);
    // The same over fp8 KV rows, quantised from these K and V by the cache's own write.
    void *k8 = nullptr, *v8 = nullptr;
    const auto p8 = with_fp8_rows(p, k, v, n, &k8, &v8);
    const double flops = 4.0 * 32 * 128 * double(n) * n / 2;
    const struct {
      const char* name;
      void (*fn)(const starattn::cuda::AttnParams&, cudaStream_t);
      const starattn::cuda::AttnParams& p;
    } kernels[] = {
        {"prefill causal 32K d128 GQA 32/8", starattn::cuda::attention_prefill, p},
        {"prefill causal 32K (mma.sync)", starattn::cuda::attn::prefill_mma, p},
        {"prefill causal 32K, fp8 KV", starattn::cuda::attention_prefill, p8},
        {"prefill causal 32K, fp8 KV (mma.sync)", starattn::cuda::attn::prefill_mma, p8}};
    for (const auto& kern : kernels) {
      const double ms = median_ms([&] { kern.fn(kern.p, nullptr); }, 2, 10);
      const double tflops = flops / (ms * 1e-3) / 1e12;
      rows.push_back({kern.name, ms, tflops, "TFLOP/s", tflops / kPeakTflops});
    }
    for (void* ptr : {(void*)q, (void*)k, (void*)v, (void*)out, (void*)lse, k8, v8})
      BCK(cudaFree(ptr));
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

  // The same decode over fp8 KV rows (E4M3 + a scale per token and head), quantised by the
  // cache's own write from random bf16; bytes = the rows' K + V bytes with their scales. 4 and 7
  // query tokens (causal) are a short question's first step: 16 and 28 rows a kv head.
  for (int n_q : {1, 4, 7}) {
    const int n_kv = 131072;
    bf16* q = random_bf16(static_cast<size_t>(n_q) * 32 * 128, 5);
    bf16* k = random_bf16(static_cast<size_t>(n_kv) * 8 * 128, 6);
    bf16* v = random_bf16(static_cast<size_t>(n_kv) * 8 * 128, 7);
    bf16* out = random_bf16(static_cast<size_t>(n_q) * 32 * 128, 8);
    float* lse = nullptr;
    BCK(cudaMalloc(&lse, static_cast<size_t>(n_q) * 32 * sizeof(float)));
    void *k8 = nullptr, *v8 = nullptr;
    const auto p = with_fp8_rows(params(q, nullptr, nullptr, out, lse, n_q, n_kv, n_q > 1), k, v,
                                 n_kv, &k8, &v8);
    const double ms = median_ms([&] { starattn::cuda::attention(p, nullptr); }, 10, 100);
    const double tbs = 2.0 * n_kv * kFp8Rows.row_bytes() / (ms * 1e-3) / 1e12;
    const std::string name = "decode " + std::to_string(n_q) + "q x 128K GQA 32/8" +
                             (n_q > 1 ? " causal" : "") + ", fp8 KV";
    rows.push_back({name, ms, tbs, "TB/s", tbs / copy_tbs});
    for (void* ptr : {(void*)q, (void*)k, (void*)v, (void*)out, (void*)lse, k8, v8})
      BCK(cudaFree(ptr));
  }

  if (!decode_only) {  // shared context: S sequences x 1 token over the same 128K keys, no mask
    const int n_kv = 131072, max_q = 64;
    bf16* q = random_bf16(static_cast<size_t>(max_q) * 32 * 128, 9);
    bf16* k = random_bf16(static_cast<size_t>(n_kv) * 8 * 128, 10);
    bf16* v = random_bf16(static_cast<size_t>(n_kv) * 8 * 128, 11);
    bf16* out = random_bf16(static_cast<size_t>(max_q) * 32 * 128, 12);
    float* lse = nullptr;
    BCK(cudaMalloc(&lse, static_cast<size_t>(max_q) * 32 * sizeof(float)));
    const double kv_bytes = 2.0 * n_kv * 8 * 128 * 2;  // K + V, read once by a shared call
    static char names[32][64];
    int named = 0;
    std::printf("\n%-46s %8s %9s %10s %9s %9s\n", "shared context (S x 1 token over 128K)", "ms",
                "GB moved", "TFLOP/s", "floor ms", "roofline");
    for (int s : {1, 8, 32, 64}) {
      const double flops = 4.0 * s * 32 * 128 * double(n_kv);
      // One call of S rows (the dispatch picks the kernel: decode for S = 1, shared above), the
      // kernels the dispatch used before the shared kernel existed (decode up to 8 rows, flash
      // prefill above), and S separate one-row decodes, which read the whole context S times:
      // what a served step costs without shared-context attention.
      const auto one = params(q, k, v, out, lse, s, n_kv, false);
      const struct {
        const char* impl;
        int reads;  // times the context's K + V come from memory
        std::function<void()> fn;
      } impls[] = {
          {"", 1, [&] { starattn::cuda::attention(one, nullptr); }},
          {" (decode kernel)", 1, [&] { starattn::cuda::attention_decode(one, nullptr); }},
          {" (prefill kernel)", 1, [&] { starattn::cuda::attention_prefill(one, nullptr); }},
          {" (S separate decodes)", s,
           [&] {
             for (int i = 0; i < s; ++i) {
               const size_t row = static_cast<size_t>(i) * 32 * 128;
               starattn::cuda::attention(
                   params(q + row, k, v, out + row, lse + i * 32, 1, n_kv, false), nullptr);
             }
           }},
      };
      double shared_ms = 0;
      for (const auto& im : impls) {
        const bool is_decode = std::string(im.impl) == " (decode kernel)";
        const bool is_prefill = std::string(im.impl) == " (prefill kernel)";
        if ((is_decode && s > 8) || (is_prefill && s <= 8) || (im.reads > 1 && s == 1)) continue;
        const double ms = median_ms(im.fn, 10, 50);
        if (im.impl[0] == '\0') shared_ms = ms;
        // The floor: the bytes at the measured copy rate or the FLOPs at the dense bf16 peak,
        // whichever is slower; roofline = floor / measured.
        const double bytes = kv_bytes * im.reads;
        const double floor_ms =
            1e3 * std::max(bytes / (copy_tbs * 1e12), flops / (kPeakTflops * 1e12));
        const double tbs = bytes / (ms * 1e-3) / 1e12;
        std::snprintf(names[named], sizeof names[named], "shared S=%d x 128K GQA 32/8%s", s,
                      im.impl);
        rows.push_back({names[named++], ms, tbs, "TB/s", floor_ms / ms});
        std::printf("%-46s %8.3f %9.1f %10.1f %9.3f %8.1f%%", names[named - 1], ms, bytes / 1e9,
                    flops / (ms * 1e-3) / 1e12, floor_ms, 100 * floor_ms / ms);
        if (im.reads > 1 && shared_ms > 0)
          std::printf("   (%.1fx the shared call)", ms / shared_ms);
        std::printf("\n");
      }
    }
    for (void* ptr : {(void*)q, (void*)k, (void*)v, (void*)out, (void*)lse}) BCK(cudaFree(ptr));
  }
  if (!decode_only) {  // items: 32 sequences x 1 new row over 2048 own keys, merged in place
    const int n_seq = 32, own = 2048;
    bf16* q = random_bf16(static_cast<size_t>(n_seq) * 32 * 128, 13);
    bf16* k = random_bf16(static_cast<size_t>(n_seq) * own * 8 * 128, 14);
    bf16* v = random_bf16(static_cast<size_t>(n_seq) * own * 8 * 128, 15);
    bf16* out = random_bf16(static_cast<size_t>(n_seq) * 32 * 128, 16);
    bf16* part = random_bf16(static_cast<size_t>(n_seq) * 32 * 128, 17);
    float *lse = nullptr, *part_lse = nullptr;
    BCK(cudaMalloc(&lse, static_cast<size_t>(n_seq) * 32 * sizeof(float)));
    BCK(cudaMalloc(&part_lse, static_cast<size_t>(n_seq) * 32 * sizeof(float)));
    BCK(cudaMemset(lse, 0, static_cast<size_t>(n_seq) * 32 * sizeof(float)));
    std::vector<starattn::cuda::AttnItem> items(n_seq);
    for (int i = 0; i < n_seq; ++i) {
      items[i].k = k + static_cast<size_t>(i) * own * 8 * 128;
      items[i].v = v + static_cast<size_t>(i) * own * 8 * 128;
      items[i].q_row = i, items[i].n_q = 1, items[i].n_kv = own, items[i].causal_offset = own - 1;
    }
    const auto batch = params(q, nullptr, nullptr, out, lse, n_seq, 0, false);
    const double bytes = 2.0 * n_seq * own * 8 * 128 * 2;
    const double one = median_ms(
        [&] { starattn::cuda::attention_merge_items(batch, items.data(), n_seq, nullptr); }, 10,
        50);
    const double each = median_ms(
        [&] {
          for (int i = 0; i < n_seq; ++i) {
            auto p = params(q + static_cast<size_t>(i) * 32 * 128, const_cast<bf16*>(items[i].k),
                            const_cast<bf16*>(items[i].v), part + static_cast<size_t>(i) * 32 * 128,
                            part_lse + i * 32, 1, own, true);
            starattn::cuda::attention(p, nullptr);
            starattn::cuda::merge_attention(out + static_cast<size_t>(i) * 32 * 128, lse + i * 32,
                                            part + static_cast<size_t>(i) * 32 * 128,
                                            part_lse + i * 32, 1, 32, 128, nullptr);
          }
        },
        10, 50);
    rows.push_back({"items 32 seq x 1 row x 2K keys", one, bytes / (one * 1e-3) / 1e12, "TB/s",
                    bytes / (one * 1e-3) / 1e12 / copy_tbs});
    rows.push_back({"items 32 seq (attention+merge each)", each, bytes / (each * 1e-3) / 1e12,
                    "TB/s", bytes / (each * 1e-3) / 1e12 / copy_tbs});
    for (void* ptr :
         {(void*)q, (void*)k, (void*)v, (void*)out, (void*)part, (void*)lse, (void*)part_lse})
      BCK(cudaFree(ptr));
  }

  std::printf("\n%-44s %10s %12s %8s\n", "ours", "ms", "rate", "roofline");
  for (const Row& r : rows)
    std::printf("%-44s %10.3f %7.2f %-7s %7.1f%%\n", r.name.c_str(), r.ms, r.rate, r.unit,
                100 * r.ratio);
  if (out_path != nullptr) {
    FILE* f = std::fopen(out_path, "w");
    if (f == nullptr) starattn::fail("cannot write ", out_path);
    for (const Row& r : rows)
      std::fprintf(f, "%s|%.6f|%.4f|%s\n", r.name.c_str(), r.ms, r.rate, r.unit);
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
