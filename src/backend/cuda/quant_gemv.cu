#include <cuda_fp16.h>

#include <cstdint>

#include "backend/cpu/quant_kernels.h"
#include "backend/cuda/activations.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/gemv.h"
#include "backend/cuda/pdl.cuh"
#include "backend/cuda/quant_gemv.h"
#include "starattn/error.h"
#include "util/splitmix64.h"

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

// The weights of one 32-element unit as eight words of four 8-bit integers (element 4i + k is
// byte k of q[i]), with what turns their integer dot product with an activation block into the
// fp32 term of the CPU's gemv_q8 kernels (quant_scalar.cpp), operation for operation.
struct UnitInts {
  int q[8];
  float d, m;  // Q8_0/Q4_0: d; Q4_1: d, m; Q4_K: d, dmin
  int sc, mn;  // Q4_K: the sub-block's 6-bit scale and min
};

// Eight words of a block's codes at byte offset `at` of the stage, which may be 2 mod 4: read
// from the word boundary below and shifted by two bytes (the stage is padded for the word past
// the end).
__device__ __forceinline__ void words_at(const uint8_t* stage, int at, int* out, int n) {
  const int* w = reinterpret_cast<const int*>(stage + (at & ~3));
  const unsigned sel = (at & 2) ? 0x5432u : 0x3210u;
  int lo = w[0];
  for (int i = 0; i < n; ++i) {
    const int hi = w[i + 1];
    out[i] =
        static_cast<int>(__byte_perm(static_cast<unsigned>(lo), static_cast<unsigned>(hi), sel));
    lo = hi;
  }
}

__device__ __forceinline__ float f16_at_shared(const uint8_t* p) {
  return __half2float(__ushort_as_half(*reinterpret_cast<const unsigned short*>(p)));
}

// Per type: load(stage, block offset, unit) fills UnitInts; term(w, isum, xd, xdsum) is the CPU
// kernel's expression for the unit.
struct Q8_0Ints {
  __device__ static void load(const uint8_t* s, int at, int, UnitInts& w) {
    w.d = f16_at_shared(s + at);
    words_at(s, at + 2, w.q, 8);
  }
  __device__ static float term(const UnitInts& w, int isum, float xd, float) {
    return __fmul_rn(__fmul_rn(w.d, xd), static_cast<float>(isum));
  }
};

__device__ __forceinline__ void split_nibbles(const int* packed, UnitInts& w) {
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    w.q[i] = packed[i] & 0x0F0F0F0F;             // elements 0..15: low nibbles
    w.q[i + 4] = (packed[i] >> 4) & 0x0F0F0F0F;  // elements 16..31: high nibbles
  }
}

struct Q4_0Ints {
  __device__ static void load(const uint8_t* s, int at, int, UnitInts& w) {
    w.d = f16_at_shared(s + at);
    int packed[4];
    words_at(s, at + 2, packed, 4);
    split_nibbles(packed, w);
  }
  __device__ static float term(const UnitInts& w, int isum, float xd, float xdsum) {
    return __fsub_rn(__fmul_rn(__fmul_rn(w.d, xd), static_cast<float>(isum)),
                     __fmul_rn(__fmul_rn(8.0f, w.d), xdsum));
  }
};

struct Q4_1Ints {
  __device__ static void load(const uint8_t* s, int at, int, UnitInts& w) {
    w.d = f16_at_shared(s + at);
    w.m = f16_at_shared(s + at + 2);
    int packed[4];
    const int* src = reinterpret_cast<const int*>(s + at + 4);  // blocks of 20 bytes: aligned
#pragma unroll
    for (int i = 0; i < 4; ++i) packed[i] = src[i];
    split_nibbles(packed, w);
  }
  __device__ static float term(const UnitInts& w, int isum, float xd, float xdsum) {
    return __fadd_rn(__fmul_rn(__fmul_rn(w.d, xd), static_cast<float>(isum)),
                     __fmul_rn(w.m, xdsum));
  }
};

