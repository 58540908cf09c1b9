#include <cstdint>

#include "backend/cuda/activations.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/elementwise.h"
#include "backend/cuda/pdl.cuh"

namespace starattn::cuda {
namespace {

constexpr int kThreads = 256;

int grid_for(int64_t total) {
  const int64_t blocks = (total + kThreads - 1) / kThreads;
  return static_cast<int>(blocks < 65536 ? blocks : 65536);
}

// Rows on grid.y (looping when n > 65535), columns on grid.x: no division per element. Each
// thread takes kVec adjacent columns: 8 (16-byte loads and stores) when f, the row stride and the
// pointers allow it, else 1.
template <int kVec>
__global__ void swiglu_kernel(SwigluParams p) {
  pdl_allow_dependents();  // the GEMV after this may start fetching its weights
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

// T is the widest word the pointers and the row size allow; blockIdx.y picks the array.
template <typename T>
__global__ void copy_rows_at_kernel(CopyRowsAtParams p) {
  const int a = blockIdx.y;
  T* dst = reinterpret_cast<T*>(static_cast<char*>(p.dst[a]) + *p.row_at * p.row_bytes);
  const T* src = static_cast<const T*>(p.src[a]);
  const int64_t count = p.n * static_cast<int64_t>(p.row_bytes / sizeof(T));
  for (int64_t t = blockIdx.x * int64_t{kThreads} + threadIdx.x; t < count;
       t += int64_t{gridDim.x} * kThreads)
    dst[t] = src[t];
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

void copy_rows_at(const CopyRowsAtParams& p, cudaStream_t stream) {
  if (p.n == 0 || p.row_bytes == 0) return;
  const auto all_aligned = [&](uintptr_t a) {
    bool ok = p.row_bytes % a == 0;
    for (int i = 0; i < 2; ++i)
      ok = ok && reinterpret_cast<uintptr_t>(p.dst[i]) % a == 0 &&
           reinterpret_cast<uintptr_t>(p.src[i]) % a == 0;
    return ok;
  };
  const int64_t bytes = p.n * static_cast<int64_t>(p.row_bytes);
  if (all_aligned(16)) {
    copy_rows_at_kernel<uint4><<<dim3(grid_for(bytes / 16), 2), kThreads, 0, stream>>>(p);
  } else if (all_aligned(4)) {
    copy_rows_at_kernel<uint32_t><<<dim3(grid_for(bytes / 4), 2), kThreads, 0, stream>>>(p);
  } else {
    copy_rows_at_kernel<unsigned char><<<dim3(grid_for(bytes), 2), kThreads, 0, stream>>>(p);
  }
  SA_LAUNCHED("copy_rows_at_kernel");
}

}  // namespace starattn::cuda
