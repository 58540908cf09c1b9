// fp32 CPU building blocks of the Llama forward pass. Row-major; shapes on every pointer.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <vector>

#include "model/config.h"
#include "model/weights.h"

namespace starattn::cpu {

// y[n, out] = x[n, in] @ w[out, in]^T (+ bias[out] when not null). OpenBLAS sgemm.
void linear(const float* x, const float* w, const float* bias, float* y, int n, int in, int out);
// The same for a matrix in any storage: fp32 through the overload above (the reference), bf16 and
// quantised blocks through linear_blocks (quant_matmul.h). x[n, w.cols()], y[n, w.rows()].
void linear(const float* x, const WeightMatrix& w, const float* bias, float* y, int n);

// One output of linear_group: y[n, w->rows()] = x @ w^T (+ bias[w->rows()] when not null).
struct LinearOut {
  const WeightMatrix* w;
  const float* bias;
  float* y;
};
// Several products of the same x [n, in] (a layer's q, k, v; its gate and up), each as linear()
// computes it. Quantised and bf16 matrices go through linear_blocks_group together (one parallel
// loop in decode); fp32 ones one by one.
void linear_group(const float* x, std::initializer_list<LinearOut> outs, int n);

// y[n, d] = x / rms(x) * w, per row.
void rmsnorm(const float* x, const float* w, float* y, int n, int d, float eps);

// RoPE angles for a set of positions: cos/sin tables [n, head_dim/2], with llama3 scaling.
struct RopeTable {
  std::vector<float> cos, sin;
  int half = 0;
};
RopeTable rope_table(const std::vector<float>& inv_freq, const int* positions, int n);
// Rotates pairs (i, i + head_dim/2) of every head of x[n, n_heads, head_dim] in place.
void apply_rope(float* x, const RopeTable& t, int n, int n_heads, int head_dim);

// gate[n, f] = silu(gate) * up, in place.
void swiglu(float* gate, const float* up, int64_t count);

// x[count] += y[count]
void add_inplace(float* x, const float* y, int64_t count);

}  // namespace starattn::cpu
