#include <cuda_fp16.h>

#include <cstdint>

#include "backend/cuda/activations.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/gemv.h"
#include "backend/cuda/quant_gemv.h"
#include "starattn/error.h"

namespace starattn::cuda {
namespace {

__device__ __forceinline__ float f16_at(const uint8_t* p) {
  return __half2float(__ushort_as_half(static_cast<unsigned short>(p[0] | (p[1] << 8))));
}

// Per type: bytes per block, 32-element units per block, and unit(block, u, v), which writes the
// 32 values of unit u to v with the CPU reference's operations (ggml_types.cpp states the
// layouts): __fmul_rn / __fadd_rn keep the compiler from fusing them.
struct Q8_0 {
  static constexpr int kBytes = 34, kUnits = 1;
  __device__ static void unit(const uint8_t* b, int, float* v) {
    const float d = f16_at(b);
#pragma unroll
    for (int i = 0; i < 32; ++i)
      v[i] = __fmul_rn(static_cast<float>(static_cast<int8_t>(b[2 + i])), d);
  }
};

struct Q4_0 {
  static constexpr int kBytes = 18, kUnits = 1;
  __device__ static void unit(const uint8_t* b, int, float* v) {
    const float d = f16_at(b);
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      v[i] = __fmul_rn(static_cast<float>((b[2 + i] & 0x0F) - 8), d);
      v[i + 16] = __fmul_rn(static_cast<float>((b[2 + i] >> 4) - 8), d);
    }
  }
};

struct Q4_1 {
  static constexpr int kBytes = 20, kUnits = 1;
  __device__ static void unit(const uint8_t* b, int, float* v) {
    const float d = f16_at(b), m = f16_at(b + 2);
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      v[i] = __fadd_rn(__fmul_rn(static_cast<float>(b[4 + i] & 0x0F), d), m);
      v[i + 16] = __fadd_rn(__fmul_rn(static_cast<float>(b[4 + i] >> 4), d), m);
    }
  }
};

// Q4_K: fp16 d | fp16 dmin | scales[12] | qs[128]; unit j (sub-block) takes the low (j even) or
// high nibbles of qs[32 (j / 2) ..], value (d sc_j) q - (dmin m_j).
struct Q4_K {
  static constexpr int kBytes = 144, kUnits = 8;
  __device__ static void unit(const uint8_t* b, int j, float* v) {
    const uint8_t* s = b + 4;
    int sc, mn;
    if (j < 4) {
      sc = s[j] & 63;
      mn = s[j + 4] & 63;
    } else {
      sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
      mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
    const float d1 = __fmul_rn(f16_at(b), static_cast<float>(sc));
    const float m1 = __fmul_rn(f16_at(b + 2), static_cast<float>(mn));
    const uint8_t* q = b + 16 + 32 * (j / 2);
    const int shift = 4 * (j % 2);
#pragma unroll
    for (int i = 0; i < 32; ++i)
      v[i] = __fsub_rn(__fmul_rn(d1, static_cast<float>((q[i] >> shift) & 0x0F)), m1);
  }
};

constexpr int kWarps = 8;

// Adds the products of one 32-element unit of weights v with R rows of x at column col.
template <int R>
__device__ __forceinline__ void dot_unit(const float* v, const LinearParams& p, int64_t col,
                                         float* acc) {
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const uint4* x = reinterpret_cast<const uint4*>(p.x + r * p.x_stride + col);
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const uint4 xv = __ldg(x + k);
      const __nv_bfloat162* xp = reinterpret_cast<const __nv_bfloat162*>(&xv);
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const float2 f = __bfloat1622float2(xp[i]);
        acc[r] = fmaf(v[8 * k + 2 * i], f.x, acc[r]);
        acc[r] = fmaf(v[8 * k + 2 * i + 1], f.y, acc[r]);
      }
    }
  }
}

