// The CUDA backend: one GPU, one stream. Weights, activations and KV live in device memory in bf16
// (norm weights, biases, the residual stream and log-sum-exps in fp32); weight matrices loaded
// with --weights-type native stay in their GGUF blocks where the GPU has kernels for the type
// (quant_gemv.h: read block by block in decode, dequantised tile by tile before the GEMMs of a
// prefill); a KV cache may be FP8 E4M3, quantised by write_kv_rows and read directly by the
// attention kernels; every GEMM accumulates in fp32 (cuBLAS). One-token phase-2 steps are recorded
// once as a CUDA graph and replayed (step_graph.h). The forward pass per layer:
//   x (fp32) -> RMSNorm -> h (bf16) -> [Q|K|V] GEMM -> bias + RoPE + split -> q, k, v
//   -> hook.attend -> att -> x += att · Wo^T (inside the GEMM)
//   -> RMSNorm -> h -> [gate|up] GEMM -> SwiGLU -> x += act · Wdown^T   (FFN in kFfnRows chunks)
// The CPU backend (cpu/) is its oracle. Memory is planned before it is taken (memory_plan.h) and
// taken through a caching allocator (caching_allocator.h); the weights are uploaded or made at
// random by weight_upload.h.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <string>

#include "backend/backend.h"
#include "backend/cuda/caching_allocator.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/memory_plan.h"
#include "backend/cuda/step_graph.h"
#include "model/weights.h"

namespace starattn {

class CudaBackend : public Backend {
 public:
  // Uploads the host weights once: quantised matrices of a type with GPU kernels as they are
  // (fused q|k|v and gate|up when their parts share the type), the others as bf16 (norms and
  // biases stay fp32).
  CudaBackend(const ModelConfig& config, const Weights& weights, int device);
  // Random weights made on the device (std ~0.02, norms ~1): for speed runs, nothing on the host.
  // Matrices are bf16, or random blocks of `matrices` (a type quant_supported() takes).
  CudaBackend(const ModelConfig& config, int device, uint64_t seed,
              GgmlType matrices = GgmlType::BF16);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  const ModelConfig& config() const override { return c_; }
  std::string name() const override { return name_; }
  DType act_dtype() const override { return DType::BF16; }

  void plan_memory(int64_t kv_rows, int max_tokens, KvType kv_type, size_t scratch_bytes) override;
  int64_t kv_rows_that_fit(KvType kv_type, int max_tokens, size_t scratch_bytes) const override;
  // 8192 rows keep cuBLAS near its peak; activations for them are about half a GiB (8B shape).
  int preferred_chunk() const override { return 8192; }

  // Free device memory plus the allocator's cached blocks, less cuda::kReserveBytes.
  size_t memory_available() const override;
  // cudaMalloc hands out large blocks in 2 MiB pages.
  size_t allocation_size(size_t bytes) const override {
    const size_t page = bytes >= (size_t{1} << 20) ? size_t{2} << 20 : 512;
    return (bytes + page - 1) / page * page;
  }
  void* alloc(size_t bytes) override { return memory_.alloc(bytes); }
  void release(void* p) noexcept override { memory_.release(p); }
  void copy(void* dst, const void* src, size_t bytes) override;
  void to_host(void* dst, const void* src, size_t bytes) override;
  void from_host(void* dst, const void* src, size_t bytes) override;
  void write_kv_rows(void* k_dst, void* v_dst, const KvRowFormat& f, int64_t row, const void* k,
                     const void* v, int n) override;
  void write_kv_rows_at(void* k_dst, void* v_dst, const KvRowFormat& f, const int* row_at,
                        const void* k, const void* v, int n) override;

  void forward(const int* tokens, const int* positions, int n, AttentionHook& hook, int n_out,
               float* hidden_out) override;
  void logits(const float* hidden, int n, float* out) override;
  int forward_greedy(const int* tokens, const int* positions, int n, AttentionHook& hook) override;

  void attention(const AttnParams& p) override;
  void merge_parts(void* out, float* lse, const void* parts, size_t part_bytes, int n_parts,
                   int rows, int heads, int head_dim) override;
  void merge(void* out_a, float* lse_a, const void* out_b, const float* lse_b, int rows, int heads,
             int head_dim) override;
  // All items in one launch (cuda::attention_merge_items); the scratch buffers are not needed.
  void attention_merge_items(const AttnParams& batch, const AttnItem* items, int n_items,
                             void* scratch_out, float* scratch_lse) override;

  int device() const { return device_; }
  cudaStream_t stream() const { return stream_; }
  size_t weight_bytes() const override { return wl_.total; }
  std::string weight_storage() const override;
  // One-token forwards run by replaying a recorded graph so far (for tests and benchmarks).
  int64_t replayed_steps() const { return graph_.replayed(); }
  // Waits for everything queued on the backend's stream.
  void synchronize() override;

 private:
  // Device, stream, cuBLAS, weight arena in the given storage.
  void init(const ModelConfig& config, int device, const cuda::WeightTypes& types);
  void free_all() noexcept;
  void reserve_workspace(int rows);
  // What a forward leaves behind after its layers: the final norm of its last hidden_rows rows
  // (in place in x, for the host), or with greedy the last row's logits and their argmax (the id
  // in the logits workspace).
  struct Tail {
    int hidden_rows = 0;
    bool greedy = false;
  };
  enum class LogitsPart { Hidden, Logits, Id };
  size_t logits_ws_offset(LogitsPart part) const;
  template <typename T>
  T* logits_ws_at(LogitsPart part) const {
    return reinterpret_cast<T*>(static_cast<char*>(logits_ws_) + logits_ws_offset(part));
  }
  // y[rows, out_dim] = in[rows, in_dim] · W^T for the weight at w_offset, stored as w_type; the
  // caller sets the output (y_bf16 or y_f32, accumulate).
  cuda::LinearParams linear_params(const __nv_bfloat16* in, int64_t in_dim, size_t w_offset,
                                   GgmlType w_type, int64_t out_dim, int rows) const;
  // logits y[rows, vocab] (fp32, device) from bf16 hidden rows h (device).
  void lm_head(const __nv_bfloat16* h, float* y, int rows);
  // Checks the tokens and puts them and their positions in the workspace.
  void stage_inputs(const int* tokens, const int* positions, int n);
  // The forward after its inputs are on the device: run_layers op by op, or for one token with
  // the hook's replay key through graph_.
  void run_step(int n, AttentionHook& hook, Tail tail);
  // Embedding, layers and the tail. Only queues work, so a graph can capture it.
  void run_layers(int n, AttentionHook& hook, Tail tail);
  size_t free_bytes() const;
  // Free memory plus what this backend holds already (weights, workspace, cached blocks): what the
  // model may use in all.
  size_t usable_bytes() const;
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
  cuda::CachingAllocator memory_;  // every block below comes from it
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<cuda::Gemm> gemm_;
  cuda::WeightLayout wl_;
  void* weights_ = nullptr;    // wl_.total bytes
  float* inv_freq_ = nullptr;  // [head_dim / 2] device
  cuda::WorkspaceLayout sl_;
  void* ws_ = nullptr;         // sl_.total bytes
  void* logits_ws_ = nullptr;  // logits_workspace_bytes()
  cuda::StepGraph graph_;      // the recorded one-token forward
};

}  // namespace starattn
