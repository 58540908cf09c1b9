#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/elementwise.h"

namespace starattn::cuda {
namespace {

constexpr int kThreads = 256;

int grid_for(int64_t total) {
  const int64_t blocks = (total + kThreads - 1) / kThreads;
  return static_cast<int>(blocks < 65536 ? blocks : 65536);
}

__device__ __forceinline__ float silu_mul(float g, float u) {
  return g / (1.0f + __expf(-g)) * u;
}

// Rows on grid.y (looping when n > 65535), columns on grid.x: no division per element. Each
// thread takes kVec adjacent columns: 8 (16-byte loads and stores) when f, the row stride and the
// pointers allow it, else 1.
template <int kVec>
__global__ void swiglu_kernel(SwigluParams p) {
  const int j = (blockIdx.x * kThreads + threadIdx.x) * kVec;
  if (j >= p.f) return;
  for (int64_t i = blockIdx.y; i < p.n; i += gridDim.y) {
    const __nv_bfloat16* row = p.gate_up + i * p.gu_stride;
    __nv_bfloat16* out = p.out + i * p.f;
    if constexpr (kVec == 8) {
      const uint4 g = *reinterpret_cast<const uint4*>(row + j);
      const uint4 u = *reinterpret_cast<const uint4*>(row + p.f + j);
      const __nv_bfloat162* g2 = reinterpret_cast<const __nv_bfloat162*>(&g);
      const __nv_bfloat162* u2 = reinterpret_cast<const __nv_bfloat162*>(&u);
      uint4 r;
      __nv_bfloat162* r2 = reinterpret_cast<__nv_bfloat162*>(&r);
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const float2 gf = __bfloat1622float2(g2[k]), uf = __bfloat1622float2(u2[k]);
        r2[k] = __floats2bfloat162_rn(silu_mul(gf.x, uf.x), silu_mul(gf.y, uf.y));
      }
      *reinterpret_cast<uint4*>(out + j) = r;
    } else {
      out[j] =
          __float2bfloat16_rn(silu_mul(__bfloat162float(row[j]), __bfloat162float(row[p.f + j])));
    }
  }
}

__global__ void bias_add_kernel(BiasAddParams p) {
  const int64_t total = static_cast<int64_t>(p.n) * p.m;
  for (int64_t t = blockIdx.x * int64_t{kThreads} + threadIdx.x; t < total;
       t += int64_t{gridDim.x} * kThreads) {
    const int64_t i = t / p.m;
    const int j = static_cast<int>(t % p.m);
    __nv_bfloat16* y = p.y + i * p.y_stride + j;
    *y = __float2bfloat16_rn(__bfloat162float(*y) + p.bias[j]);
  }
}

__global__ void residual_add_kernel(ResidualAddParams p) {
  for (int64_t t = blockIdx.x * int64_t{kThreads} + threadIdx.x; t < p.count;
       t += int64_t{gridDim.x} * kThreads)
    p.x[t] += __bfloat162float(p.y[t]);
}

}  // namespace

void swiglu(const SwigluParams& p, cudaStream_t stream) {
  if (p.n == 0 || p.f == 0) return;
  const bool vec = p.f % 8 == 0 && p.gu_stride % 8 == 0 &&
                   reinterpret_cast<uintptr_t>(p.gate_up) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(p.out) % 16 == 0;
  const int cols = vec ? p.f / 8 : p.f;
  const dim3 grid((cols + kThreads - 1) / kThreads, p.n < 65535 ? p.n : 65535);
  if (vec) {
    swiglu_kernel<8><<<grid, kThreads, 0, stream>>>(p);
  } else {
    swiglu_kernel<1><<<grid, kThreads, 0, stream>>>(p);
  }
  SA_LAUNCHED("swiglu_kernel");
}

void bias_add(const BiasAddParams& p, cudaStream_t stream) {
  if (p.n == 0 || p.m == 0) return;
  bias_add_kernel<<<grid_for(int64_t{p.n} * p.m), kThreads, 0, stream>>>(p);
  SA_LAUNCHED("bias_add_kernel");
}

void residual_add(const ResidualAddParams& p, cudaStream_t stream) {
  if (p.count == 0) return;
  residual_add_kernel<<<grid_for(p.count), kThreads, 0, stream>>>(p);
  SA_LAUNCHED("residual_add_kernel");
}

}  // namespace starattn::cuda