// One warp's dot products of weight row w_row with R rows of x, summed over the warp (every lane
// ends with the totals). stage: the warp's shared bytes for 32 units of blocks.
template <class T, int R>
__device__ void row_dots(const LinearParams& p, int64_t w_row, uint8_t* stage, float* acc) {
  const int lane = threadIdx.x & 31;
  constexpr int kBlocksPerStep = 32 / T::kUnits;
  const int64_t blocks = p.in / (32 * T::kUnits);
  const uint8_t* row = p.wq + w_row * p.wq_row_bytes;
#pragma unroll
  for (int r = 0; r < R; ++r) acc[r] = 0.0f;
  for (int64_t b0 = 0; b0 < blocks; b0 += kBlocksPerStep) {
    const int nb = static_cast<int>(blocks - b0 < kBlocksPerStep ? blocks - b0 : kBlocksPerStep);
    // A full step is a whole number of 16-byte pieces for every type (32 units of blocks: 1088,
    // 576 or 640 bytes), and so is the warp's stage: 16-byte loads where the row is aligned
    // too, as it is for every row length a multiple of 256. Otherwise (block sizes are even, rows
    // start at even offsets) 2-byte loads, consecutive per lane.
    const uint8_t* chunk = row + b0 * T::kBytes;
    const int bytes = nb * T::kBytes;
    if (reinterpret_cast<uintptr_t>(chunk) % 16 == 0 && bytes % 16 == 0) {
      const uint4* src = reinterpret_cast<const uint4*>(chunk);
      uint4* dst = reinterpret_cast<uint4*>(stage);
      for (int i = lane; i < bytes / 16; i += 32) dst[i] = __ldcs(src + i);
    } else {
      const unsigned short* src = reinterpret_cast<const unsigned short*>(chunk);
      unsigned short* dst = reinterpret_cast<unsigned short*>(stage);
      for (int i = lane; i < bytes / 2; i += 32) dst[i] = __ldcs(src + i);
    }
    __syncwarp();
    const int blk = lane / T::kUnits, u = lane % T::kUnits;
    if (blk < nb) {
      float v[32];
      T::unit(stage + blk * T::kBytes, u, v);
      dot_unit<R>(v, p, ((b0 + blk) * T::kUnits + u) * 32, acc);
    }
    __syncwarp();
  }
#pragma unroll
  for (int r = 0; r < R; ++r)
    for (int k = 16; k > 0; k >>= 1) acc[r] += __shfl_xor_sync(0xffffffffu, acc[r], k);
}

// Block: kWarps warps, one output feature each (kSwiglu: one gate/up pair each).
template <class T, int R, bool kSwiglu>
__global__ void __launch_bounds__(kWarps * 32) gemv_quant_kernel(LinearParams p) {
  __shared__ __align__(16) uint8_t stage[kWarps][32 / T::kUnits * T::kBytes];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t o = int64_t{blockIdx.x} * kWarps + warp;
  float acc[R];
  if constexpr (kSwiglu) {
    const int64_t f = p.out / 2;
    if (o >= f) return;  // no block-wide barrier below: a warp may leave
    float up[R];
    row_dots<T, R>(p, o, stage[warp], acc);
    row_dots<T, R>(p, f + o, stage[warp], up);
    if (lane == 0) {
#pragma unroll
      for (int r = 0; r < R; ++r) {
        // Rounded to bf16 first, as gemv_swiglu (gemv.cu) and the unfused path do.
        const float g = __bfloat162float(__float2bfloat16_rn(acc[r]));
        const float u = __bfloat162float(__float2bfloat16_rn(up[r]));
        p.y_bf16[r * p.y_stride + o] = __float2bfloat16_rn(silu_mul(g, u));
      }
    }
  } else {
    if (o >= p.out) return;
    row_dots<T, R>(p, o, stage[warp], acc);
    if (lane == 0) {
#pragma unroll
      for (int r = 0; r < R; ++r) {
        if (p.y_f32) {
          float* y = p.y_f32 + r * p.y_stride + o;
          *y = p.accumulate ? *y + acc[r] : acc[r];
        } else {
          p.y_bf16[r * p.y_stride + o] = __float2bfloat16_rn(acc[r]);
        }
      }
    }
  }
}

template <class T, bool kSwiglu>
void launch_rows(const LinearParams& p, int64_t features, cudaStream_t stream) {
  using Kernel = void (*)(LinearParams);
  static constexpr Kernel kernels[kGemvMaxRows] = {
      gemv_quant_kernel<T, 1, kSwiglu>, gemv_quant_kernel<T, 2, kSwiglu>,
      gemv_quant_kernel<T, 3, kSwiglu>, gemv_quant_kernel<T, 4, kSwiglu>,
      gemv_quant_kernel<T, 5, kSwiglu>, gemv_quant_kernel<T, 6, kSwiglu>,
      gemv_quant_kernel<T, 7, kSwiglu>, gemv_quant_kernel<T, 8, kSwiglu>};
  const dim3 grid(static_cast<unsigned>((features + kWarps - 1) / kWarps)), block(kWarps * 32);
  kernels[p.n - 1]<<<grid, block, 0, stream>>>(p);
  SA_LAUNCHED("gemv_quant_kernel");
}

