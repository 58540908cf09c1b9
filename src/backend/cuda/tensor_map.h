// TMA tensor maps (sm_90) over the attention kernels' [rows, heads, head_dim] tensors (Q, and
// the K and V of a bf16 cache or the codes of an fp8 one; attention.h).
#pragma once

#include <cuda.h>

#include <cstdint>

namespace starattn::cuda::attn {

// How a box of box_rows rows of one head lands in shared memory.
enum class MapTile {
  kBf16Sw128,  // bf16: boxes of 64 columns, 128-byte-swizzled rows
  kFp8Linear,  // fp8 codes: all head_dim bytes of a row, rows one after another
  kFp8Sw128,   // fp8 codes of head_dim 128: one 128-byte row a line, 128-byte swizzle
};

// row_stride in elements (bf16) or bytes (fp8); rows of 0 maps one row (nothing to load).
CUtensorMap make_map(const void* base, int head_dim, int heads, int64_t rows, int64_t row_stride,
                     int box_rows, MapTile tile);

}  // namespace starattn::cuda::attn
