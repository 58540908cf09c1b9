// The GEMMs of the forward pass through cuBLAS: bf16 operands, fp32 accumulation,
//   y[n, out] (+)= x[n, in] · W[out, in]^T      (W in the Hugging Face / PyTorch Linear layout)
// with a bf16 result (the next op's input) or an fp32 result; with accumulate, y is the fp32
// residual stream and the residual add happens inside the GEMM (beta = 1).
// W is bf16, or a GGUF file's quantised blocks (wq; types with GPU kernels: quant_gemv.h). A
// quantised W is read block by block by the GEMV for a few rows (decode); for more rows it is
// dequantised to bf16 a tile of rows at a time into a bounded scratch (kDequantScratchBytes) just
// before each tile's cuBLAS GEMM, so no expanded copy of a matrix outlives its product.
#pragma once

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/memory_plan.h"
#include "model/ggml_types.h"

namespace starattn::cuda {

struct LinearParams {
  const __nv_bfloat16* x = nullptr;  // [n, in], row stride x_stride (>= in)
  int64_t x_stride = 0;
  const __nv_bfloat16* w = nullptr;  // [out, in] contiguous (bf16 W)
  const uint8_t* wq = nullptr;       // or quantised W: out rows of wq_row_bytes, each in / block
  GgmlType wq_type = GgmlType::F32;  //   elements in blocks of wq_type
  int64_t wq_row_bytes = 0;
  __nv_bfloat16* y_bf16 = nullptr;  // [n, out], row stride y_stride; exactly one of y_bf16, y_f32
  float* y_f32 = nullptr;           // [n, out], row stride y_stride
  int64_t y_stride = 0;
  int n = 0;
  int in = 0;
  int out = 0;
  bool accumulate = false;  // y += x · W^T (fp32 y only)
  // The quantised-weight GEMV's 8-bit activations (kGemvActScratchBytes, quant_gemv.h; 16-byte
  // aligned). Gemm::act_scratch() has one.
  void* act_scratch = nullptr;
};

// A cuBLAS handle bound to one stream, with its own workspace (cuBLAS picks faster Hopper kernels
// when it has one). Not copyable; one per backend.
class Gemm {
 public:
  explicit Gemm(cudaStream_t stream);
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  // gemv() for a few rows (decode) when it takes the shape, cuBLAS otherwise.
  void linear(const LinearParams& p);
  // Always cuBLAS (benchmarks compare the two).
  void linear_cublas(const LinearParams& p);

  static constexpr size_t kWorkspaceBytes = size_t{32} << 20;
  // For LinearParams::act_scratch: taken with the handle, so that a recorded step never allocates.
  void* act_scratch() const { return act_scratch_; }
  // The scratch (kDequantScratchBytes, memory_plan.h) is taken on the first product of many rows
  // with a quantised W (never while a graph is recorded: those have one row). A smaller scratch
  // makes more, smaller tiles (tests use it to cross tile edges).
  void set_dequant_scratch_bytes(size_t bytes) { scratch_bytes_ = bytes; }

 private:
  // Tiles of rows of a quantised W: dequantised into the scratch, then linear_cublas.
  void linear_dequantised(const LinearParams& p);

  cudaStream_t stream_ = nullptr;
  cublasHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  void* act_scratch_ = nullptr;
  void* scratch_ = nullptr;
  size_t scratch_bytes_ = kDequantScratchBytes;
  size_t scratch_taken_ = 0;
};

}  // namespace starattn::cuda
