// Kernels for weights kept in a GGUF file's quantised blocks on the GPU (Q8_0, Q4_0, Q4_1, Q4_K;
// other types are uploaded as bf16). Each takes the blocks as they are in the file, rows of
// in / block_elems whole blocks (model/weights.h).
// - gemv_quant: y[n, out] (+)= x[n, in] · W^T for 1..kGemvMaxRows rows of bf16 x (decode). A warp
//   owns an output feature; per step it stages 1024 elements' blocks of its row in shared memory
//   with coalesced loads (each block is read once), and each lane dequantises one 32-element unit
//   in registers and multiplies it with the x rows in fp32. Plain launches, so a recorded graph
//   replays them like any other kernel.
// - dequantize_rows: rows of W to bf16, for the tiles of Gemm::linear's many-row products.
// - embedding_quant: rows gathered to fp32 (the token embedding of a quantised table).
// Dequantisation uses the reference's operations (products and sums rounded one by one, no fused
// multiply-add), so its values equal the CPU's dequantize() bit for bit.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/gemm.h"
#include "model/ggml_types.h"

namespace starattn::cuda {

// Whether the GPU has kernels for weights of this type.
bool quant_supported(GgmlType t);

// Whether gemv_quant takes these parameters: a supported wq_type, 1..kGemvMaxRows rows, in a whole
// number of blocks, x 16-byte aligned with a stride that is a multiple of 8 elements.
bool gemv_quant_supported(const LinearParams& p);
void gemv_quant(const LinearParams& p, cudaStream_t stream);
// The FFN's gate/up projection and SwiGLU (as gemv_swiglu, gemv.h): W = [W_gate; W_up] quantised,
// y_bf16[i, j] = silu(g) * u with g, u rows j and out / 2 + j of x · W^T rounded to bf16.
void gemv_quant_swiglu(const LinearParams& p, cudaStream_t stream);

// dst[rows, cols] (bf16) = rows r0..r0+rows-1 of the quantised matrix at src (rows of row_bytes).
void dequantize_rows(GgmlType type, const uint8_t* src, int64_t row_bytes, int64_t r0, int rows,
                     int cols, __nv_bfloat16* dst, cudaStream_t stream);

// out[i, :] = row tokens[i] of the quantised table [vocab rows of row_bytes, d] as fp32; an id
// outside [0, vocab) gives a row of NaN.
struct EmbeddingQuantParams {
  const int* tokens = nullptr;  // [n] device
  const uint8_t* table = nullptr;
  GgmlType type = GgmlType::Q8_0;
  int64_t row_bytes = 0;
  float* out = nullptr;  // [n, d]
  int n = 0, d = 0, vocab = 0;
};
void embedding_quant(const EmbeddingQuantParams& p, cudaStream_t stream);

// Random blocks of a supported type for speed runs: codes uniformly random, scales fixed so the
// weights have a standard deviation of about 0.02 (nothing is NaN or infinite).
void random_blocks(GgmlType type, uint8_t* dst, int64_t n_blocks, uint64_t seed,
                   cudaStream_t stream);

}  // namespace starattn::cuda
