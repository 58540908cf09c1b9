#include <map>
#include <mutex>

#include "backend/cuda/pdl.cuh"

namespace starattn::cuda {

bool pdl_supported() {
  int dev = 0;
  SA_CUDA(cudaGetDevice(&dev));
  static std::mutex mu;
  static std::map<int, bool> cache;
  const std::lock_guard<std::mutex> lock(mu);
  const auto it = cache.find(dev);
  if (it != cache.end()) return it->second;
  int major = 0;
  SA_CUDA(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
  return cache[dev] = major >= 9;
}

}  // namespace starattn::cuda
