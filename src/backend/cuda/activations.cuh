// Activation math shared by kernels that must round identically (SwiGLU alone and fused into the
// GEMV).
#pragma once

#include <cuda_runtime.h>

namespace starattn::cuda {

// silu(g) * u in fp32 (g and u already rounded to bf16 by the caller).
__device__ __forceinline__ float silu_mul(float g, float u) {
  return g / (1.0f + __expf(-g)) * u;
}

}  // namespace starattn::cuda
