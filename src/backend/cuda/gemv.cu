#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/gemv.h"
#include "starattn/error.h"

namespace starattn::cuda {
namespace {

constexpr int kWarps = 8;   // per block
constexpr int kUnroll = 4;  // 16-byte weight loads in flight per lane

__device__ __forceinline__ void fma8(float& acc, const uint4& w, const uint4& x) {
  const __nv_bfloat162* wp = reinterpret_cast<const __nv_bfloat162*>(&w);
  const __nv_bfloat162* xp = reinterpret_cast<const __nv_bfloat162*>(&x);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 a = __bfloat1622float2(wp[i]), b = __bfloat1622float2(xp[i]);
    acc = fmaf(a.x, b.x, acc);
    acc = fmaf(a.y, b.y, acc);
  }
}

// Block: kWarps warps = (kWarps / splits) output features x `splits` warps each; a feature's warps
// take interleaved 32-chunk groups of its weight row (coalesced), then add up through shared
// memory. Splitting fills the GPU when there are few features (4096): more loads in flight, shorter
// tails.
template <int R>
__global__ void __launch_bounds__(kWarps * 32) gemv_kernel(LinearParams p, int splits) {
  __shared__ float part[kWarps][R];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int per_block = kWarps / splits;
  const int o = blockIdx.x * per_block + warp / splits, s = warp % splits;
  float acc[R];
#pragma unroll
  for (int r = 0; r < R; ++r) acc[r] = 0.0f;
  if (o < p.out) {  // no early return: the block meets at __syncthreads below
    // Weights are read once: streaming loads (evict first); x is re-read by every warp: __ldg.
    const uint4* w = reinterpret_cast<const uint4*>(p.w + static_cast<int64_t>(o) * p.in);
    const int chunks = p.in / 8, step = 32 * splits;  // 16-byte pieces of a row
    int c = s * 32 + lane;
    for (; c + step * (kUnroll - 1) < chunks; c += step * kUnroll) {
      uint4 wv[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) wv[u] = __ldcs(w + c + step * u);
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const uint4* x = reinterpret_cast<const uint4*>(p.x + r * p.x_stride);
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) fma8(acc[r], wv[u], __ldg(x + c + step * u));
      }
    }
    for (; c < chunks; c += step) {
      const uint4 wv = __ldcs(w + c);
#pragma unroll
      for (int r = 0; r < R; ++r)
        fma8(acc[r], wv, __ldg(reinterpret_cast<const uint4*>(p.x + r * p.x_stride) + c));
    }
  }
#pragma unroll
  for (int r = 0; r < R; ++r) {
    float v = acc[r];
    for (int k = 16; k > 0; k >>= 1) v += __shfl_xor_sync(0xffffffffu, v, k);
    if (lane == 0) part[warp][r] = v;
  }
  __syncthreads();
  if (threadIdx.x >= per_block * R) return;
  const int f = threadIdx.x / R, r = threadIdx.x % R;  // feature within the block, row
  const int out = blockIdx.x * per_block + f;
  if (out >= p.out) return;
  float v = 0.0f;
  for (int k = 0; k < splits; ++k) v += part[f * splits + k][r];
  if (p.y_f32) {
    float* y = p.y_f32 + r * p.y_stride + out;
    *y = p.accumulate ? *y + v : v;
  } else {
    p.y_bf16[r * p.y_stride + out] = __float2bfloat16_rn(v);
  }
}

int sm_count() {
  static int cached[64] = {};
  int dev = 0;
  SA_CUDA(cudaGetDevice(&dev));
  if (dev < 0 || dev >= 64) return 132;
  if (cached[dev] == 0)
    SA_CUDA(cudaDeviceGetAttribute(&cached[dev], cudaDevAttrMultiProcessorCount, dev));
  return cached[dev];
}

}  // namespace

bool gemv_supported(const LinearParams& p) {
  const auto aligned = [](const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; };
  return p.n >= 1 && p.n <= kGemvMaxRows && p.in % 8 == 0 && p.x_stride % 8 == 0 && aligned(p.x) &&
         aligned(p.w);
}

void gemv(const LinearParams& p, cudaStream_t stream) {
  SA_CHECK(gemv_supported(p), "gemv: unsupported shape (", p.n, " rows, in ", p.in, ")");
  // Enough warps for one full wave (64 resident per SM), as long as each still has loads to batch.
  const int want = sm_count() * 64, chunks = p.in / 8;
  int splits = 1;
  while (splits < kWarps && int64_t{p.out} * splits < want && chunks >= 32 * kUnroll * splits * 2)
    splits *= 2;
  const int per_block = kWarps / splits;
  const dim3 grid((p.out + per_block - 1) / per_block), block(kWarps * 32);
  switch (p.n) {
    case 1:
      gemv_kernel<1><<<grid, block, 0, stream>>>(p, splits);
      break;
    case 2:
      gemv_kernel<2><<<grid, block, 0, stream>>>(p, splits);
      break;
    case 3:
      gemv_kernel<3><<<grid, block, 0, stream>>>(p, splits);
      break;
    case 4:
      gemv_kernel<4><<<grid, block, 0, stream>>>(p, splits);
      break;
    case 5:
      gemv_kernel<5><<<grid, block, 0, stream>>>(p, splits);
      break;
    case 6:
      gemv_kernel<6><<<grid, block, 0, stream>>>(p, splits);
      break;
    case 7:
      gemv_kernel<7><<<grid, block, 0, stream>>>(p, splits);
      break;
    case 8:
      gemv_kernel<8><<<grid, block, 0, stream>>>(p, splits);
      break;
    default:
      fail("gemv: ", p.n, " rows is more than ", kGemvMaxRows);
  }
  SA_LAUNCHED("gemv_kernel");
}

}  // namespace starattn::cuda