struct Q4_KInts {
  __device__ static void load(const uint8_t* s, int at, int j, UnitInts& w) {
    const uint8_t* b = s + at;  // blocks of 144 bytes: 16-byte aligned
    w.d = f16_at_shared(b);
    w.m = f16_at_shared(b + 2);
    const uint8_t* sc = b + 4;
    if (j < 4) {
      w.sc = sc[j] & 63;
      w.mn = sc[j + 4] & 63;
    } else {
      w.sc = (sc[j + 4] & 0x0F) | ((sc[j - 4] >> 6) << 4);
      w.mn = (sc[j + 4] >> 4) | ((sc[j] >> 6) << 4);
    }
    const uint4* q = reinterpret_cast<const uint4*>(b + 16 + 32 * (j / 2));
    const uint4 a = q[0], c = q[1];
    const unsigned packed[8] = {a.x, a.y, a.z, a.w, c.x, c.y, c.z, c.w};
    const int shift = 4 * (j % 2);
#pragma unroll
    for (int i = 0; i < 8; ++i) w.q[i] = static_cast<int>((packed[i] >> shift) & 0x0F0F0F0Fu);
  }
  __device__ static float term(const UnitInts& w, int isum, float xd, float xdsum) {
    return __fsub_rn(__fmul_rn(__fmul_rn(w.d, xd), static_cast<float>(w.sc * isum)),
                     __fmul_rn(__fmul_rn(w.m, static_cast<float>(w.mn)), xdsum));
  }
};

template <class T>
struct IntsOf;
template <>
struct IntsOf<Q8_0> {
  using type = Q8_0Ints;
};
template <>
struct IntsOf<Q4_0> {
  using type = Q4_0Ints;
};
template <>
struct IntsOf<Q4_1> {
  using type = Q4_1Ints;
};
template <>
struct IntsOf<Q4_K> {
  using type = Q4_KInts;
};

constexpr int kWarps = 8;
// Each warp streams its rows through a ring of stages in shared memory with cp.async: a step is
// 32 units (one per lane) of blocks, and about 4.5 KB per warp stays in flight, so that every SM
// keeps enough bytes on their way to run at the memory's speed (one stage at a time ran at 0.75
// TB/s).
constexpr int kRingBytes = 4608;
template <class T>
struct Ring {
  static constexpr int kBlocksPerStep = 32 / T::kUnits;
  static constexpr int kStepBytes = kBlocksPerStep * T::kBytes;
  static constexpr int kStages = kRingBytes / kStepBytes < 2 ? 2 : kRingBytes / kStepBytes;
  static constexpr int kBytes = kStages * kStepBytes + 16;  // + the word words_at may read past
};

__device__ __forceinline__ void cp_async16(void* dst, const void* src) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(src) : "memory");
}
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

// The activations, quantised per 32 elements as the CPU's ActBlock: codes [n, in] at the start
// of the scratch, then (d, d * sum of codes) [n, in / 32].
struct ActView {
  const int8_t* q;
  const float2* s;
  int in;
};
__device__ __forceinline__ ActView act_view(const LinearParams& p) {
  const auto* base = static_cast<const int8_t*>(p.act_scratch);
  return {base, reinterpret_cast<const float2*>(base + kGemvMaxRows * int64_t{kGemvQuantMaxIn}),
          p.in};
}

