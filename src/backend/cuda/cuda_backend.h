// The CUDA backend: one GPU, one stream. Weights, activations and KV live in device memory in bf16
// (norm weights, biases, the residual stream and log-sum-exps in fp32); every GEMM accumulates in
// fp32 (cuBLAS). The forward pass per layer:
//   x (fp32) -> RMSNorm -> h (bf16) -> [Q|K|V] GEMM -> bias + RoPE + split -> q, k, v
//   -> hook.attend -> att -> x += att · Wo^T (inside the GEMM)
//   -> RMSNorm -> h -> [gate|up] GEMM -> SwiGLU -> x += act · Wdown^T   (FFN in kFfnRows chunks)
// The CPU backend (cpu/) is its oracle. Memory is planned before it is taken (memory_plan.h).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "backend/backend.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/memory_plan.h"
#include "model/weights.h"

namespace starattn {

class CudaBackend : public Backend {
 public:
  // Uploads host fp32 weights once, as bf16 (norms and biases stay fp32).
  CudaBackend(const ModelConfig& config, const Weights& weights, int device);
  // Random weights made on the device (std ~0.02, norms ~1): for speed runs, nothing on the host.
  CudaBackend(const ModelConfig& config, int device, uint64_t seed);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  const ModelConfig& config() const override { return c_; }
  std::string name() const override { return name_; }
  DType act_dtype() const override { return DType::BF16; }

  void plan_memory(int64_t kv_rows, int max_tokens) override;
  // 8192 rows keep cuBLAS near its peak; activations for them are about half a GiB (8B shape).
  int preferred_chunk() const override { return 8192; }

  void* alloc(size_t bytes) override;
  void release(void* p) noexcept override;
  void copy(void* dst, const void* src, size_t bytes) override;
  void to_host(void* dst, const void* src, size_t bytes) override;
  void from_host(void* dst, const void* src, size_t bytes) override;

  void forward(const int* tokens, const int* positions, int n, AttentionHook& hook, int n_out,
               float* hidden_out) override;
  void logits(const float* hidden, int n, float* out) override;

  void attention(const AttnParams& p) override;
  void merge(void* out_a, float* lse_a, const void* out_b, const float* lse_b, int rows, int heads,
             int head_dim) override;

  int device() const { return device_; }
  cudaStream_t stream() const { return stream_; }
  size_t weight_bytes() const { return wl_.total; }
  // Waits for everything queued on the backend's stream.
  void synchronize() override;

 private:
  void init(const ModelConfig& config, int device);  // device, stream, cuBLAS, weight arena
  void free_all() noexcept;
  void upload_weights(const Weights& w);
  void random_weights(uint64_t seed);
  void reserve_workspace(int rows);
  size_t free_bytes() const;
  void drop_cache() noexcept;
  template <typename T>
  T* wptr(size_t offset) const {
    return reinterpret_cast<T*>(static_cast<char*>(weights_) + offset);
  }
  template <typename T>
  T* sptr(size_t offset) const {
    return reinterpret_cast<T*>(static_cast<char*>(ws_) + offset);
  }

  ModelConfig c_;
  int device_ = 0;
  std::string name_;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<cuda::Gemm> gemm_;
  cuda::WeightLayout wl_;
  void* weights_ = nullptr;    // wl_.total bytes
  float* inv_freq_ = nullptr;  // [head_dim / 2] device
  cuda::WorkspaceLayout sl_;
  void* ws_ = nullptr;         // sl_.total bytes
  void* logits_ws_ = nullptr;  // logits_workspace_bytes()

  // Released blocks up to kCacheBlock bytes are kept for reuse instead of cudaFree'd: the engine's
  // hooks take and drop their scratch every decode step, and cudaMalloc/cudaFree (which waits for
  // the device) per step would cost more than the step's small kernels. All use is on stream_, so
  // a block reused while earlier work still reads it is safe (stream order).
  static constexpr size_t kCacheBlock = size_t{64} << 20, kCacheTotal = size_t{256} << 20;
  std::unordered_map<void*, size_t> live_;  // alloc()'d and not released: size
  std::multimap<size_t, void*> cached_;     // released, for reuse: size -> block
  size_t cached_bytes_ = 0;
};

}  // namespace starattn
