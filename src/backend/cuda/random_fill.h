// Random tensors made on the device from a hash of (seed, index): the weights of the random
// Llama-3.1-8B-shaped speed model (16 GB that never touch the host) and test inputs.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace starattn::cuda {

// x[i] = mean + uniform(-half_width, half_width); std = half_width / sqrt(3). Exactly one of
// x_bf16, x_f32 is set. The values depend only on (seed, i), never on the launch shape.
struct RandomFillParams {
  __nv_bfloat16* x_bf16 = nullptr;  // [count]
  float* x_f32 = nullptr;           // [count]
  int64_t count = 0;
  uint64_t seed = 0;
  float mean = 0.0f;
  float half_width = 1.0f;
};
void random_fill(const RandomFillParams& p, cudaStream_t stream);

}  // namespace starattn::cuda
