// Writing a forward pass's K and V rows into a KV cache of either type (attention/kv_format.h):
// bf16 rows are copied, fp8 rows quantised here, once, as they are written, into E4M3 bytes and
// one fp32 scale per (token, kv head), the same bytes as the CPU's quantize_kv_rows_fp8 for the
// same values (IEEE divisions, round-to-nearest-even saturating conversion).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "attention/kv_format.h"

namespace starattn::cuda {

struct KvWriteParams {
  void* dst[2] = {};                 // the cache's K and V arrays: row r at dst + r * row_bytes
  const __nv_bfloat16* src[2] = {};  // the new K and V: [n, kv_dim] contiguous
  KvRowFormat format;                // the cache's rows (act_bytes 2)
  int64_t row = 0;                   // the first row written, unless row_at is set
  const int* row_at = nullptr;       // device int: the first row, read when the kernel runs
  int n = 0;
};
void write_kv_rows(const KvWriteParams& p, cudaStream_t stream);

}  // namespace starattn::cuda
