#include "backend/cuda/argmax.h"

#include <climits>

#include "backend/cuda/cuda_check.h"
#include "starattn/error.h"

namespace starattn::cuda {
namespace {

constexpr int kThreads = 1024;

struct Best {
  float v;
  int i;  // INT_MAX: nothing seen yet (or only NaN)
};

__device__ __forceinline__ Best better(Best a, Best b) {
  if (b.i == INT_MAX) return a;
  if (a.i == INT_MAX) return b;
  return (b.v > a.v || (b.v == a.v && b.i < a.i)) ? b : a;
}

// Best over the block; every thread gets it. Contains __syncthreads.
__device__ Best block_best(Best b) {
  __shared__ float sv[32];
  __shared__ int si[32];
  for (int o = 16; o > 0; o >>= 1)
    b = better(b, Best{__shfl_xor_sync(0xffffffffu, b.v, o), __shfl_xor_sync(0xffffffffu, b.i, o)});
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) {
    sv[warp] = b.v;
    si[warp] = b.i;
  }
  __syncthreads();
  b = lane < kThreads / 32 ? Best{sv[lane], si[lane]} : Best{0.0f, INT_MAX};
  for (int o = 16; o > 0; o >>= 1)
    b = better(b, Best{__shfl_xor_sync(0xffffffffu, b.v, o), __shfl_xor_sync(0xffffffffu, b.i, o)});
  return b;
}

__global__ void __launch_bounds__(kThreads) argmax_kernel(ArgmaxParams p) {
  const float* x = p.logits + blockIdx.x * p.stride;
  Best b{0.0f, INT_MAX};
  for (int j = threadIdx.x; j < p.vocab; j += kThreads)
    if (!isnan(x[j])) b = better(b, Best{x[j], j});
  b = block_best(b);
  if (threadIdx.x == 0) p.out[blockIdx.x] = b.i == INT_MAX ? 0 : b.i;
}

}  // namespace

void argmax(const ArgmaxParams& p, cudaStream_t stream) {
  if (p.n == 0) return;
  SA_CHECK(p.vocab > 0, "argmax: empty rows");
  argmax_kernel<<<p.n, kThreads, 0, stream>>>(p);
  SA_LAUNCHED("argmax_kernel");
}

}  // namespace starattn::cuda
