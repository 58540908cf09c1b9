#include <cfloat>
#include <climits>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/reduce.cuh"
#include "backend/cuda/sampling.h"
#include "starattn/error.h"

namespace starattn::cuda {
namespace {

constexpr int kThreads = 1024;

struct Best {
  float v;
  int i;  // INT_MAX: nothing seen yet (or only NaN)
};

__device__ __forceinline__ Best better(Best a, Best b) {
  if (b.i == INT_MAX) return a;
  if (a.i == INT_MAX) return b;
  return (b.v > a.v || (b.v == a.v && b.i < a.i)) ? b : a;
}

// Best over the block; every thread gets it. Contains __syncthreads.
__device__ Best block_best(Best b) {
  __shared__ float sv[32];
  __shared__ int si[32];
  for (int o = 16; o > 0; o >>= 1)
    b = better(b, Best{__shfl_xor_sync(0xffffffffu, b.v, o), __shfl_xor_sync(0xffffffffu, b.i, o)});
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) {
    sv[warp] = b.v;
    si[warp] = b.i;
  }
  __syncthreads();
  b = lane < kThreads / 32 ? Best{sv[lane], si[lane]} : Best{0.0f, INT_MAX};
  for (int o = 16; o > 0; o >>= 1)
    b = better(b, Best{__shfl_xor_sync(0xffffffffu, b.v, o), __shfl_xor_sync(0xffffffffu, b.i, o)});
  return b;
}

__global__ void __launch_bounds__(kThreads) argmax_kernel(ArgmaxParams p) {
  const float* x = p.logits + blockIdx.x * p.stride;
  Best b{0.0f, INT_MAX};
  for (int j = threadIdx.x; j < p.vocab; j += kThreads)
    if (!isnan(x[j])) b = better(b, Best{x[j], j});
  b = block_best(b);
  if (threadIdx.x == 0) p.out[blockIdx.x] = b.i == INT_MAX ? 0 : b.i;
}

// Order-preserving map of a float to an unsigned key (larger float, larger key); NaN gets 0, below
// every number, so it is never inside a kept prefix.
__device__ __forceinline__ uint32_t order_key(float f) {
  if (isnan(f)) return 0u;
  const uint32_t u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// Weight of the candidates whose key is >= k (count when kCount). Contains __syncthreads.
template <bool kCount>
__device__ double mass_at_least(const float* x, int vocab, uint32_t k, float m, double t) {
  double s = 0.0;
  for (int j = threadIdx.x; j < vocab; j += kThreads) {
    if (order_key(x[j]) < k) continue;
    s += kCount ? 1.0 : exp((static_cast<double>(x[j]) - m) / t);
  }
  return block_sum<kThreads>(s);
}

// The largest key K in [lo, 2^32) with pred(K), where pred is true at lo and monotone (true, then
// false as K grows): 32 halvings of the key range.
template <typename Pred>
__device__ uint32_t bisect(uint32_t lo, Pred pred) {
  uint64_t l = lo, h = 1ull << 32;  // pred(l) holds; h is past the end
  while (h - l > 1) {
    const uint64_t mid = l + (h - l) / 2;
    if (pred(static_cast<uint32_t>(mid))) {
      l = mid;
    } else {
      h = mid;
    }
  }
  return static_cast<uint32_t>(l);
}

__global__ void __launch_bounds__(kThreads) sample_kernel(SampleParams p) {
  const int row = blockIdx.x;
  const float* x = p.logits + row * p.stride;
  Best b{0.0f, INT_MAX};
  for (int j = threadIdx.x; j < p.vocab; j += kThreads)
    if (!isnan(x[j])) b = better(b, Best{x[j], j});
  b = block_best(b);
  if (b.i == INT_MAX) {  // nothing but NaN
    if (threadIdx.x == 0) p.out[row] = 0;
    return;
  }
  const float m = b.v;
  const double t = static_cast<double>(p.temperature);

  // Top-k: the key of the k-th best candidate.
  uint32_t k_cut = 1u;  // every non-NaN candidate
  if (p.top_k > 0 && p.top_k < p.vocab) {
    k_cut = bisect(1u, [&](uint32_t k) {
      return mass_at_least<true>(x, p.vocab, k, m, t) >= static_cast<double>(p.top_k);
    });
  }
  const double total = mass_at_least<false>(x, p.vocab, k_cut, m, t);
  // Top-p: the shortest prefix reaching top_p of the total.
  uint32_t p_cut = k_cut;
  double kept = total;
  if (p.top_p < 1.0f) {
    const double target = static_cast<double>(p.top_p) * total;
    p_cut = bisect(k_cut,
                   [&](uint32_t k) { return mass_at_least<false>(x, p.vocab, k, m, t) >= target; });
    kept = mass_at_least<false>(x, p.vocab, p_cut, m, t);
  }
  // The draw: the first candidate (best first) whose running weight reaches u * kept.
  const double r = sample_uniform(p.seed, row) * kept;
  const uint32_t pick =
      bisect(p_cut, [&](uint32_t k) { return mass_at_least<false>(x, p.vocab, k, m, t) >= r; });
  Best hit{0.0f, INT_MAX};
  for (int j = threadIdx.x; j < p.vocab; j += kThreads)
    if (order_key(x[j]) == pick && j < hit.i) hit = Best{x[j], j};
  hit = block_best(hit);
  if (threadIdx.x == 0) p.out[row] = hit.i == INT_MAX ? b.i : hit.i;
}

}  // namespace

void argmax(const ArgmaxParams& p, cudaStream_t stream) {
  if (p.n == 0) return;
  SA_CHECK(p.vocab > 0, "argmax: empty rows");
  argmax_kernel<<<p.n, kThreads, 0, stream>>>(p);
  SA_LAUNCHED("argmax_kernel");
}

void sample(const SampleParams& p, cudaStream_t stream) {
  if (p.n == 0) return;
  SA_CHECK(p.vocab > 0, "sample: empty rows");
  SA_CHECK(p.temperature > 0.0f, "sample: temperature must be > 0 (greedy is argmax), got ",
           p.temperature);
  SA_CHECK(p.top_k >= 0, "sample: top_k must be >= 0, got ", p.top_k);
  SA_CHECK(p.top_p > 0.0f && p.top_p <= 1.0f, "sample: top_p must be in (0, 1], got ", p.top_p);
  sample_kernel<<<p.n, kThreads, 0, stream>>>(p);
  SA_LAUNCHED("sample_kernel");
}

}  // namespace starattn::cuda
