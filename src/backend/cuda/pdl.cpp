#include "backend/cuda/pdl.cuh"

#include "backend/cuda/device_info.h"

namespace starattn::cuda {

bool pdl_supported() {
  return device_info().major >= 9;
}

}  // namespace starattn::cuda
