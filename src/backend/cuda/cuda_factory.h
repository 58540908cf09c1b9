// Entry points to the CUDA backend for code built without CUDA headers (the app, g++ only). They
// exist when the build defines STARATTN_HAVE_CUDA (CMake does for everything linking the CUDA
// library); guard calls with #ifdef STARATTN_HAVE_CUDA.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "backend/backend.h"
#include "model/config.h"

namespace starattn {

struct Model;

// Number of CUDA devices this process can use; 0 when there is no driver or no GPU (never throws).
int cuda_device_count();

// The model's weights uploaded to `device` (quantised blocks as they are where the GPU has
// kernels for them, else bf16). The Model may be dropped afterwards.
std::unique_ptr<Backend> make_cuda_backend(const Model& model, int device);

// A model of `config`'s shape with random weights made on the device (nothing on the host): for
// speed runs, which do not depend on the weights' values. Same seed, same weights. matrices:
// "bf16", or "q4_k" / "q8_0" (random blocks of that type; also "q4_0", "q4_1").
std::unique_ptr<Backend> make_cuda_random_backend(const ModelConfig& config, int device,
                                                  uint64_t seed,
                                                  const std::string& matrices = "bf16");

// The GPU a backend runs on; -1 when it is not a CUDA backend.
int cuda_backend_device(const Backend& backend);

}  // namespace starattn
