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

ModelConfig llama31_8b_config() {
  ModelConfig c;
  c.arch = "llama";
  c.n_layers = 32;
  c.d_model = 4096;
  c.n_heads = 32;
  c.n_kv_heads = 8;
  c.head_dim = 128;
  c.d_ffn = 14336;
  c.vocab_size = 128256;
  // Random weights were never trained to a length: room for a 1M-token context plus queries.
  c.max_positions = 1 << 21;
  c.rms_eps = 1e-5f;
  c.rope_theta = 500000.0f;
  c.rope_scaling.llama3 = true;
  c.rope_scaling.factor = 8.0f;
  c.rope_scaling.low_freq_factor = 1.0f;
  c.rope_scaling.high_freq_factor = 4.0f;
  c.rope_scaling.original_max_positions = 8192;
  c.qkv_bias = false;
  c.tied_embeddings = false;
  return c;
}

}  // namespace starattn
