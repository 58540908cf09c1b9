// The engine's view of a compute device: its memory, the model's forward pass, and the attention
// ops with log-sum-exp. The CPU backend (cpu/) keeps everything in host memory in fp32 and is the
// oracle; the CUDA backend (cuda/) keeps weights, activations and KV in device memory in bf16 with
// fp32 log-sum-exps; a KV cache may instead hold FP8 E4M3 rows (kv_format.h), which the attention
// ops read directly. The engine never dereferences a backend pointer: it moves them between
// backend calls, and crosses to the host only through to_host/from_host (for Comm).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "attention/attention.h"
#include "backend/argmax.h"
#include "backend/attention_hook.h"
#include "model/config.h"
#include "starattn/error.h"

namespace starattn {

enum class DType { F32, BF16 };
inline size_t dtype_bytes(DType t) {
  return t == DType::F32 ? 4 : 2;
}

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const ModelConfig& config() const = 0;
  virtual std::string name() const = 0;  // for messages and timing lines: "cpu", "cuda:0 (...)"
  // Element type of q, k, v, attention outputs and the KV cache. Log-sum-exps are always fp32.
  virtual DType act_dtype() const = 0;

  // The layout of a KV row of `type` for this backend's model (kv_format.h). Bf16 and F32 become
  // Act where they are the activation type; F32 or Int8 on a bf16 backend is an error.
  KvRowFormat kv_row_format(KvType type) const {
    const int act = static_cast<int>(dtype_bytes(act_dtype()));
    if ((type == KvType::Bf16 && act == 2) || (type == KvType::F32 && act == 4)) type = KvType::Act;
    SA_CHECK(type != KvType::F32, "the ", name(),
             " backend keeps its KV cache in bf16 or fp8, not fp32 (--kv-type f32 is the CPU's)");
    SA_CHECK(type != KvType::Int8 || act == 4, "the ", name(),
             " backend keeps its KV cache in bf16 or fp8, not int8 (--kv-type int8 is the CPU's)");
    return {type, config().n_kv_heads, config().head_dim, act};
  }
  // Bytes of the model's weights this backend holds, and how they are stored ("Q4_1 x210, Q8_0
  // x1"), for reports.
  virtual size_t weight_bytes() const = 0;
  virtual std::string weight_storage() const = 0;

  // Memory plan, before any KV cache exists: this rank will hold kv_rows rows of KV (all layers)
  // of kv_type, run at most max_tokens tokens per forward call, and its caller's attention hooks
  // will hold up to scratch_bytes of this backend's memory besides (the engine's:
  // engine/engine_memory.h). A backend with bounded memory checks that weights + KV + its
  // workspace + scratch fit and otherwise throws starattn::Error saying how much is needed, how
  // much is free, and what to change (more ranks, a smaller block, a shorter context, an fp8 KV
  // cache).
  virtual void plan_memory(int64_t kv_rows, int max_tokens, KvType kv_type, size_t scratch_bytes) {
    (void)kv_rows, (void)max_tokens, (void)kv_type, (void)scratch_bytes;
  }
  // The most KV rows (a token's K and V in every layer) of kv_type this backend could hold next
  // to forward calls of max_tokens tokens and scratch_bytes of hooks' scratch: what plan_memory
  // would accept now. The default counts memory_available() against the rows' bytes (a CPU: host
  // memory, where the scratch is small beside it).
  virtual int64_t kv_rows_that_fit(KvType kv_type, int max_tokens, size_t scratch_bytes) const;

  // Tokens per forward call when the run does not say (RunConfig::chunk = 0): big enough to keep
  // the device's GEMMs efficient, small enough to bound activation memory.
  virtual int preferred_chunk() const { return 512; }

  // Waits until all work queued on this backend is done (for honest timings; a no-op on the CPU).
  virtual void synchronize() {}

  // Bytes this backend could still allocate for KV beyond what it holds (free memory plus its
  // allocator's cache, less what it keeps in reserve): a server's budget for cached contexts.
  virtual size_t memory_available() const = 0;
  // What an allocation of `bytes` really occupies, after the allocator's rounding.
  virtual size_t allocation_size(size_t bytes) const { return bytes; }

