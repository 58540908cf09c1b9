// Programmatic dependent launch (sm_90 and newer): a kernel launched with launch_pdl() may start
// while the kernel before it on the stream is still finishing, so its blocks can fetch what does
// not depend on that kernel (a GEMV's weights) during the other's tail. Such a kernel must call
// pdl_wait() before it reads anything the kernel before wrote, and before it writes anything. A
// kernel that calls pdl_allow_dependents() lets the next one launch once all its blocks have
// started, instead of when they have all finished. Both are no-ops before sm_90.
#pragma once

#include <cuda_runtime.h>

#include <utility>

#include "backend/cuda/cuda_check.h"

namespace starattn::cuda {

__device__ __forceinline__ void pdl_allow_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  cudaTriggerProgrammaticLaunchCompletion();
#endif
}

__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  cudaGridDependencySynchronize();
#endif
}

// Whether the current device takes programmatic dependent launches (compute capability >= 9).
bool pdl_supported();

// kernel<<<grid, block, 0, stream>>>(args...), allowed to overlap the previous kernel when the
// device supports it.
template <typename... Params, typename... Args>
void launch_pdl(void (*kernel)(Params...), dim3 grid, dim3 block, cudaStream_t stream,
                Args&&... args) {
  cudaLaunchAttribute attr[1] = {};
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.stream = stream;
  cfg.attrs = attr;
  cfg.numAttrs = pdl_supported() ? 1 : 0;
  SA_CUDA(cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...));
}

}  // namespace starattn::cuda