// One warp's dot products of W weight rows (rows[0..W)) with the R quantised activation rows,
// summed over the warp (every lane ends with the totals). ring: the warp's Ring<T>::kBytes.
template <class T, int R, int W>
__device__ void rows_dot(const LinearParams& p, const int64_t* rows, uint8_t* ring,
                         float (&acc)[W][R]) {
  using I = typename IntsOf<T>::type;
  using G = Ring<T>;
  const int lane = threadIdx.x & 31;
  const int blocks = p.in / (32 * T::kUnits);
  const int steps = (blocks + G::kBlocksPerStep - 1) / G::kBlocksPerStep;
  const int last_nb = blocks - (steps - 1) * G::kBlocksPerStep;  // blocks in a row's last step
  // Rows and steps are whole 16-byte pieces when the row length is (every multiple of 256
  // elements); otherwise 2-byte copies, which wait for their loads (block sizes are even).
  const bool aligned = reinterpret_cast<uintptr_t>(p.wq) % 16 == 0 && p.wq_row_bytes % 16 == 0;
  const uint8_t* row_at[W];
#pragma unroll
  for (int w = 0; w < W; ++w) row_at[w] = p.wq + rows[w] * p.wq_row_bytes;
  // Steps go row by row; counters, not divisions, say which one is next.
  int in_row = 0, in_k = 0, in_slot = 0;  // the next step to issue
  const auto issue = [&] {
    if (in_row < W) {
      const int bytes = (in_k == steps - 1 ? last_nb : G::kBlocksPerStep) * T::kBytes;
      const uint8_t* src = row_at[0];
#pragma unroll
      for (int w = 1; w < W; ++w)
        if (in_row == w) src = row_at[w];
      src += in_k * G::kStepBytes;
      uint8_t* dst = ring + in_slot * G::kStepBytes;
      if (aligned && bytes % 16 == 0) {
        for (int i = lane; i < bytes / 16; i += 32) cp_async16(dst + 16 * i, src + 16 * i);
      } else {
        const auto* from = reinterpret_cast<const unsigned short*>(src);
        auto* to = reinterpret_cast<unsigned short*>(dst);
        for (int i = lane; i < bytes / 2; i += 32) to[i] = __ldcs(from + i);
      }
      if (++in_k == steps) in_k = 0, ++in_row;
      if (++in_slot == G::kStages) in_slot = 0;
    }
    cp_async_commit();  // an empty group past the end keeps the count the wait relies on
  };
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int w = 0; w < W; ++w) acc[w][r] = 0.0f;
  // The weights do not depend on the kernel before (the activations do): under PDL the first
  // stages are on their way while it finishes.
  for (int s = 0; s < G::kStages - 1; ++s) issue();
  pdl_wait();
  const ActView act = act_view(p);
  const int blk = lane / T::kUnits, uin = lane % T::kUnits;
  // This lane's unit in the step: its codes (32 bytes) and scales in each activation row.
  const uint4* xq = reinterpret_cast<const uint4*>(act.q) + 2 * (blk * T::kUnits + uin);
  const float2* xs = act.s + blk * T::kUnits + uin;
  int slot = 0;
#pragma unroll 1
  for (int w = 0; w < W; ++w) {
    for (int k = 0; k < steps; ++k) {
      issue();
      cp_async_wait<G::kStages - 1>();  // this lane's copies of the step have landed
      __syncwarp();                     // and every other lane's
      if (blk < (k == steps - 1 ? last_nb : G::kBlocksPerStep)) {
        UnitInts u;
        I::load(ring + slot * G::kStepBytes, blk * T::kBytes, uin, u);
        const int unit0 = k * G::kBlocksPerStep * T::kUnits;  // the step's first unit
#pragma unroll
        for (int r = 0; r < R; ++r) {
          const uint4* x = xq + 2 * (int64_t{r} * (act.in / 32) + unit0);
          const uint4 x0 = __ldg(x), x1 = __ldg(x + 1);
          const int xv[8] = {static_cast<int>(x0.x), static_cast<int>(x0.y), static_cast<int>(x0.z),
                             static_cast<int>(x0.w), static_cast<int>(x1.x), static_cast<int>(x1.y),
                             static_cast<int>(x1.z), static_cast<int>(x1.w)};
          int isum = 0;
#pragma unroll
          for (int i = 0; i < 8; ++i) isum = __dp4a(u.q[i], xv[i], isum);
          const float2 sc = __ldg(xs + int64_t{r} * (act.in / 32) + unit0);
          const float t = I::term(u, isum, sc.x, sc.y);
#pragma unroll
          for (int wr = 0; wr < W; ++wr)
            if (wr == w) acc[wr][r] += t;
        }
      }
      if (++slot == G::kStages) slot = 0;
      __syncwarp();  // before a later issue() refills this stage
    }
  }
