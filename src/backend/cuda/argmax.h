// The greedy next token on the device (CudaBackend::forward_greedy), so that only its id crosses
// to the host.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace starattn::cuda {

// Lowest index of the row's maximum; NaN never wins (a row of NaN gives 0), as starattn::argmax.
struct ArgmaxParams {
  const float* logits = nullptr;  // [n, vocab], row stride `stride`
  int64_t stride = 0;
  int n = 0;
  int vocab = 0;
  int* out = nullptr;  // [n] device
};
void argmax(const ArgmaxParams& p, cudaStream_t stream);

}  // namespace starattn::cuda
