// Kernels for weights kept in a GGUF file's quantised blocks on the GPU (Q8_0, Q4_0, Q4_1, Q4_K;
// other types are uploaded as bf16). Each takes the blocks as they are in the file, rows of
// in / block_elems whole blocks (model/weights.h).
// - gemv_quant: y[n, out] (+)= x[n, in] · W^T for 1..kGemvMaxRows rows of bf16 x (decode), as
//   the CPU's matrix-vector kernels and llama.cpp's do it: x is first quantised to 8 bits per 32
//   elements (the CPU's ActBlock, with its operations), then every 32-element unit of weights
//   takes an integer dot product (dp4a) with its activation block, scaled in fp32 as the CPU's
//   gemv_q8 kernels scale it. Unpacking the weights to fp32 for FMAs cost more instructions per
//   byte than the memory's speed leaves. A warp owns an output feature and streams its row's
//   blocks through shared memory with cp.async, several steps deep (each block is read once).
//   The error against the fp32 product is the activations' rounding: at most half a step, d / 2
//   with d = max|x| / 127 over the element's block. Two launches (quantise, product) chained by
//   programmatic dependent launch; a recorded graph replays them like any other kernel.
// - dequantize_rows: rows of W to bf16, for the tiles of Gemm::linear's many-row products.
// - embedding_quant: rows gathered to fp32 (the token embedding of a quantised table).
// Dequantisation uses the reference's operations (products and sums rounded one by one, no fused
// multiply-add), so its values equal the CPU's dequantize() bit for bit.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/gemm.h"
#include "backend/cuda/gemv.h"
#include "model/ggml_types.h"

namespace starattn::cuda {

// Whether the GPU has kernels for weights of this type.
bool quant_supported(GgmlType t);

// The longest row gemv_quant takes, and the scratch its 8-bit activations need
// (LinearParams::act_scratch): codes [kGemvMaxRows, kGemvQuantMaxIn], then a (d, d * sum) pair of
// floats per 32 of them.
inline constexpr int kGemvQuantMaxIn = 65536;
inline constexpr size_t kGemvActScratchBytes =
    size_t{kGemvMaxRows} * kGemvQuantMaxIn + size_t{kGemvMaxRows} * (kGemvQuantMaxIn / 32) * 8;

// Whether gemv_quant takes these parameters: a supported wq_type, 1..kGemvMaxRows rows, in a whole
// number of blocks and at most kGemvQuantMaxIn, x 16-byte aligned with a stride that is a multiple
// of 8 elements, and an act_scratch.
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