#pragma unroll
  for (int w = 0; w < W; ++w)
#pragma unroll
    for (int r = 0; r < R; ++r)
      for (int m = 16; m > 0; m >>= 1) acc[w][r] += __shfl_xor_sync(0xffffffffu, acc[w][r], m);
}

// Block: kWarps warps, one output feature each (kSwiglu: one gate/up pair each, both rows in one
// pipeline).
template <class T, int R, bool kSwiglu>
__global__ void __launch_bounds__(kWarps * 32) gemv_quant_kernel(LinearParams p) {
  __shared__ __align__(16) uint8_t ring[kWarps][Ring<T>::kBytes];
  pdl_allow_dependents();
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t o = int64_t{blockIdx.x} * kWarps + warp;
  if constexpr (kSwiglu) {
    const int64_t f = p.out / 2;
    if (o >= f) return;  // no block-wide barrier below: a warp may leave
    const int64_t rows[2] = {o, f + o};
    float acc[2][R];
    rows_dot<T, R, 2>(p, rows, ring[warp], acc);
    if (lane == 0) {
#pragma unroll
      for (int r = 0; r < R; ++r) {
        // Rounded to bf16 first, as gemv_swiglu (gemv.cu) and the unfused path do.
        const float g = __bfloat162float(__float2bfloat16_rn(acc[0][r]));
        const float u = __bfloat162float(__float2bfloat16_rn(acc[1][r]));
        p.y_bf16[r * p.y_stride + o] = __float2bfloat16_rn(silu_mul(g, u));
      }
    }
  } else {
    if (o >= p.out) return;
    const int64_t rows[1] = {o};
    float acc[1][R];
    rows_dot<T, R, 1>(p, rows, ring[warp], acc);
    if (lane == 0) {
#pragma unroll
      for (int r = 0; r < R; ++r) {
        if (p.y_f32) {
          float* y = p.y_f32 + r * p.y_stride + o;
          *y = p.accumulate ? *y + acc[0][r] : acc[0][r];
        } else {
          p.y_bf16[r * p.y_stride + o] = __float2bfloat16_rn(acc[0][r]);
        }
      }
    }
  }
}

// x [n, in] bf16 -> the ActView blocks, one thread per 32 elements, with the CPU's
// quantize_act operations: d = max|x| / 127, codes nearbyint(x / d) through 1 / d, a block
// below kTinyAct as zeros and a block with a NaN or an Inf as d = NaN.
__global__ void quantize_act_kernel(LinearParams p) {
  pdl_wait();  // x comes from the kernel before, and the scratch may still be read by it
  pdl_allow_dependents();
  const int per_row = p.in / 32;
  const int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (i >= int64_t{p.n} * per_row) return;
  const int r = static_cast<int>(i / per_row), b = static_cast<int>(i % per_row);
  const uint4* src = reinterpret_cast<const uint4*>(p.x + r * p.x_stride + 32 * b);
  float x[32];
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    const uint4 v = __ldg(src + k);
    const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&v);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const float2 f = __bfloat1622float2(h[j]);
      x[8 * k + 2 * j] = f.x;
      x[8 * k + 2 * j + 1] = f.y;
    }
  }
  float amax = 0.0f;
  bool finite = true;
#pragma unroll
  for (int k = 0; k < 32; ++k) {
    amax = fmaxf(amax, fabsf(x[k]));
    finite = finite && isfinite(x[k]);
  }
  const float d = amax >= cpu::quant::kTinyAct ? amax / 127.0f : 0.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  unsigned words[8];
  int sum = 0;
