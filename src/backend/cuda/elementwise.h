// Element-wise ops of the forward pass: SwiGLU, bias add, residual add; and a row copy whose
// destination row is read from device memory.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace starattn::cuda {

// out[i, j] = silu(gate[i, j]) * up[i, j] with gate = gate_up[i, 0:f], up = gate_up[i, f:2f] (the
// fused gate/up GEMM output); fp32 arithmetic, bf16 result.
struct SwigluParams {
  const __nv_bfloat16* gate_up = nullptr;  // [n, 2 f], row stride gu_stride
  int64_t gu_stride = 0;
  __nv_bfloat16* out = nullptr;  // [n, f] contiguous
  int n = 0;
  int f = 0;
};
void swiglu(const SwigluParams& p, cudaStream_t stream);

// y[i, j] += bias[j] in fp32, rounded once to bf16.
struct BiasAddParams {
  __nv_bfloat16* y = nullptr;  // [n, m], row stride y_stride
  int64_t y_stride = 0;
  const float* bias = nullptr;  // [m]
  int n = 0;
  int m = 0;
};
void bias_add(const BiasAddParams& p, cudaStream_t stream);

// x[i] += y[i]: the fp32 residual stream plus a bf16 branch output.
struct ResidualAddParams {
  float* x = nullptr;                // [count]
  const __nv_bfloat16* y = nullptr;  // [count]
  int64_t count = 0;
};
void residual_add(const ResidualAddParams& p, cudaStream_t stream);

// For a = 0, 1: dst[a] + (*row_at) * row_bytes <- src[a][0, n * row_bytes) (a step's K and V in
// one launch). The row is read when the kernel runs, so a captured CUDA graph appends each decode
// step's KV at the next row.
struct CopyRowsAtParams {
  void* dst[2] = {};
  const void* src[2] = {};
  const int* row_at = nullptr;  // device
  size_t row_bytes = 0;
  int n = 0;
};
void copy_rows_at(const CopyRowsAtParams& p, cudaStream_t stream);

}  // namespace starattn::cuda
