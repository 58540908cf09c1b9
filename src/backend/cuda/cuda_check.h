// Checked CUDA and cuBLAS calls for the CUDA backend (the attention kernels have their own twin in
// attention_common.cuh). A failure throws starattn::Error naming the call, file:line and device.
// Plain C++ may include this header.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

namespace starattn::cuda {

[[noreturn]] void cuda_fail(cudaError_t err, const char* call, const char* file, int line);
[[noreturn]] void cublas_fail(cublasStatus_t st, const char* call, const char* file, int line);

}  // namespace starattn::cuda

#define SA_CUDA(call)                                                       \
  do {                                                                      \
    const cudaError_t sa_cuda_err_ = (call);                                \
    if (sa_cuda_err_ != cudaSuccess)                                        \
      ::starattn::cuda::cuda_fail(sa_cuda_err_, #call, __FILE__, __LINE__); \
  } while (0)

#define SA_CUBLAS(call)                                                        \
  do {                                                                         \
    const cublasStatus_t sa_cublas_st_ = (call);                               \
    if (sa_cublas_st_ != CUBLAS_STATUS_SUCCESS)                                \
      ::starattn::cuda::cublas_fail(sa_cublas_st_, #call, __FILE__, __LINE__); \
  } while (0)

// After every kernel launch: a bad configuration surfaces here, named after the kernel.
#define SA_LAUNCHED(kernel_name)                                                               \
  do {                                                                                         \
    const cudaError_t sa_cuda_err_ = cudaGetLastError();                                       \
    if (sa_cuda_err_ != cudaSuccess)                                                           \
      ::starattn::cuda::cuda_fail(sa_cuda_err_, "launch of " kernel_name, __FILE__, __LINE__); \
  } while (0)