#pragma unroll
  for (int w = 0; w < 8; ++w) {
    unsigned packed = 0;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const int q = finite ? __float2int_rn(__fmul_rn(x[4 * w + k], id)) : 0;
      sum += q;
      packed |= (static_cast<unsigned>(q) & 0xFFu) << (8 * k);
    }
    words[w] = packed;
  }
  auto* base = static_cast<int8_t*>(p.act_scratch);
  uint4* dq = reinterpret_cast<uint4*>(base + int64_t{r} * p.in + 32 * b);
  dq[0] = make_uint4(words[0], words[1], words[2], words[3]);
  dq[1] = make_uint4(words[4], words[5], words[6], words[7]);
  auto* ds = reinterpret_cast<float2*>(base + kGemvMaxRows * int64_t{kGemvQuantMaxIn});
  ds[int64_t{r} * per_row + b] =
      finite ? make_float2(d, __fmul_rn(d, static_cast<float>(sum))) : make_float2(NAN, NAN);
}

template <class T, bool kSwiglu>
void launch_rows(const LinearParams& p, int64_t features, cudaStream_t stream) {
  using Kernel = void (*)(LinearParams);
  static constexpr Kernel kernels[kGemvMaxRows] = {
      gemv_quant_kernel<T, 1, kSwiglu>, gemv_quant_kernel<T, 2, kSwiglu>,
      gemv_quant_kernel<T, 3, kSwiglu>, gemv_quant_kernel<T, 4, kSwiglu>,
      gemv_quant_kernel<T, 5, kSwiglu>, gemv_quant_kernel<T, 6, kSwiglu>,
      gemv_quant_kernel<T, 7, kSwiglu>, gemv_quant_kernel<T, 8, kSwiglu>};
  const int64_t blocks = int64_t{p.n} * (p.in / 32);
  launch_pdl(quantize_act_kernel, dim3(static_cast<unsigned>((blocks + 127) / 128)), dim3(128),
             stream, p);
  SA_LAUNCHED("quantize_act_kernel");
  const dim3 grid(static_cast<unsigned>((features + kWarps - 1) / kWarps)), block(kWarps * 32);
  launch_pdl(kernels[p.n - 1], grid, block, stream, p);
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
    // 16-byte stores (a unit's 64 bytes are 64-byte aligned): 2-byte ones left the GEMM tiles'
    // dequantisation well short of the memory's speed.
    uint4* out = reinterpret_cast<uint4*>(dst + r * cols + unit * 32);
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      __nv_bfloat162 h[4];
#pragma unroll
      for (int j = 0; j < 4; ++j)
        h[j] = __floats2bfloat162_rn(v[8 * k + 2 * j], v[8 * k + 2 * j + 1]);
      out[k] = *reinterpret_cast<const uint4*>(h);
    }
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

// Random bytes, then the fp16 scales set: Q8_0 d with codes of std ~73; Q4_K d, dmin for
// d * sc * q of std ~218 d and a mean taken out by the min.
__global__ void random_blocks_kernel(GgmlType type, uint8_t* dst, int64_t n_blocks, int bytes,
                                     uint64_t seed) {
  for (int64_t b = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; b < n_blocks;
       b += int64_t{gridDim.x} * blockDim.x) {
    uint8_t* blk = dst + b * bytes;
    for (int i = 0; i < bytes; i += 8) {
      const uint64_t h =
          splitmix64_mix(seed + static_cast<uint64_t>(b * bytes + i) * kSplitMix64Gamma);
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
  return p.act_scratch && p.n >= 1 && p.n <= kGemvMaxRows && p.in % block == 0 &&
         p.in <= kGemvQuantMaxIn && p.x_stride % 8 == 0 &&
         reinterpret_cast<uintptr_t>(p.x) % 16 == 0 &&
         reinterpret_cast<uintptr_t>(p.act_scratch) % 16 == 0 &&
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
