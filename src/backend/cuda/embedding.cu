#include "backend/cuda/cuda_check.h"
#include "backend/cuda/embedding.h"

namespace starattn::cuda {
namespace {

// One block per token; consecutive threads read consecutive columns (coalesced).
__global__ void embedding_kernel(EmbeddingParams p) {
  const int i = blockIdx.x;
  const int tok = p.tokens[i];
  float* out = p.out + static_cast<int64_t>(i) * p.d;
  if (tok < 0 || tok >= p.vocab) {
    for (int j = threadIdx.x; j < p.d; j += blockDim.x) out[j] = __int_as_float(0x7fc00000);
    return;
  }
  const __nv_bfloat16* row = p.table + static_cast<int64_t>(tok) * p.d;
  for (int j = threadIdx.x; j < p.d; j += blockDim.x) out[j] = __bfloat162float(row[j]);
}

}  // namespace

void embedding(const EmbeddingParams& p, cudaStream_t stream) {
  if (p.n == 0) return;
  embedding_kernel<<<p.n, 256, 0, stream>>>(p);
  SA_LAUNCHED("embedding_kernel");
}

}  // namespace starattn::cuda