  // Memory of this backend. alloc throws starattn::Error when it cannot give `bytes`.
  virtual void* alloc(size_t bytes) = 0;
  virtual void release(void* p) noexcept = 0;
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;  // within the backend
  virtual void to_host(void* dst, const void* src, size_t bytes) = 0;
  virtual void from_host(void* dst, const void* src, size_t bytes) = 0;
  // Writes n rows of k and v ([n, kv_dim] act_dtype, backend memory, contiguous) into a cache's
  // K and V arrays k_dst, v_dst (rows of format f) at row `row`: copied as they are for
  // KvType::Act, quantised for KvType::Fp8 (kv_format.h; the same bytes on every backend for the
  // same values). This is where KV rows are quantised, once, as they are written.
  virtual void write_kv_rows(void* k_dst, void* v_dst, const KvRowFormat& f, int64_t row,
                             const void* k, const void* v, int n) = 0;
  // The same at row *row_at, an int in this backend's memory read when the write runs (a
  // replayed decode step appends its KV so).
  virtual void write_kv_rows_at(void* k_dst, void* v_dst, const KvRowFormat& f, const int* row_at,
                                const void* k, const void* v, int n) = 0;

  // Runs n tokens at the given positions (host arrays) through every layer; attention is the
  // hook's, called with this backend's pointers. When the hook has a replay key (attention_hook.h)
  // a backend may record the one-token forward once and replay it for later calls with that key.
  // When hidden_out (host) is not null it receives the final normalised hidden states of the last
  // n_out rows: [n_out, d_model] fp32.
  virtual void forward(const int* tokens, const int* positions, int n, AttentionHook& hook,
                       int n_out, float* hidden_out) = 0;
  // logits[n, vocab] (host, fp32) from hidden[n, d_model] (host, fp32).
  virtual void logits(const float* hidden, int n, float* out) = 0;
  // As forward, but returns the greedy next token after the last row: argmax of its logits (the
  // lowest id of the largest; NaN never wins). A device backend chooses it on the device, so only
  // the id crosses to the host. The default goes through logits() on the host.
  virtual int forward_greedy(const int* tokens, const int* positions, int n, AttentionHook& hook) {
    std::vector<float> hidden(config().d_model), out(config().vocab_size);
    forward(tokens, positions, n, hook, 1, hidden.data());
    logits(hidden.data(), 1, out.data());
    return argmax(out.data(), config().vocab_size);
  }

  // Attention over one KV set (attention.h semantics, either KvType); pointers are this
  // backend's.
  virtual void attention(const AttnParams& p) = 0;
  // (out_a, lse_a) <- exact merge with (out_b, lse_b); out: [rows, heads, head_dim] act_dtype,
  // lse: [rows, heads] fp32 (merge.h semantics).
  virtual void merge(void* out_a, float* lse_a, const void* out_b, const float* lse_b, int rows,
                     int heads, int head_dim) = 0;
  // out (and lse, when not null) <- the N-way merge of n_parts partial results laid out as an
  // allgather leaves them: part i at parts + i * part_bytes = [out (rows, heads, head_dim)
  // act_dtype | lse (rows, heads) fp32] (merge.h merge_attention_parts semantics: fp32 weights,
  // parts in order, the same bits on every rank).
  virtual void merge_parts(void* out, float* lse, const void* parts, size_t part_bytes, int n_parts,
                           int rows, int heads, int head_dim) = 0;
  // For each item: attention of its rows of batch.q over its own keys, merged into the same rows
  // of batch.out / batch.lse (which must hold a partial result; lse is required). batch gives
  // q, out (contiguous [rows, heads, head_dim]), lse, the heads, strides and scale; its k, v,
  // n_q, n_kv and mask are unused. The default runs attention() and merge() per item, using
  // scratch_out / scratch_lse (backend memory for the largest item's [n_q, heads, head_dim]
  // and [n_q, heads]); a device backend may do all of them in one launch.
  virtual void attention_merge_items(const AttnParams& batch, const AttnItem* items, int n_items,
                                     void* scratch_out, float* scratch_lse);
};

// A block of a backend's memory, released on destruction; grows on demand.
class BackendBuffer {
 public:
  explicit BackendBuffer(Backend& b, size_t bytes = 0) : b_(&b) { reserve(bytes); }
  ~BackendBuffer() { b_->release(p_); }
  BackendBuffer(const BackendBuffer&) = delete;
  BackendBuffer& operator=(const BackendBuffer&) = delete;

  // Makes the buffer at least `bytes` long; contents are not kept when it grows.
  void reserve(size_t bytes) {
    if (bytes <= bytes_) return;
    b_->release(p_);
    p_ = nullptr;
    bytes_ = 0;
    p_ = b_->alloc(bytes);
    bytes_ = bytes;
  }
  void* get() const { return p_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(p_);
  }
  size_t bytes() const { return bytes_; }

 private:
  Backend* b_;
  void* p_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace starattn
