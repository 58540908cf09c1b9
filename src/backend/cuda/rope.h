// Rotary position embedding, half-split ("neox") layout as in Hugging Face: pairs (j, j + hd/2) of
// every head rotate by angle position * inv_freq[j]. Two kernels:
//  - rope_table: cos/sin [n, hd/2] once per forward (shared by all layers);
//  - qkv_rope: splits the fused QKV GEMM output into contiguous q, k, v, adds the optional QKV bias
//    (Qwen2) and rotates q and k, in one pass over the activations.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "model/config.h"

namespace starattn::cuda {

// Inverse frequencies come from starattn::rope_inv_freq (model/rope_freq.h), shared with the CPU.

struct RopeTableParams {
  const int* positions = nullptr;   // [n] device
  const float* inv_freq = nullptr;  // [half] device
  float* cos = nullptr;             // [n, half]
  float* sin = nullptr;             // [n, half]
  int n = 0;
  int half = 0;
};

// angle = float(position) * inv_freq (an fp32 product, as transformers), then cos/sin in double so
// the values are correctly rounded even for positions near 1M.
void rope_table(const RopeTableParams& p, cudaStream_t stream);

struct QkvRopeParams {
  const __nv_bfloat16* qkv = nullptr;  // [n, q_dim + 2 kv_dim]: q heads, then k heads, then v heads
  int64_t qkv_stride = 0;              // elements between rows of qkv
  const float* bias = nullptr;         // [q_dim + 2 kv_dim] or nullptr
  const float* cos = nullptr;          // [n, head_dim / 2]
  const float* sin = nullptr;          // [n, head_dim / 2]
  __nv_bfloat16* q = nullptr;          // [n, n_heads, head_dim] contiguous
  __nv_bfloat16* k = nullptr;          // [n, n_kv_heads, head_dim] contiguous
  __nv_bfloat16* v = nullptr;          // [n, n_kv_heads, head_dim] contiguous
  int n = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;  // even
};

void qkv_rope(const QkvRopeParams& p, cudaStream_t stream);

}  // namespace starattn::cuda
