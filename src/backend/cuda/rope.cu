#include <cmath>
#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/rope.h"
#include "starattn/error.h"

namespace starattn::cuda {

namespace {

__global__ void rope_table_kernel(RopeTableParams p) {
  const int64_t total = static_cast<int64_t>(p.n) * p.half;
  for (int64_t t = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; t < total;
       t += int64_t{gridDim.x} * blockDim.x) {
    const int i = static_cast<int>(t / p.half), j = static_cast<int>(t % p.half);
    // __fmul_rn: no contraction into anything else, the same fp32 product as the CPU.
    const float angle = __fmul_rn(static_cast<float>(p.positions[i]), p.inv_freq[j]);
    double s, c;
    sincos(static_cast<double>(angle), &s, &c);
    p.cos[t] = static_cast<float>(c);
    p.sin[t] = static_cast<float>(s);
  }
}

// One thread per (head slot, kVec pairs j..j+kVec-1) of a token row; rows on grid.y (looping past
// 65535), so the index arithmetic is 32-bit. Reads elements j and j + half of one head (16-byte
// loads when kVec == 8), adds the bias, rotates (q and k heads) or copies (v heads), and writes
// them to the head's contiguous home.
template <int kVec>
__global__ void qkv_rope_kernel(QkvRopeParams p) {
  const int half = p.head_dim / 2, groups = half / kVec;
  const int t = blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= (p.n_heads + 2 * p.n_kv_heads) * groups) return;
  const int slot = t / groups, j = (t - slot * groups) * kVec;
  const int col = slot * p.head_dim + j;  // column of element j in the fused row
  float ba[kVec], bb[kVec];
#pragma unroll
  for (int e = 0; e < kVec; ++e) {
    ba[e] = p.bias ? p.bias[col + e] : 0.0f;
    bb[e] = p.bias ? p.bias[col + half + e] : 0.0f;
  }
  const bool is_v = slot >= p.n_heads + p.n_kv_heads;
  for (int64_t i = blockIdx.y; i < p.n; i += gridDim.y) {
    const __nv_bfloat16* src = p.qkv + i * p.qkv_stride + col;
    float a[kVec], b[kVec];
    if constexpr (kVec == 8) {
      const uint4 va = *reinterpret_cast<const uint4*>(src);
      const uint4 vb = *reinterpret_cast<const uint4*>(src + half);
      const __nv_bfloat16* ea = reinterpret_cast<const __nv_bfloat16*>(&va);
      const __nv_bfloat16* eb = reinterpret_cast<const __nv_bfloat16*>(&vb);
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        a[e] = __bfloat162float(ea[e]) + ba[e];
        b[e] = __bfloat162float(eb[e]) + bb[e];
      }
    } else {
      a[0] = __bfloat162float(src[0]) + ba[0];
      b[0] = __bfloat162float(src[half]) + bb[0];
    }
    __nv_bfloat16* dst;
    if (slot < p.n_heads) {
      dst = p.q + (i * p.n_heads + slot) * p.head_dim;
    } else if (!is_v) {
      dst = p.k + (i * p.n_kv_heads + (slot - p.n_heads)) * p.head_dim;
    } else {
      dst = p.v + (i * p.n_kv_heads + (slot - p.n_heads - p.n_kv_heads)) * p.head_dim;
    }
    alignas(16) __nv_bfloat16 ra[kVec];
    alignas(16) __nv_bfloat16 rb[kVec];
    if (is_v) {
#pragma unroll
      for (int e = 0; e < kVec; ++e) {
        ra[e] = __float2bfloat16_rn(a[e]);
        rb[e] = __float2bfloat16_rn(b[e]);
      }
    } else {
      const float* cs = p.cos + i * half + j;
      const float* sn = p.sin + i * half + j;
#pragma unroll
      for (int e = 0; e < kVec; ++e) {
        ra[e] = __float2bfloat16_rn(a[e] * cs[e] - b[e] * sn[e]);
        rb[e] = __float2bfloat16_rn(b[e] * cs[e] + a[e] * sn[e]);
      }
    }
    if constexpr (kVec == 8) {
      *reinterpret_cast<uint4*>(dst + j) = *reinterpret_cast<const uint4*>(ra);
      *reinterpret_cast<uint4*>(dst + j + half) = *reinterpret_cast<const uint4*>(rb);
    } else {
      dst[j] = ra[0];
      dst[j + half] = rb[0];
    }
  }
}

int grid_for(int64_t total, int threads) {
  const int64_t blocks = (total + threads - 1) / threads;
  return static_cast<int>(blocks < 65536 ? blocks : 65536);
}

}  // namespace

void rope_table(const RopeTableParams& p, cudaStream_t stream) {
  if (p.n == 0 || p.half == 0) return;
  rope_table_kernel<<<grid_for(int64_t{p.n} * p.half, 256), 256, 0, stream>>>(p);
  SA_LAUNCHED("rope_table_kernel");
}

void qkv_rope(const QkvRopeParams& p, cudaStream_t stream) {
  if (p.n == 0) return;
  SA_CHECK(p.head_dim > 0 && p.head_dim % 2 == 0, "qkv_rope: head_dim must be even, got ",
           p.head_dim);
  // 16-byte pieces when every row and head starts on one (q, k, v are contiguous from aligned
  // bases; head_dim / 2 a multiple of 8 keeps the halves aligned).
  const auto aligned = [](const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; };
  const int half = p.head_dim / 2;
  const bool vec = half % 8 == 0 && p.qkv_stride % 8 == 0 && aligned(p.qkv) && aligned(p.q) &&
                   aligned(p.k) && aligned(p.v);
  const int per_row = (p.n_heads + 2 * p.n_kv_heads) * (vec ? half / 8 : half);
  const dim3 grid((per_row + 255) / 256, p.n < 65535 ? p.n : 65535);
  if (vec) {
    qkv_rope_kernel<8><<<grid, 256, 0, stream>>>(p);
  } else {
    qkv_rope_kernel<1><<<grid, 256, 0, stream>>>(p);
  }
  SA_LAUNCHED("qkv_rope_kernel");
}

}  // namespace starattn::cuda
