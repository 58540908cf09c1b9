// Products with weight matrices held as bf16 or as quantised GGUF blocks (weights.h), on the
// CPU backend's OpenMP threads:
//   y[n, w.rows()] = x[n, w.cols()] · w^T
// Two ways, chosen by the number of rows of x (Auto):
// - Gemv: each row of x is quantised to 8 bits once (quant_kernels.h) and every output is an
//   integer dot product with the weight blocks; row chunks of w are spread over the threads and
//   each chunk meets every row of x while it is in cache. Decode (n = 1) and small batches.
// - GemvF32: as Gemv with fp32 activations: chunks of rows dequantised to fp32, then sgemv. Exact
//   to fp32 rounding, but 2-2.5x slower than Gemv on the project's CPUs; for comparisons.
// - Panel: a thread dequantises a panel of weight rows to fp32 (bounded: about 1 MB) and runs one
//   single-threaded OpenBLAS sgemm of all n rows of x against it. Prefill. x is first rounded as
//   Gemv quantises it (8 bits per block of 32), so that a token's result does not depend on the
//   path, i.e. on how many tokens shared its forward call.
// Measured on the project's CPUs at n = 512 (bench/cpu_quant/NOTES.md), Panel ran about 4x
// faster than the integer products, because sgemm reaches far more of the core's FMA throughput
// than 8-bit dot products on AVX2 do, and the dequantisation is paid once per 512 rows of x; at
// n = 1 Gemv ran about 4x faster than Panel (whose time is then the dequantisation). So Auto
// takes Gemv up to kGemvMaxRows rows of x and Panel above.
#pragma once

#include "backend/cpu/quant_kernels.h"
#include "model/weights.h"

namespace starattn::cpu {

enum class QuantPath { Auto, Gemv, GemvF32, Panel };
inline constexpr int kGemvMaxRows = 4;

// Throws Error for a storage type without kernels (F32 goes through cpu::linear's sgemm).
void linear_blocks(const float* x, const WeightMatrix& w, float* y, int n,
                   QuantPath path = QuantPath::Auto,
                   const quant::KernelSet& kernels = quant::kernels());

// One product of a group: y[n, w->rows()] = x · w^T.
struct BlockProduct {
  const WeightMatrix* w;
  float* y;
};
// Products of one x [n, cols] with several matrices of `cols` columns (a layer's q, k and v; its
// gate and up), each as linear_blocks computes it. On the Gemv path x is quantised once and the
// row chunks of every matrix share one parallel loop: a decode step wakes the thread team once
// for the group instead of once per matrix, and the small matrices are split over the threads
// together. Other paths run the products one after another.
void linear_blocks_group(const float* x, const BlockProduct* products, int count, int n,
                         QuantPath path = QuantPath::Auto,
                         const quant::KernelSet& kernels = quant::kernels());

}  // namespace starattn::cpu
