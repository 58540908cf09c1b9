// RMSNorm: y = x / rms(x) * w per row, fp32 statistics. Reads the fp32 residual stream and writes
// either bf16 (the input of the next GEMM) or fp32 (the final hidden state handed to the host).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace starattn::cuda {

struct RmsNormParams {
  const float* x = nullptr;         // [n, d], row stride d
  const float* w = nullptr;         // [d]
  __nv_bfloat16* y_bf16 = nullptr;  // [n, d]; exactly one of y_bf16, y_f32 is set
  float* y_f32 = nullptr;           // [n, d]; may equal x (each element is read before written)
  int n = 0;
  int d = 0;
  float eps = 1e-5f;
};

void rmsnorm(const RmsNormParams& p, cudaStream_t stream);

}  // namespace starattn::cuda
