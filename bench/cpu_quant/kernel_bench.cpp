// Times the CPU backend's products with quantised weights against each other and against the
// fp32 path, on the default model's shapes (SmolLM2-135M: d 576, FFN 1536, vocab 49152), one
// matrix at a time. The machine is shared: every variant runs `repeats` times interleaved with
// the others, and the minimum (the run least disturbed) and the median are printed.
//   kernel_bench [THREADS] [REPEATS]
// Variants, for a [rows, cols] weight and x [n, cols]:
//   f32       today's fp32 weights: sgemv (n = 1) or sgemm, slabs per thread (cpu::linear)
//   gemv_i8   8-bit activations and integer dot products (QuantPath::Gemv)
//   gemv_f32  rows dequantised to fp32 in chunks of 16, then sgemv (QuantPath::GemvF32)
//   panel     dequantised panels and sgemm (QuantPath::Panel)
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/ops.h"
#include "backend/cpu/quant_matmul.h"
#include "backend/cpu/threads.h"
#include "model/ggml_types.h"
#include "model/weights.h"

using namespace starattn;

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Random blocks with small positive fp16 scales (speed does not depend on the values).
WeightMatrix random_blocks(GgmlType t, int64_t rows, int64_t cols, std::mt19937& rng) {
  const size_t rb = ggml_row_bytes(t, cols), bb = ggml_block_bytes(t);
  std::vector<uint8_t> bytes(rb * rows);
  for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng());
  const int scale_at = t == GgmlType::Q6_K ? 208 : 0;
  for (size_t at = 0; at < bytes.size(); at += bb) {
    const uint16_t h = 0x2000;  // 2^-7
    std::memcpy(&bytes[at + scale_at], &h, 2);
    if (t == GgmlType::Q4_1 || t == GgmlType::Q4_K || t == GgmlType::Q5_K)
      std::memcpy(&bytes[at + 2], &h, 2);
  }
  return WeightMatrix::owned(t, rows, cols, std::move(bytes));
}

struct Case {
  const char* what;
  GgmlType type;
  int64_t rows, cols;
  int n;
};

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const int repeats = argc > 2 ? std::atoi(argv[2]) : 15;
  cpu::set_threads(threads);
  std::mt19937 rng(1);
  const Case cases[] = {
      {"ffn_up (decode)", GgmlType::Q4_1, 1536, 576, 1},
      {"ffn_down (decode)", GgmlType::Q4_1, 576, 1536, 1},
      {"attn_q (decode)", GgmlType::Q4_1, 576, 576, 1},
      {"lm_head (decode)", GgmlType::Q8_0, 49152, 576, 1},
      {"ffn_up (prefill 512)", GgmlType::Q4_1, 1536, 576, 512},
      {"ffn_down (prefill 512)", GgmlType::Q4_1, 576, 1536, 512},
      {"lm_head (prefill 64)", GgmlType::Q8_0, 49152, 576, 64},
  };
  std::printf("threads %d, repeats %d, kernels %s, load %s", threads, repeats,
              cpu::quant::kernels().name, [] {
                static char buf[64] = "?\n";
                if (FILE* f = std::fopen("/proc/loadavg", "r")) {
                  if (!std::fgets(buf, sizeof buf, f)) std::strcpy(buf, "?\n");
                  std::fclose(f);
                }
                return buf;
              }());
  std::printf("%-24s %-5s %10s %10s %10s %10s  (ms: min / median; GMAC/s of the min)\n", "case",
              "type", "f32", "gemv_i8", "gemv_f32", "panel");
  for (const Case& c : cases) {
    const WeightMatrix q = random_blocks(c.type, c.rows, c.cols, rng);
    const WeightMatrix f = WeightMatrix::f32(q.to_f32(), c.rows, c.cols);
    std::vector<float> x(static_cast<size_t>(c.n * c.cols)), y(static_cast<size_t>(c.n * c.rows));
    std::normal_distribution<float> dist;
    for (float& v : x) v = dist(rng);
    std::vector<std::function<void()>> run = {
        [&] { cpu::linear(x.data(), f, nullptr, y.data(), c.n); },
        [&] { cpu::linear_blocks(x.data(), q, y.data(), c.n, cpu::QuantPath::Gemv); },
        [&] { cpu::linear_blocks(x.data(), q, y.data(), c.n, cpu::QuantPath::GemvF32); },
        [&] { cpu::linear_blocks(x.data(), q, y.data(), c.n, cpu::QuantPath::Panel); },
    };
    const bool big = c.n > 64;
    std::vector<std::vector<double>> t(run.size());
    for (auto& r : run) r();  // warm-up
    for (int rep = 0; rep < (big ? std::max(3, repeats / 3) : repeats); ++rep)
      for (size_t v = 0; v < run.size(); ++v) {
        if (big && v == 1 + 1) continue;  // gemv_f32 is a decode variant
        const int inner = big ? 1 : 20;
        const double t0 = now();
        for (int i = 0; i < inner; ++i) run[v]();
        t[v].push_back((now() - t0) / inner);
      }
    std::printf("%-24s %-5s", c.what, ggml_type_name(c.type));
    for (auto& v : t) {
      if (v.empty()) {
        std::printf(" %21s", "-");
        continue;
      }
      std::sort(v.begin(), v.end());
      std::printf(" %6.3f/%6.3f %5.1f", v.front() * 1e3, v[v.size() / 2] * 1e3,
                  double(c.n) * c.rows * c.cols / v.front() / 1e9);
    }
    std::printf("\n");
  }
}