template <bool kSwiglu>
void launch(const LinearParams& p, cudaStream_t stream) {
  SA_CHECK(gemv_quant_supported(p), "gemv_quant: unsupported parameters (", p.n, " rows, in ", p.in,
           ", type ", ggml_type_name(p.wq_type), ")");
  const int64_t features = kSwiglu ? p.out / 2 : p.out;
  switch (p.wq_type) {
    case GgmlType::Q8_0:
      return launch_rows<Q8_0, kSwiglu>(p, features, stream);
    case GgmlType::Q4_0:
      return launch_rows<Q4_0, kSwiglu>(p, features, stream);
    case GgmlType::Q4_1:
      return launch_rows<Q4_1, kSwiglu>(p, features, stream);
    case GgmlType::Q4_K:
      return launch_rows<Q4_K, kSwiglu>(p, features, stream);
    default:
      fail("gemv_quant: no GPU kernel for ", ggml_type_name(p.wq_type));
  }
}

template <class T>
__global__ void dequantize_rows_kernel(const uint8_t* src, int64_t row_bytes, int64_t r0, int rows,
                                       int cols, __nv_bfloat16* dst) {
  const int64_t units_per_row = cols / 32, units = units_per_row * rows;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < units;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = i / units_per_row, unit = i % units_per_row;
    const uint8_t* blk = src + (r0 + r) * row_bytes + unit / T::kUnits * T::kBytes;
    float v[32];
    T::unit(blk, static_cast<int>(unit % T::kUnits), v);
    __nv_bfloat16* out = dst + r * cols + unit * 32;
#pragma unroll
    for (int k = 0; k < 32; ++k) out[k] = __float2bfloat16_rn(v[k]);
  }
}

template <class T>
__global__ void embedding_quant_kernel(EmbeddingQuantParams p) {
  const int i = blockIdx.x;
  const int tok = p.tokens[i];
  float* out = p.out + static_cast<int64_t>(i) * p.d;
  if (tok < 0 || tok >= p.vocab) {
    for (int j = threadIdx.x; j < p.d; j += blockDim.x) out[j] = __int_as_float(0x7fc00000);
    return;
  }
  const uint8_t* row = p.table + static_cast<int64_t>(tok) * p.row_bytes;
  for (int unit = threadIdx.x; unit < p.d / 32; unit += blockDim.x) {
    float v[32];
    T::unit(row + unit / T::kUnits * T::kBytes, unit % T::kUnits, v);
#pragma unroll
    for (int k = 0; k < 32; ++k) out[unit * 32 + k] = v[k];
  }
}

__device__ __forceinline__ uint64_t mix(uint64_t h) {
  h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
  h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
  return h ^ (h >> 31);
}

// Random bytes, then the fp16 scales set: Q8_0 d with codes of std ~73; Q4_K d, dmin for
// d * sc * q of std ~218 d and a mean taken out by the min.
__global__ void random_blocks_kernel(GgmlType type, uint8_t* dst, int64_t n_blocks, int bytes,
                                     uint64_t seed) {
  for (int64_t b = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; b < n_blocks;
       b += int64_t{gridDim.x} * blockDim.x) {
    uint8_t* blk = dst + b * bytes;
    for (int i = 0; i < bytes; i += 8) {
      const uint64_t h = mix(seed + static_cast<uint64_t>(b * bytes + i) * 0x9E3779B97F4A7C15ull);
      for (int k = 0; k < 8 && i + k < bytes; ++k) blk[i + k] = static_cast<uint8_t>(h >> (8 * k));
    }
    const auto put = [&](int at, float v) {
      const unsigned short h = __half_as_ushort(__float2half_rn(v));
      blk[at] = static_cast<uint8_t>(h & 0xFF);
      blk[at + 1] = static_cast<uint8_t>(h >> 8);
    };
    switch (type) {
      case GgmlType::Q8_0:
        put(0, 0.02f / 73.0f);
        break;
      case GgmlType::Q4_0:
        put(0, 0.02f / 4.6f);
        break;
      case GgmlType::Q4_1:
        put(0, 0.02f / 4.6f);
        put(2, -7.5f * 0.02f / 4.6f);
        break;
      case GgmlType::Q4_K:
        put(0, 0.02f / 218.0f);
        put(2, 7.5f * 0.02f / 218.0f);
        break;
      default:
        break;
    }
  }
}

}  // namespace

