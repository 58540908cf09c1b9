// Token embedding gather: out[i] = table[tokens[i]] as fp32, the start of the fp32 residual stream.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

namespace starattn::cuda {

struct EmbeddingParams {
  const int* tokens = nullptr;           // [n] device; ids in [0, vocab) (checked on the host)
  const __nv_bfloat16* table = nullptr;  // [vocab, d]
  float* out = nullptr;                  // [n, d]
  int n = 0;
  int d = 0;
  int vocab = 0;  // an id outside [0, vocab) gives a row of NaN, so it cannot pass unnoticed
};

void embedding(const EmbeddingParams& p, cudaStream_t stream);

}  // namespace starattn::cuda
