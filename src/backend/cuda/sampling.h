// Next-token choice on the device: argmax, and temperature / top-k / top-p sampling with the same
// meaning as the host Sampler (engine/sampler.h), so the engine can keep logits on the GPU.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#if defined(__CUDACC__)
#define SA_HOST_DEVICE __host__ __device__
#else
#define SA_HOST_DEVICE
#endif

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

// Per row, as Sampler::sample: candidates ordered by logit (best first); top_k keeps the first k;
// weights w = exp((logit - max) / temperature); top_p keeps the shortest prefix whose weight
// reaches top_p of the total; then the first candidate whose running weight reaches u * (kept
// total), with u = sample_uniform(seed, row). The prefixes are found by bisection on the logit
// value, so tokens tied at a cut are all kept (the host keeps an arbitrary subset of them); NaN
// logits are never chosen. Weights are summed in double.
struct SampleParams {
  const float* logits = nullptr;  // [n, vocab], row stride `stride`
  int64_t stride = 0;
  int n = 0;
  int vocab = 0;
  float temperature = 1.0f;  // > 0 (greedy is argmax)
  int top_k = 0;             // 0 = no cut
  float top_p = 1.0f;        // in (0, 1]; 1 = no cut
  uint64_t seed = 0;
  int* out = nullptr;  // [n] device
};
void sample(const SampleParams& p, cudaStream_t stream);

// The uniform draw of `row` in (0, 1): a splitmix64 hash of (seed, row), the same on host and
// device.
SA_HOST_DEVICE inline double sample_uniform(uint64_t seed, int row) {
  uint64_t h = seed + (static_cast<uint64_t>(row) + 1) * 0x9E3779B97F4A7C15ull;
  h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
  h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
  h ^= h >> 31;
  return (static_cast<double>(h >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

}  // namespace starattn::cuda
