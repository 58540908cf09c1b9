#include "backend/cpu/quant_matmul.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <vector>

#include "backend/cpu/parallel.h"
#include "backend/cpu/threads.h"
#include "starattn/error.h"

namespace starattn::cpu {
namespace {

using quant::ActBlock;
using quant::kActBlock;
using quant::KernelSet;
using quant::TypeKernels;

// Rows of w per unit of work in Gemv: a multiple of the kernels' four-row groups, small enough
// that a chunk of the largest rows (14336 Q8_0 values, 15 KB) stays in L1 while the rows of x
// pass, large enough that the scheduling stays cheap.
constexpr int64_t kGemvChunk = 16;
// Products smaller than this (multiply-adds) run on one thread: waking the team costs more. A
// team that is awake (OpenMP threads spin a while after each region) starts in about a
// microsecond; 1e5 multiply-adds take about 6 us on one core with 8-bit activations, so a
// decode step's smallest group (q, k and v of SmolLM2: 5.5e5) is split.
constexpr double kParallelMinMacs = 1e5;
// Largest fp32 panel of dequantised weight rows in Panel, bytes per thread.
constexpr int64_t kPanelBytes = int64_t{1} << 20;

// Gemv over a group of matrices with the same cols: x quantised once (when a kernel takes 8-bit
// activations), then every matrix's chunks of kGemvChunk rows in one parallel loop.
void gemv_group(const float* x, const BlockProduct* products, int count, int n,
                const KernelSet& ks) {
  constexpr int kMost = 8;  // products per loop (fixed arrays: nothing allocated per call)
  if (count > kMost) {
    gemv_group(x, products, kMost, n, ks);
    gemv_group(x, products + kMost, count - kMost, n, ks);
    return;
  }
  const int64_t cols = products[0].w->cols();
  std::array<const TypeKernels*, kMost> k{};
  std::array<int64_t, kMost + 1> first_chunk{};  // chunk index where each product starts
  bool any_q8 = false;
  double macs = 0;
  for (int i = 0; i < count; ++i) {
    const WeightMatrix& w = *products[i].w;
    SA_CHECK(w.cols() == cols, "a group of products has matrices of ", cols, " and ", w.cols(),
             " columns");
    k[i] = ks.of(w.type());
    any_q8 = any_q8 || k[i]->gemv_q8;
    first_chunk[i + 1] = first_chunk[i] + (w.rows() + kGemvChunk - 1) / kGemvChunk;
    macs += static_cast<double>(n) * w.rows() * cols;
  }
  // The caller's buffer for the quantised x, kept between calls: no allocation per decode step.
  thread_local std::vector<ActBlock> xq;
  const int64_t nb = cols / kActBlock;
  if (any_q8) {
    xq.resize(static_cast<size_t>(n * nb));
#pragma omp parallel for schedule(static) if (n > 16)
    for (int t = 0; t < n; ++t) ks.quantize_act(x + t * cols, cols, xq.data() + t * nb);
  }
  const ActBlock* xa = xq.data();
  parallel_for(first_chunk[count], macs, kParallelMinMacs, [&](int64_t c) {
    int i = 0;
    while (c >= first_chunk[i + 1]) ++i;
    const WeightMatrix& w = *products[i].w;
    const int64_t rows = w.rows(), r0 = (c - first_chunk[i]) * kGemvChunk;
    const int64_t m = std::min(kGemvChunk, rows - r0);
    for (int t = 0; t < n; ++t) {
      float* yt = products[i].y + t * rows + r0;
      if (k[i]->gemv_q8)
        k[i]->gemv_q8(w.row(r0), w.row_bytes(), xa + t * nb, cols, yt, m);
      else
        k[i]->gemv_f32(w.row(r0), w.row_bytes(), x + t * cols, cols, yt, m);
    }
  });
}

// Gemv with fp32 activations: a chunk of rows dequantised into a small buffer, then sgemv.
void gemv_f32_path(const float* x, const WeightMatrix& w, float* y, int n, const TypeKernels& k) {
  const int64_t rows = w.rows(), cols = w.cols();
  const int64_t chunks = (rows + kGemvChunk - 1) / kGemvChunk;
  parallel_for(chunks, static_cast<double>(n) * rows * cols, kParallelMinMacs, [&](int64_t c) {
    const int64_t r0 = c * kGemvChunk, m = std::min(kGemvChunk, rows - r0);
    thread_local std::vector<float> buf;
    buf.resize(static_cast<size_t>(kGemvChunk * cols));
    k.dequantize(w.row(r0), w.row_bytes(), cols, buf.data(), m);
    for (int t = 0; t < n; ++t)
      cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(m), static_cast<int>(cols), 1.0f,
                  buf.data(), static_cast<int>(cols), x + t * cols, 1, 0.0f, y + t * rows + r0, 1);
  });
}

// x [n, cols] rounded as Gemv rounds it: each block of 32 to d q (quant_kernels.h). Panel
// multiplies these values, so a token's outputs do not depend on whether it ran alone (Gemv) or
// with others (Panel), up to fp32 summation order: the engine's invariants (star on H ranks ==
// star on 1 rank) need that, since ranks group tokens into forward calls differently.
std::vector<float> as_gemv_sees_it(const float* x, int n, int64_t cols, const KernelSet& ks) {
  std::vector<float> out(static_cast<size_t>(n * cols));
#pragma omp parallel for schedule(static) if (n > 16)
  for (int t = 0; t < n; ++t) {
    ActBlock a[64];
    for (int64_t c0 = 0; c0 < cols; c0 += 64 * kActBlock) {
      const int64_t m = std::min<int64_t>(64 * kActBlock, cols - c0);
      ks.quantize_act(x + t * cols + c0, m, a);
      for (int64_t i = 0; i < m; ++i)
        out[t * cols + c0 + i] = a[i / kActBlock].d * a[i / kActBlock].q[i % kActBlock];
    }
  }
  return out;
}

void panel_path(const float* x_in, const WeightMatrix& w, float* y, int n, const KernelSet& ks,
                const TypeKernels& k) {
  const int64_t rows = w.rows(), cols = w.cols();
  std::vector<float> rounded;
  if (k.gemv_q8) rounded = as_gemv_sees_it(x_in, n, cols, ks);
  const float* x = k.gemv_q8 ? rounded.data() : x_in;
  const int64_t max_rows = std::max<int64_t>(16, kPanelBytes / (4 * cols) / 16 * 16);
  const double macs = static_cast<double>(n) * rows * cols;
  const int threads =
      macs < kParallelMinMacs
          ? 1
          : static_cast<int>(std::clamp<int64_t>((rows + 15) / 16, 1, omp_get_max_threads()));
  // A whole number of panels per thread, of equal size, so no thread waits for a last one.
  const int64_t per_thread = (rows + static_cast<int64_t>(threads) * max_rows - 1) /
                             (static_cast<int64_t>(threads) * max_rows);
  const int64_t panels = per_thread * threads;
  const int64_t panel_rows = (rows + panels - 1) / panels;
  parallel_for(panels, macs, kParallelMinMacs, [&](int64_t p) {
    const int64_t r0 = p * panel_rows, m = std::min(panel_rows, rows - r0);
    if (m <= 0) return;
    thread_local std::vector<float> panel;
    panel.resize(static_cast<size_t>(panel_rows * cols));
    k.dequantize(w.row(r0), w.row_bytes(), cols, panel.data(), m);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, static_cast<int>(m),
                static_cast<int>(cols), 1.0f, x, static_cast<int>(cols), panel.data(),
                static_cast<int>(cols), 0.0f, y + r0, static_cast<int>(rows));
  });
}

