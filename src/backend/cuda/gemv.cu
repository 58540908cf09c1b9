#include <cstdint>

#include "backend/cuda/activations.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_info.h"
#include "backend/cuda/gemv.h"
#include "backend/cuda/pdl.cuh"
#include "backend/cuda/quant_gemv.h"
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
// tails. With kSwiglu the features are interleaved gate/up pairs (feature 2j reads weight row j,
// 2j + 1 row f + j) and the block writes silu(gate) * up: the FFN's SwiGLU needs no kernel of its
// own.
template <int R, bool kSwiglu>
__global__ void __launch_bounds__(kWarps * 32) gemv_kernel(LinearParams p, int splits) {
  __shared__ float part[kWarps][R];
  pdl_allow_dependents();  // a GEMV after this one (down after gate|up) may start fetching
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int per_block = kWarps / splits;
  const int o = blockIdx.x * per_block + warp / splits, s = warp % splits;
  const bool active = o < p.out;  // no early return: the block meets at __syncthreads below
  // Weights are read once: streaming loads (evict first); x is re-read by every warp: __ldg.
  int64_t w_row = active ? o : 0;
  if constexpr (kSwiglu) w_row = (w_row & 1) ? p.out / 2 + (w_row >> 1) : (w_row >> 1);
  const uint4* w = reinterpret_cast<const uint4*>(p.w + w_row * p.in);
  const int chunks = p.in / 8, step = 32 * splits;  // 16-byte pieces of a row
  int c = s * 32 + lane;
  float acc[R];
#pragma unroll
  for (int r = 0; r < R; ++r) acc[r] = 0.0f;
  uint4 wv[kUnroll];
  const auto fetch = [&] {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) wv[u] = __ldcs(w + c + step * u);
  };
  const auto use = [&] {
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const uint4* x = reinterpret_cast<const uint4*>(p.x + r * p.x_stride);
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) fma8(acc[r], wv[u], __ldg(x + c + step * u));
    }
  };
  // The first weights do not depend on the kernel before (x does): under PDL they are on their
  // way while it finishes.
  const bool first = active && c + step * (kUnroll - 1) < chunks;
  if (first) fetch();
  pdl_wait();
  if (first) {
    use();
    c += step * kUnroll;
    for (; c + step * (kUnroll - 1) < chunks; c += step * kUnroll) {
      fetch();
      use();
    }
  }
  if (active) {
    for (; c < chunks; c += step) {
      const uint4 one = __ldcs(w + c);
#pragma unroll
      for (int r = 0; r < R; ++r)
        fma8(acc[r], one, __ldg(reinterpret_cast<const uint4*>(p.x + r * p.x_stride) + c));
    }
  }
#pragma unroll
  for (int r = 0; r < R; ++r) {
    float v = acc[r];
    for (int k = 16; k > 0; k >>= 1) v += __shfl_xor_sync(0xffffffffu, v, k);
    if (lane == 0) part[warp][r] = v;
  }
  __syncthreads();
  if constexpr (kSwiglu) {
    if (threadIdx.x >= per_block / 2 * R) return;
    const int j = threadIdx.x / R, r = threadIdx.x % R;  // pair within the block, row
    const int gate = blockIdx.x * per_block + 2 * j;
    if (gate >= p.out) return;
    float g = 0.0f, u = 0.0f;
    for (int k = 0; k < splits; ++k) {
      g += part[2 * j * splits + k][r];
      u += part[(2 * j + 1) * splits + k][r];
    }
    // Rounded to bf16 first, as the unfused GEMV's output is before swiglu() reads it.
    g = __bfloat162float(__float2bfloat16_rn(g));
    u = __bfloat162float(__float2bfloat16_rn(u));
    p.y_bf16[r * p.y_stride + gate / 2] = __float2bfloat16_rn(silu_mul(g, u));
    return;
  }
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

}  // namespace

bool gemv_supported(const LinearParams& p) {
  if (p.wq) return gemv_quant_supported(p);
  const auto aligned = [](const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; };
  return p.n >= 1 && p.n <= kGemvMaxRows && p.in % 8 == 0 && p.x_stride % 8 == 0 && aligned(p.x) &&
         aligned(p.w);
}

namespace {

// kSwiglu needs whole pairs in a block: at most kWarps / 2 splits.
template <bool kSwiglu>
void launch_gemv(const LinearParams& p, cudaStream_t stream) {
  SA_CHECK(gemv_supported(p), "gemv: unsupported shape (", p.n, " rows, in ", p.in, ")");
  // Enough warps for one full wave (64 resident per SM), as long as each still has loads to batch.
  const int want = device_info().sms * 64, chunks = p.in / 8;
  const int max_splits = kSwiglu ? kWarps / 2 : kWarps;
  int splits = 1;
  while (splits < max_splits && int64_t{p.out} * splits < want &&
         chunks >= 32 * kUnroll * splits * 2)
    splits *= 2;
  const int per_block = kWarps / splits;
  const dim3 grid((p.out + per_block - 1) / per_block), block(kWarps * 32);
  using Kernel = void (*)(LinearParams, int);
  static constexpr Kernel kernels[kGemvMaxRows] = {
      gemv_kernel<1, kSwiglu>, gemv_kernel<2, kSwiglu>, gemv_kernel<3, kSwiglu>,
      gemv_kernel<4, kSwiglu>, gemv_kernel<5, kSwiglu>, gemv_kernel<6, kSwiglu>,
      gemv_kernel<7, kSwiglu>, gemv_kernel<8, kSwiglu>};
  launch_pdl(kernels[p.n - 1], grid, block, stream, p, splits);
  SA_LAUNCHED("gemv_kernel");
}

}  // namespace

void gemv(const LinearParams& p, cudaStream_t stream) {
  if (p.wq) return gemv_quant(p, stream);
  launch_gemv<false>(p, stream);
}

void gemv_swiglu(const LinearParams& p, cudaStream_t stream) {
  SA_CHECK(p.out % 2 == 0 && p.y_bf16 && !p.y_f32 && p.y_stride >= p.out / 2,
           "gemv_swiglu: needs an even output count and a bf16 result of half of it");
  if (p.wq) return gemv_quant_swiglu(p, stream);
  launch_gemv<true>(p, stream);
}

}  // namespace starattn::cuda
