// What launch decisions read about a device (compute capability, SM count), looked up once per
// device: kernels choose their grids and paths from it on every call.
#pragma once

namespace starattn::cuda {

struct DeviceInfo {
  int major = 0, minor = 0;  // compute capability
  int sms = 0;               // streaming multiprocessors
};

// The current device's (cudaGetDevice), cached; thread-safe.
const DeviceInfo& device_info();

}  // namespace starattn::cuda
