#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/pdl.cuh"
#include "backend/cuda/reduce.cuh"
#include "backend/cuda/rmsnorm.h"
#include "starattn/error.h"

namespace starattn::cuda {
namespace {

constexpr int kThreads = 256;

template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// One block per row. The row is read twice (sum of squares, then scale); the second read hits
// L1/L2. In-place use is safe: every thread reads and writes only its own columns, after the
// reduction.
template <typename T>
__global__ void __launch_bounds__(kThreads) rmsnorm_kernel(RmsNormParams p, T* y) {
  pdl_allow_dependents();  // the GEMV after this may start fetching its weights
  const int64_t row = blockIdx.x;
  const float* x = p.x + row * p.d;
  float ss = 0.0f;
  for (int j = threadIdx.x; j < p.d; j += kThreads) ss += x[j] * x[j];
  ss = block_sum<kThreads>(ss);
  const float inv = rsqrtf(ss / static_cast<float>(p.d) + p.eps);
  T* out = y + row * p.d;
  for (int j = threadIdx.x; j < p.d; j += kThreads) out[j] = from_float<T>(x[j] * inv * p.w[j]);
}

__device__ __forceinline__ void store4(float* y, float4 v) {
  *reinterpret_cast<float4*>(y) = v;
}
__device__ __forceinline__ void store4(__nv_bfloat16* y, float4 v) {
  const __nv_bfloat162 a = __floats2bfloat162_rn(v.x, v.y), b = __floats2bfloat162_rn(v.z, v.w);
  uint2 u;
  u.x = *reinterpret_cast<const uint32_t*>(&a);
  u.y = *reinterpret_cast<const uint32_t*>(&b);
  *reinterpret_cast<uint2*>(y) = u;
}

// One read of the row: each thread keeps its kVec float4 pieces in registers between the sum of
// squares and the scaling (d % 4 == 0 and d <= 4 * kThreads * kVec).
template <typename T, int kVec>
__global__ void __launch_bounds__(kThreads) rmsnorm_vec_kernel(RmsNormParams p, T* y) {
  pdl_allow_dependents();  // the GEMV after this may start fetching its weights
  const int64_t row = blockIdx.x;
  const float4* x = reinterpret_cast<const float4*>(p.x + row * p.d);
  const int d4 = p.d / 4;
  float4 v[kVec];
  float ss = 0.0f;
#pragma unroll
  for (int i = 0; i < kVec; ++i) {
    const int j = threadIdx.x + i * kThreads;
    v[i] = j < d4 ? x[j] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    ss += v[i].x * v[i].x + v[i].y * v[i].y + v[i].z * v[i].z + v[i].w * v[i].w;
  }
  ss = block_sum<kThreads>(ss);
  const float inv = rsqrtf(ss / static_cast<float>(p.d) + p.eps);
  const float4* w = reinterpret_cast<const float4*>(p.w);
  T* out = y + row * p.d;
#pragma unroll
  for (int i = 0; i < kVec; ++i) {
    const int j = threadIdx.x + i * kThreads;
    if (j >= d4) break;
    const float4 g = w[j];
    store4(out + 4 * j, make_float4(v[i].x * inv * g.x, v[i].y * inv * g.y, v[i].z * inv * g.z,
                                    v[i].w * inv * g.w));
  }
}

template <typename T>
void launch(const RmsNormParams& p, T* y, cudaStream_t stream) {
  const bool vec = p.d % 4 == 0 && reinterpret_cast<uintptr_t>(p.x) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(p.w) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(y) % (4 * sizeof(T)) == 0;
  const int pieces = (p.d / 4 + kThreads - 1) / kThreads;  // float4 per thread
  if (!vec || pieces > 8) {
    rmsnorm_kernel<T><<<p.n, kThreads, 0, stream>>>(p, y);
  } else if (pieces == 1) {
    rmsnorm_vec_kernel<T, 1><<<p.n, kThreads, 0, stream>>>(p, y);
  } else if (pieces == 2) {
    rmsnorm_vec_kernel<T, 2><<<p.n, kThreads, 0, stream>>>(p, y);
  } else if (pieces <= 4) {
    rmsnorm_vec_kernel<T, 4><<<p.n, kThreads, 0, stream>>>(p, y);
  } else {
    rmsnorm_vec_kernel<T, 8><<<p.n, kThreads, 0, stream>>>(p, y);
  }
}

}  // namespace

void rmsnorm(const RmsNormParams& p, cudaStream_t stream) {
  if (p.n == 0) return;
  SA_CHECK((p.y_bf16 != nullptr) != (p.y_f32 != nullptr),
           "rmsnorm: exactly one of y_bf16, y_f32 must be set");
  if (p.y_bf16) {
    launch(p, p.y_bf16, stream);
  } else {
    launch(p, p.y_f32, stream);
  }
  SA_LAUNCHED("rmsnorm_kernel");
}

}  // namespace starattn::cuda
