#include "backend/cpu/quant_matmul.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <vector>

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
// Products smaller than this (multiply-adds) run on one thread: waking the team costs more.
constexpr double kParallelMinMacs = 2e6;
// Largest fp32 panel of dequantised weight rows in Panel, bytes per thread.
constexpr int64_t kPanelBytes = int64_t{1} << 20;

int team_size(double macs, int64_t units) {
  if (macs < kParallelMinMacs) return 1;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(omp_get_max_threads(), units)));
}

void gemv_path(const float* x, const WeightMatrix& w, float* y, int n, const KernelSet& ks,
               const TypeKernels& k) {
  const int64_t rows = w.rows(), cols = w.cols();
  std::vector<ActBlock> xq;
  if (k.gemv_q8) {
    const int64_t nb = cols / kActBlock;
    xq.resize(static_cast<size_t>(n * nb));
#pragma omp parallel for schedule(static) if (n > 16)
    for (int t = 0; t < n; ++t) ks.quantize_act(x + t * cols, cols, xq.data() + t * nb);
  }
  const int64_t chunks = (rows + kGemvChunk - 1) / kGemvChunk;
  const int threads = team_size(static_cast<double>(n) * rows * cols, chunks);
#pragma omp parallel for schedule(dynamic) num_threads(threads)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t r0 = c * kGemvChunk, m = std::min(kGemvChunk, rows - r0);
    for (int t = 0; t < n; ++t) {
      float* yt = y + t * rows + r0;
      if (k.gemv_q8)
        k.gemv_q8(w.row(r0), w.row_bytes(), xq.data() + t * (cols / kActBlock), cols, yt, m);
      else
        k.gemv_f32(w.row(r0), w.row_bytes(), x + t * cols, cols, yt, m);
    }
  }
}

// Gemv with fp32 activations: a chunk of rows dequantised into a small buffer, then sgemv.
void gemv_f32_path(const float* x, const WeightMatrix& w, float* y, int n, const TypeKernels& k) {
  const int64_t rows = w.rows(), cols = w.cols();
  const int64_t chunks = (rows + kGemvChunk - 1) / kGemvChunk;
  const int threads = team_size(static_cast<double>(n) * rows * cols, chunks);
#pragma omp parallel for schedule(dynamic) num_threads(threads)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t r0 = c * kGemvChunk, m = std::min(kGemvChunk, rows - r0);
    thread_local std::vector<float> buf;
    buf.resize(static_cast<size_t>(kGemvChunk * cols));
    k.dequantize(w.row(r0), w.row_bytes(), cols, buf.data(), m);
    for (int t = 0; t < n; ++t)
      cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(m), static_cast<int>(cols), 1.0f,
                  buf.data(), static_cast<int>(cols), x + t * cols, 1, 0.0f, y + t * rows + r0, 1);
  }
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
  const int threads = team_size(static_cast<double>(n) * rows * cols, (rows + 15) / 16);
  // A whole number of panels per thread, of equal size, so no thread waits for a last one.
  const int64_t per_thread = (rows + static_cast<int64_t>(threads) * max_rows - 1) /
                             (static_cast<int64_t>(threads) * max_rows);
  const int64_t panels = per_thread * threads;
  const int64_t panel_rows = (rows + panels - 1) / panels;
#pragma omp parallel for schedule(dynamic) num_threads(threads)
  for (int64_t p = 0; p < panels; ++p) {
    const int64_t r0 = p * panel_rows, m = std::min(panel_rows, rows - r0);
    if (m <= 0) continue;
    thread_local std::vector<float> panel;
    panel.resize(static_cast<size_t>(panel_rows * cols));
    k.dequantize(w.row(r0), w.row_bytes(), cols, panel.data(), m);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, static_cast<int>(m),
                static_cast<int>(cols), 1.0f, x, static_cast<int>(cols), panel.data(),
                static_cast<int>(cols), 0.0f, y + r0, static_cast<int>(rows));
  }
}

}  // namespace

void linear_blocks(const float* x, const WeightMatrix& w, float* y, int n, QuantPath path,
                   const KernelSet& kernels) {
  const TypeKernels* k = kernels.of(w.type());
  SA_CHECK(k, "the CPU backend has no kernels for weights of type ", ggml_type_name(w.type()));
  if (n <= 0 || w.rows() == 0) return;
  blas_single_threaded();
  const bool gemv = path == QuantPath::Gemv || (path == QuantPath::Auto && n <= kGemvMaxRows);
  if (path == QuantPath::GemvF32)
    gemv_f32_path(x, w, y, n, *k);
  else if (gemv)
    gemv_path(x, w, y, n, kernels, *k);
  else
    panel_path(x, w, y, n, kernels, *k);
}

}  // namespace starattn::cpu