bool quant_supported(GgmlType t) {
  return t == GgmlType::Q8_0 || t == GgmlType::Q4_0 || t == GgmlType::Q4_1 || t == GgmlType::Q4_K;
}

bool gemv_quant_supported(const LinearParams& p) {
  if (!p.wq || !quant_supported(p.wq_type)) return false;
  const int64_t block = ggml_block_elems(p.wq_type);
  return p.n >= 1 && p.n <= kGemvMaxRows && p.in % block == 0 && p.x_stride % 8 == 0 &&
         reinterpret_cast<uintptr_t>(p.x) % 16 == 0 &&
         p.wq_row_bytes == static_cast<int64_t>(ggml_row_bytes(p.wq_type, p.in));
}

void gemv_quant(const LinearParams& p, cudaStream_t stream) {
  launch<false>(p, stream);
}

void gemv_quant_swiglu(const LinearParams& p, cudaStream_t stream) {
  SA_CHECK(p.out % 2 == 0 && p.y_bf16 && !p.y_f32 && p.y_stride >= p.out / 2,
           "gemv_quant_swiglu: needs an even output count and a bf16 result of half of it");
  launch<true>(p, stream);
}

void dequantize_rows(GgmlType type, const uint8_t* src, int64_t row_bytes, int64_t r0, int rows,
                     int cols, __nv_bfloat16* dst, cudaStream_t stream) {
  if (rows == 0) return;
  SA_CHECK(cols % ggml_block_elems(type) == 0, "dequantize_rows: ", cols, " columns of ",
           ggml_type_name(type));
  const int64_t units = int64_t{rows} * (cols / 32);
  const int grid = static_cast<int>(units / 256 + 1 < 16384 ? units / 256 + 1 : 16384);
  switch (type) {
    case GgmlType::Q8_0:
      dequantize_rows_kernel<Q8_0><<<grid, 256, 0, stream>>>(src, row_bytes, r0, rows, cols, dst);
      break;
    case GgmlType::Q4_0:
      dequantize_rows_kernel<Q4_0><<<grid, 256, 0, stream>>>(src, row_bytes, r0, rows, cols, dst);
      break;
    case GgmlType::Q4_1:
      dequantize_rows_kernel<Q4_1><<<grid, 256, 0, stream>>>(src, row_bytes, r0, rows, cols, dst);
      break;
    case GgmlType::Q4_K:
      dequantize_rows_kernel<Q4_K><<<grid, 256, 0, stream>>>(src, row_bytes, r0, rows, cols, dst);
      break;
    default:
      fail("dequantize_rows: no GPU kernel for ", ggml_type_name(type));
  }
  SA_LAUNCHED("dequantize_rows_kernel");
}

void embedding_quant(const EmbeddingQuantParams& p, cudaStream_t stream) {
  if (p.n == 0) return;
  SA_CHECK(p.d % ggml_block_elems(p.type) == 0, "embedding_quant: width ", p.d, " of ",
           ggml_type_name(p.type));
  switch (p.type) {
    case GgmlType::Q8_0:
      embedding_quant_kernel<Q8_0><<<p.n, 128, 0, stream>>>(p);
      break;
    case GgmlType::Q4_0:
      embedding_quant_kernel<Q4_0><<<p.n, 128, 0, stream>>>(p);
      break;
    case GgmlType::Q4_1:
      embedding_quant_kernel<Q4_1><<<p.n, 128, 0, stream>>>(p);
      break;
    case GgmlType::Q4_K:
      embedding_quant_kernel<Q4_K><<<p.n, 128, 0, stream>>>(p);
      break;
    default:
      fail("embedding_quant: no GPU kernel for ", ggml_type_name(p.type));
  }
  SA_LAUNCHED("embedding_quant_kernel");
}

void random_blocks(GgmlType type, uint8_t* dst, int64_t n_blocks, uint64_t seed,
                   cudaStream_t stream) {
  SA_CHECK(quant_supported(type), "random_blocks: no GPU kernel for ", ggml_type_name(type));
  if (n_blocks == 0) return;
  const int64_t grid = (n_blocks + 255) / 256;
  random_blocks_kernel<<<static_cast<unsigned>(grid < 8192 ? grid : 8192), 256, 0, stream>>>(
      type, dst, n_blocks, static_cast<int>(ggml_block_bytes(type)), seed);
  SA_LAUNCHED("random_blocks_kernel");
}

}  // namespace starattn::cuda
