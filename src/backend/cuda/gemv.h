// y[n, out] (+)= x[n, in] · W[out, in]^T for a few rows (decode): a bandwidth-bound kernel that
// streams each weight row once with 16-byte loads, several in flight per lane, and keeps the few
// activation rows in L1. cuBLAS's GEMM for n = 1 reads the weights at well under the copy rate.
#pragma once

#include <cuda_runtime.h>

#include "backend/cuda/gemm.h"

namespace starattn::cuda {

inline constexpr int kGemvMaxRows = 8;

// Whether gemv() takes these parameters: 1..kGemvMaxRows rows, in and both strides multiples of
// 8 elements, x and W 16-byte aligned. A quantised W (p.wq) goes to gemv_quant (quant_gemv.h),
// with its own conditions.
bool gemv_supported(const LinearParams& p);
void gemv(const LinearParams& p, cudaStream_t stream);
// The FFN's gate/up projection and SwiGLU in one kernel: with W = [W_gate; W_up] ([out, in],
// out = 2 f) writes y_bf16[i, j] = silu(g) * u for j < f, where g and u are rows j and f + j of
// x · W^T rounded to bf16, as gemv() then swiglu() (elementwise.h) round them.
void gemv_swiglu(const LinearParams& p, cudaStream_t stream);

}  // namespace starattn::cuda
