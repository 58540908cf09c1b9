// The CPU backend: host memory, fp32 activations, OpenBLAS + OpenMP. The reference for every other
// backend. Its KV cache is fp32 (KvType::Act, the library's default and the exact reference; "f32"
// on the CLI), bf16 (KvType::Bf16, the CLI's default: the GPU's rows, half the memory) or fp8 (the
// same E4M3 bytes as the GPU's); bf16 and fp8 rows are converted to fp32 inside attention.
#pragma once

#include "backend/backend.h"
#include "attention/merge.h"
#include "backend/cpu/attention_cpu.h"
#include "backend/cpu/forward.h"

namespace starattn {

class CpuBackend : public Backend {
 public:
  // The weights are used where they are (not copied) and must outlive the backend.
  CpuBackend(const ModelConfig& config, const Weights& weights)
      : weights_(weights), fwd_(config, weights) {}

  const ModelConfig& config() const override { return fwd_.config(); }
  std::string name() const override { return "cpu"; }
  DType act_dtype() const override { return DType::F32; }
  size_t weight_bytes() const override { return weights_.bytes(); }
  std::string weight_storage() const override { return weights_.storage_summary(); }

  // MemAvailable of /proc/meminfo (what the kernel can give without swapping), 0 if unreadable.
  size_t memory_available() const override;
  size_t allocation_size(size_t bytes) const override { return (bytes + 63) / 64 * 64; }
  void* alloc(size_t bytes) override;
  void release(void* p) noexcept override;
  void copy(void* dst, const void* src, size_t bytes) override;
  void to_host(void* dst, const void* src, size_t bytes) override { copy(dst, src, bytes); }
  void from_host(void* dst, const void* src, size_t bytes) override { copy(dst, src, bytes); }
  void write_kv_rows(void* k_dst, void* v_dst, const KvRowFormat& f, int64_t row, const void* k,
                     const void* v, int n) override;
  void write_kv_rows_at(void* k_dst, void* v_dst, const KvRowFormat& f, const int* row_at,
                        const void* k, const void* v, int n) override {
    write_kv_rows(k_dst, v_dst, f, *row_at, k, v, n);  // "backend memory" is host memory here
  }

  void forward(const int* tokens, const int* positions, int n, AttentionHook& hook, int n_out,
               float* hidden_out) override {
    fwd_.run(tokens, positions, n, hook, n_out, hidden_out);
  }
  void logits(const float* hidden, int n, float* out) override { fwd_.logits(hidden, n, out); }
  void attention(const AttnParams& p) override { attention_cpu(p); }
  void merge(void* out_a, float* lse_a, const void* out_b, const float* lse_b, int rows, int heads,
             int head_dim) override;
  void merge_parts(void* out, float* lse, const void* parts, size_t part_bytes, int n_parts,
                   int rows, int heads, int head_dim) override {
    merge_attention_parts(static_cast<float*>(out), lse, parts, part_bytes, n_parts, rows, heads,
                          head_dim);
  }

 private:
  const Weights& weights_;
  CpuForward fwd_;
};

}  // namespace starattn
