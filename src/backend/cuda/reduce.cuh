// Block-wide reductions shared by the backend's kernels (device code only).
#pragma once

#include <cuda_runtime.h>

namespace starattn::cuda {

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ double warp_sum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sum over the whole block (kThreads a multiple of 32, at most 1024); every thread gets the result.
// Contains __syncthreads: every thread of the block must call it.
template <int kThreads, typename T>
__device__ __forceinline__ T block_sum(T v) {
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "block size");
  __shared__ T part[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // part[] may still be read by a previous call
  if (lane == 0) part[warp] = v;
  __syncthreads();
  T t = lane < kThreads / 32 ? part[lane] : T(0);
  return warp_sum(t);
}

}  // namespace starattn::cuda
