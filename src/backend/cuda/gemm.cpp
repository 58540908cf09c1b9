#include "backend/cuda/gemm.h"

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/gemv.h"
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
    // bf16 inputs run on tensor cores in any math mode; the default lets cuBLAS choose split-K.
    SA_CUBLAS(cublasSetMathMode(handle_, CUBLAS_DEFAULT_MATH));
  } catch (...) {
    (void)cublasDestroy(handle_);
    (void)cudaFree(workspace_);
    throw;
  }
}

Gemm::~Gemm() {
  (void)cublasDestroy(handle_);
  (void)cudaFree(workspace_);
}

void Gemm::linear(const LinearParams& p) {
  if (p.n == 0 || p.out == 0) return;
  check(p);
  if (gemv_supported(p)) {
    gemv(p, stream_);
    return;
  }
  linear_cublas(p);
}

void Gemm::linear_cublas(const LinearParams& p) {
  if (p.n == 0 || p.out == 0) return;
  check(p);
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
