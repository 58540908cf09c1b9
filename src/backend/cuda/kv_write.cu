#include "backend/cuda/kv_write.h"

#include <cuda_fp8.h>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/elementwise.h"
#include "starattn/error.h"

namespace starattn::cuda {
namespace {

constexpr int kWarps = 4;

// The (row, kv head) item of this warp, for kernels of one warp per item of K (blockIdx.y 0) or
// V (1): its source values, the cache row it goes to, and the head. False past the last item.
struct HeadItem {
  const __nv_bfloat16* x;  // the head's head_dim source values
  int64_t row;             // the cache row
  int h;
};
__device__ __forceinline__ bool head_item(const KvWriteParams& p, HeadItem* it) {
  const int heads = p.format.n_kv_heads;
  const int64_t item = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (item >= static_cast<int64_t>(p.n) * heads) return false;
  const int64_t j = item / heads;
  it->h = static_cast<int>(item % heads);
  it->row = (p.row_at != nullptr ? *p.row_at : p.row) + j;
  it->x =
      p.src[blockIdx.y] + j * p.format.kv_dim() + static_cast<int64_t>(it->h) * p.format.head_dim;
  return true;
}

// One warp per (row, kv head) of K (blockIdx.y 0) or V (1): amax over the head's values by a
// warp reduction (max is exact, so the order does not matter), the scale amax / 448, then each
// value divided by it and rounded to E4M3. Lane 0 stores the scale; head 0 also zeroes the row's
// padding, so a row's bytes are fully defined.
__global__ void quantize_rows_kernel(KvWriteParams p) {
  HeadItem it;
  if (!head_item(p, &it)) return;
  const int lane = threadIdx.x & 31, h = it.h;
  const int heads = p.format.n_kv_heads, d = p.format.head_dim;
  const int64_t kv_dim = p.format.kv_dim();
  const __nv_bfloat16* x = it.x;
  uint8_t* out = static_cast<uint8_t*>(p.dst[blockIdx.y]) +
                 it.row * static_cast<int64_t>(p.format.row_bytes());

  float amax = 0.0f;
  for (int e = lane; e < d; e += 32) amax = fmaxf(amax, fabsf(__bfloat162float(x[e])));
#pragma unroll
  for (int off = 16; off > 0; off >>= 1)
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
  const float s = __fdiv_rn(amax, kFp8Max);
  uint8_t* q = out + static_cast<int64_t>(h) * d;
  for (int e = lane; e < d; e += 32)
    q[e] = s > 0.0f ? __nv_cvt_float_to_fp8(__fdiv_rn(__bfloat162float(x[e]), s), __NV_SATFINITE,
                                            __NV_E4M3)
                    : 0;
  if (lane == 0) *reinterpret_cast<float*>(out + kv_dim + 4 * h) = s;
  if (h == 0) {
    uint8_t* pad = out + kv_dim + 4 * heads;
    const int pad_bytes = static_cast<int>(p.format.row_bytes() - kv_dim - 4 * heads);
    for (int b = lane; b < pad_bytes; b += 32) pad[b] = 0;
  }
}

// The int8-grid experiment (kv_format.h): one warp per (row, kv head) of K or V, as above; lane l
// holds channels l + 32 i. A group's amax is the max over its channels' 32-lane maxima (groups
// are multiples of 8 channels, so a group of fewer than 32 spans lanes, not slots: reduce over
// the lanes of the group only). Then rint(x / s) * s with IEEE operations, rounded to bf16.
__global__ void int8_grid_rows_kernel(KvWriteParams p, int group) {
  HeadItem it;
  if (!head_item(p, &it)) return;
  const int lane = threadIdx.x & 31, d = p.format.head_dim;
  const __nv_bfloat16* x = it.x;
  __nv_bfloat16* out = static_cast<__nv_bfloat16*>(p.dst[blockIdx.y]) + it.row * p.format.kv_dim() +
                       static_cast<int64_t>(it.h) * d;
  constexpr int kMaxSlots = 4;  // head_dim <= 128
  float v[kMaxSlots], amax[kMaxSlots];
  const int slots = d / 32;
  // Lanes that share a group within one slot: all 32 when group >= 32, else group lanes.
  const int lanes = group >= 32 ? 32 : group;
#pragma unroll
  for (int i = 0; i < kMaxSlots; ++i) {
    v[i] = i < slots ? __bfloat162float(x[lane + 32 * i]) : 0.0f;
    float m = fabsf(v[i]);
    for (int off = lanes / 2; off > 0; off >>= 1)
      m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, off));
    amax[i] = m;
  }
  // Groups of 64 or 128 channels span slots: channel lane + 32 i is in group (32 i) / group.
  const int per = group > 32 ? group / 32 : 1;
#pragma unroll
  for (int i = 0; i < kMaxSlots; ++i) {
    if (i >= slots) break;
    float m = 0.0f;
    const int first = i / per * per;
    for (int k = first; k < first + per; ++k) m = fmaxf(m, amax[k]);
    const float s = __fdiv_rn(m, kInt8Max);
    const float y = s > 0.0f ? __fmul_rn(rintf(__fdiv_rn(v[i], s)), s) : 0.0f;
    out[lane + 32 * i] = __float2bfloat16_rn(y);
  }
}

}  // namespace

void write_kv_rows(const KvWriteParams& p, cudaStream_t stream) {
  if (p.n == 0) return;
  const size_t row_bytes = p.format.row_bytes();
  const int64_t items = static_cast<int64_t>(p.n) * p.format.n_kv_heads;
  const int64_t blocks = (items + kWarps - 1) / kWarps;
  SA_CHECK(blocks < (int64_t{1} << 31), "write_kv_rows: ", p.n, " rows is too many");
  if (p.format.type == KvType::Act) {
    SA_CHECK(p.format.act_bytes == 2, "write_kv_rows: the GPU's KV rows are bf16");
    if (const int group = kv_int8_grid_group(p.format.head_dim); group > 0) {
      SA_CHECK(p.format.head_dim % 32 == 0 && p.format.head_dim <= 128,
               "STARATTN_KV_EXPERIMENT: head_dim ", p.format.head_dim, " is not supported here");
      int8_grid_rows_kernel<<<dim3(static_cast<unsigned>(blocks), 2), kWarps * 32, 0, stream>>>(
          p, group);
      SA_LAUNCHED("int8_grid_rows_kernel");
      return;
    }
    if (p.row_at != nullptr) {
      copy_rows_at({{p.dst[0], p.dst[1]}, {p.src[0], p.src[1]}, p.row_at, row_bytes, p.n}, stream);
      return;
    }
    for (int a = 0; a < 2; ++a)
      SA_CUDA(cudaMemcpyAsync(static_cast<char*>(p.dst[a]) + p.row * row_bytes, p.src[a],
                              p.n * row_bytes, cudaMemcpyDeviceToDevice, stream));
    return;
  }
  SA_CHECK(p.format.type == KvType::Fp8, "write_kv_rows: unknown KV type ",
           static_cast<int>(p.format.type));
  quantize_rows_kernel<<<dim3(static_cast<unsigned>(blocks), 2), kWarps * 32, 0, stream>>>(p);
  SA_LAUNCHED("quantize_rows_kernel");
}

}  // namespace starattn::cuda
