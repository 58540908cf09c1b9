#include "backend/cuda/cuda_factory.h"

#include <cuda_runtime.h>

#include "backend/cuda/cuda_backend.h"
#include "model/loader.h"
#include "starattn/error.h"

namespace starattn {

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

std::unique_ptr<Backend> make_cuda_backend(const Model& model, int device) {
  return std::make_unique<CudaBackend>(model.config, model.weights, device);
}

std::unique_ptr<Backend> make_cuda_random_backend(const ModelConfig& config, int device,
                                                  uint64_t seed, const std::string& matrices) {
  static const std::pair<const char*, GgmlType> kTypes[] = {{"bf16", GgmlType::BF16},
                                                            {"q8_0", GgmlType::Q8_0},
                                                            {"q4_0", GgmlType::Q4_0},
                                                            {"q4_1", GgmlType::Q4_1},
                                                            {"q4_k", GgmlType::Q4_K}};
  for (const auto& [name, type] : kTypes)
    if (matrices == name) return std::make_unique<CudaBackend>(config, device, seed, type);
  fail("random weights of type '", matrices, "' are not supported (bf16, q8_0, q4_0, q4_1, q4_k)");
}

int cuda_backend_device(const Backend& backend) {
  const auto* cuda = dynamic_cast<const CudaBackend*>(&backend);
  return cuda ? cuda->device() : -1;
}

}  // namespace starattn
