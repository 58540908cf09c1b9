#include "backend/cuda/cuda_check.h"
#include "backend/cuda/random_fill.h"
#include "starattn/error.h"
#include "util/splitmix64.h"

namespace starattn::cuda {
namespace {

template <typename T>
__global__ void random_fill_kernel(RandomFillParams p, T* x) {
  const uint64_t base = splitmix64_mix(p.seed ^ 0x5DEECE66Dull);
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < p.count;
       i += int64_t{gridDim.x} * blockDim.x) {
    const uint64_t h = splitmix64_mix(base + static_cast<uint64_t>(i) * kSplitMix64Gamma);
    const float u = (static_cast<float>(h >> 40) + 0.5f) * (2.0f / 16777216.0f) - 1.0f;  // (-1, 1)
    const float v = p.mean + p.half_width * u;
    if constexpr (sizeof(T) == 2) {
      x[i] = __float2bfloat16_rn(v);
    } else {
      x[i] = v;
    }
  }
}

}  // namespace

void random_fill(const RandomFillParams& p, cudaStream_t stream) {
  if (p.count == 0) return;
  SA_CHECK((p.x_bf16 != nullptr) != (p.x_f32 != nullptr),
           "random_fill: exactly one of x_bf16, x_f32 must be set");
  const int64_t blocks = (p.count + 255) / 256;
  const int grid = static_cast<int>(blocks < 8192 ? blocks : 8192);
  if (p.x_bf16) {
    random_fill_kernel<__nv_bfloat16><<<grid, 256, 0, stream>>>(p, p.x_bf16);
  } else {
    random_fill_kernel<float><<<grid, 256, 0, stream>>>(p, p.x_f32);
  }
  SA_LAUNCHED("random_fill_kernel");
}

}  // namespace starattn::cuda
