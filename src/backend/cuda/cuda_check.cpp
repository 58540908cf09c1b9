#include "backend/cuda/cuda_check.h"

#include "starattn/error.h"

namespace starattn::cuda {

namespace {
int current_device() {
  int dev = -1;
  (void)cudaGetDevice(&dev);
  return dev;
}
}  // namespace

void cuda_fail(cudaError_t err, const char* call, const char* file, int line) {
  const int dev = current_device();
  // Clear a sticky launch error so the next check reports its own failure, not this one.
  (void)cudaGetLastError();
  fail(call, " failed at ", file, ":", line, " on device ", dev, ": ", cudaGetErrorName(err), " (",
       cudaGetErrorString(err), ")");
}

void cublas_fail(cublasStatus_t st, const char* call, const char* file, int line) {
  fail(call, " failed at ", file, ":", line, " on device ", current_device(), ": ",
       cublasGetStatusName(st), " (", cublasGetStatusString(st), ")");
}

}  // namespace starattn::cuda
