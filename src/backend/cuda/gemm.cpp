#include "backend/cuda/gemm.h"

#include <algorithm>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/gemv.h"
#include "backend/cuda/quant_gemv.h"
#include "starattn/error.h"

namespace starattn::cuda {
namespace {

void check(const LinearParams& p) {
  SA_CHECK((p.y_bf16 != nullptr) != (p.y_f32 != nullptr),
           "linear: exactly one of y_bf16, y_f32 must be set");
  SA_CHECK(!p.accumulate || p.y_f32, "linear: accumulate needs an fp32 output");
  SA_CHECK(p.x_stride >= p.in && p.y_stride >= p.out, "linear: row strides ", p.x_stride, ", ",
           p.y_stride, " are shorter than the rows (", p.in, ", ", p.out, ")");
}

}  // namespace

Gemm::Gemm(cudaStream_t stream) : stream_(stream) {
  SA_CUBLAS(cublasCreate(&handle_));
  try {
    SA_CUBLAS(cublasSetStream(handle_, stream));
    SA_CUDA(cudaMalloc(&workspace_, kWorkspaceBytes));
    SA_CUBLAS(cublasSetWorkspace(handle_, workspace_, kWorkspaceBytes));
    SA_CUDA(cudaMalloc(&act_scratch_, kGemvActScratchBytes));
    // bf16 inputs run on tensor cores in any math mode; the default lets cuBLAS choose split-K.
    SA_CUBLAS(cublasSetMathMode(handle_, CUBLAS_DEFAULT_MATH));
  } catch (...) {
    (void)cublasDestroy(handle_);
    (void)cudaFree(workspace_);
    (void)cudaFree(act_scratch_);
    throw;
  }
}

Gemm::~Gemm() {
  (void)cublasDestroy(handle_);
  (void)cudaFree(workspace_);
  (void)cudaFree(act_scratch_);
  (void)cudaFree(scratch_);
}

void Gemm::linear(const LinearParams& params) {
  if (params.n == 0 || params.out == 0) return;
  check(params);
  LinearParams p = params;
  if (!p.act_scratch) p.act_scratch = act_scratch_;
  if (gemv_supported(p)) {
    gemv(p, stream_);
    return;
  }
  if (p.wq) {
    linear_dequantised(p);
    return;
  }
  linear_cublas(p);
}

void Gemm::linear_dequantised(const LinearParams& p) {
  SA_CHECK(quant_supported(p.wq_type), "linear: no GPU kernels for weights of type ",
           ggml_type_name(p.wq_type));
  const int64_t row_bytes = int64_t{p.in} * 2;
  // Tiles of a multiple of 64 rows keep each tile's output columns aligned for cuBLAS.
  int64_t tile = std::max<int64_t>(1, static_cast<int64_t>(scratch_bytes_) / row_bytes);
  tile = tile >= p.out ? p.out : std::max<int64_t>(std::min<int64_t>(tile, 64), tile / 64 * 64);
  if (!scratch_ || scratch_taken_ < static_cast<size_t>(tile * row_bytes)) {
    // The one stream orders this after any product still reading the old block.
    SA_CUDA(cudaStreamSynchronize(stream_));
    (void)cudaFree(scratch_);
    scratch_ = nullptr;
    scratch_taken_ = 0;
    SA_CUDA(cudaMalloc(&scratch_, static_cast<size_t>(tile * row_bytes)));
    scratch_taken_ = static_cast<size_t>(tile * row_bytes);
  }
  auto* w = static_cast<__nv_bfloat16*>(scratch_);
  for (int64_t r0 = 0; r0 < p.out; r0 += tile) {
    const int m = static_cast<int>(std::min<int64_t>(tile, p.out - r0));
    // Stream order: this tile's dequantisation waits for the previous tile's GEMM.
    dequantize_rows(p.wq_type, p.wq, p.wq_row_bytes, r0, m, p.in, w, stream_);
    LinearParams t = p;
    t.wq = nullptr;
    t.w = w;
    t.out = m;
    if (t.y_bf16) t.y_bf16 += r0;
    if (t.y_f32) t.y_f32 += r0;
    linear_cublas(t);
  }
}

void Gemm::linear_cublas(const LinearParams& p) {
  if (p.n == 0 || p.out == 0) return;
  check(p);
  SA_CHECK(p.w && !p.wq, "linear_cublas: needs bf16 weights");
  const float alpha = 1.0f, beta = p.accumulate ? 1.0f : 0.0f;
  // Column-major view: Y^T[out, n] = W[out, in] · X^T[in, n], with W stored as W^T[in, out]
  // (leading dimension in) and X^T stored as [in, n] (leading dimension x_stride).
  void* y = p.y_bf16 ? static_cast<void*>(p.y_bf16) : static_cast<void*>(p.y_f32);
  const cudaDataType_t y_type = p.y_bf16 ? CUDA_R_16BF : CUDA_R_32F;
  SA_CUBLAS(cublasGemmEx(handle_, CUBLAS_OP_T, CUBLAS_OP_N, p.out, p.n, p.in, &alpha, p.w,
                         CUDA_R_16BF, p.in, p.x, CUDA_R_16BF, static_cast<int>(p.x_stride), &beta,
                         y, y_type, static_cast<int>(p.y_stride), CUBLAS_COMPUTE_32F,
                         CUBLAS_GEMM_DEFAULT));
}

}  // namespace starattn::cuda
