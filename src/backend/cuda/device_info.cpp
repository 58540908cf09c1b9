#include "backend/cuda/device_info.h"

#include <cuda_runtime.h>

#include <map>
#include <mutex>

#include "backend/cuda/cuda_check.h"

namespace starattn::cuda {

const DeviceInfo& device_info() {
  int dev = 0;
  SA_CUDA(cudaGetDevice(&dev));
  static std::mutex mu;
  static std::map<int, DeviceInfo> cache;  // map nodes stay put: the references remain valid
  const std::lock_guard<std::mutex> lock(mu);
  const auto it = cache.find(dev);
  if (it != cache.end()) return it->second;
  DeviceInfo d;
  SA_CUDA(cudaDeviceGetAttribute(&d.major, cudaDevAttrComputeCapabilityMajor, dev));
  SA_CUDA(cudaDeviceGetAttribute(&d.minor, cudaDevAttrComputeCapabilityMinor, dev));
  SA_CUDA(cudaDeviceGetAttribute(&d.sms, cudaDevAttrMultiProcessorCount, dev));
  return cache[dev] = d;
}

}  // namespace starattn::cuda