const TypeKernels& kernels_of(const KernelSet& kernels, const WeightMatrix& w) {
  const TypeKernels* k = kernels.of(w.type());
  SA_CHECK(k, "the CPU backend has no kernels for weights of type ", ggml_type_name(w.type()));
  return *k;
}

bool takes_gemv(QuantPath path, int n) {
  return path == QuantPath::Gemv || (path == QuantPath::Auto && n <= kGemvMaxRows);
}

}  // namespace

void linear_blocks(const float* x, const WeightMatrix& w, float* y, int n, QuantPath path,
                   const KernelSet& kernels) {
  const BlockProduct one{&w, y};
  linear_blocks_group(x, &one, 1, n, path, kernels);
}

void linear_blocks_group(const float* x, const BlockProduct* products, int count, int n,
                         QuantPath path, const KernelSet& kernels) {
  for (int i = 0; i < count; ++i) (void)kernels_of(kernels, *products[i].w);
  if (n <= 0 || count <= 0) return;
  blas_single_threaded();
  if (takes_gemv(path, n)) {
    gemv_group(x, products, count, n, kernels);
    return;
  }
  for (int i = 0; i < count; ++i) {
    const WeightMatrix& w = *products[i].w;
    if (w.rows() == 0) continue;
    const TypeKernels& k = kernels_of(kernels, w);
    if (path == QuantPath::GemvF32)
      gemv_f32_path(x, w, products[i].y, n, k);
    else
      panel_path(x, w, products[i].y, n, kernels, k);
  }
}

}  // namespace starattn::cpu
