// KV cache of one rank, in its backend's memory. Layout, per layer: K and V each an array of
// [capacity] rows, one row per token holding that token's keys (values) for every kv head; the
// row's format is the cache's KvType (attention/kv_format.h):
//   Act: [n_kv_heads, head_dim] in the backend's act_dtype (bf16 on CUDA, fp32 on the CPU);
//   Fp8: [n_kv_heads, head_dim] FP8 E4M3 bytes | [n_kv_heads] fp32 scales | zeros to 16 bytes.
//   Int8: the same with int8 codes (kv_format.h).
// The scales sit in the row beside the bytes they scale, so a row is one contiguous piece in
// either format: rows are quantised once, when write() puts them in, and every later move (the
// ring's shards, the broadcast anchor, a grown cache) copies rows as they are, compressed.
// Scale granularity, per (token, kv head): a row's scales depend on that token's values alone, so
// no later row changes them, and a token gets the same bytes however the context is split over
// ranks, blocks and chunks (the star invariants hold as with bf16). Per tensor would need a scale
// known before the first row (or requantising everything when a larger value arrives); per (head,
// block of tokens) would requantise a block's earlier rows as it fills and tie the bytes to block
// boundaries. The cost: one fp32 per head_dim bytes (3% of a row at head_dim 128), read once per
// key by the kernels.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "attention/attention.h"
#include "backend/backend.h"

namespace starattn {

class KvCache {
 public:
  // tail_rows more rows are allocated after the capacity, for a tail cache (below). kv_dim must be
  // the backend's model's (n_kv_heads * head_dim); rows are in the format of `type`.
  KvCache(Backend& backend, int n_layers, int kv_dim, int64_t capacity, int64_t tail_rows = 0,
          KvType type = KvType::Act);
  // A cache over the tail rows of `owner` (which must outlive it), owning no memory: the query
  // host keeps the query's KV right after the context's, so phase 2 attends over both in one
  // call.
  struct TailOf {
    KvCache& owner;
  };
  explicit KvCache(TailOf t);

  int64_t size() const { return size_; }  // committed tokens
  int64_t capacity() const { return capacity_; }
  int kv_dim() const { return kv_dim_; }
  KvType type() const { return format_.type; }
  const KvRowFormat& format() const { return format_; }
  size_t row_bytes() const { return row_bytes_; }

  const void* k(int layer) const { return k_[layer]; }
  const void* v(int layer) const { return v_[layer]; }
  // Pointers to row `row` of a layer (row <= capacity).
  const void* k_row(int layer, int64_t row) const;
  const void* v_row(int layer, int64_t row) const;
  // The same, writable: a receiver fills rows in place (the broadcast anchor). Check the room with
  // write's rules: rows [row, row + n) must be within capacity.
  void* mutable_k_row(int layer, int64_t row, int n);
  void* mutable_v_row(int layer, int64_t row, int n);
  // Writes n rows of k, v ([n, kv_dim] act_dtype, backend memory) into `layer` at row `at`,
  // quantising them when the cache is fp8; throws when full.
  void write(int layer, int64_t at, int n, const void* k, const void* v);
  // Copies n rows that are already in this cache's format (k_rows, v_rows: [n, row_bytes],
  // backend memory; another cache's rows of the same format) into `layer` at row `at`.
  void put_rows(int layer, int64_t at, int n, const void* k_rows, const void* v_rows);
  // Makes the rows written at [size, size + n) part of the cache.
  void commit(int n);
  // Forgets everything from row `n` on.
  void truncate(int64_t n);
  // Makes room for `capacity` rows, keeping the committed ones (new memory, rows copied): a
  // served sequence's cache grows as it generates. Not for a cache with a tail or that is one.
  void grow(int64_t capacity);
  // Backend bytes this cache owns.
  size_t bytes() const;

 private:
  void check_room(int64_t at, int n) const;

  Backend& b_;
  int kv_dim_;
  KvRowFormat format_;
  int64_t capacity_;
  int64_t tail_rows_;
  size_t row_bytes_;
  int64_t size_ = 0;
  std::vector<char*> k_, v_;                         // row 0 of each layer
  std::vector<std::unique_ptr<BackendBuffer>> own_;  // the memory, unless this is a tail
};

// Backend bytes a KvCache of `rows` rows of `type` occupies (K and V of every layer, as
// allocated).
size_t kv_bytes_for_rows(const Backend& backend, int64_t rows, KvType type = KvType::Act);

// Parameters for attending n query rows q[n, n_heads, head_dim] over n_kv rows k, v laid out as a
// KV cache layer of format f (rows of f.row_bytes(), kv_format.h); no mask (set causal to add
// one).
AttnParams kv_attn_params(const ModelConfig& c, const KvRowFormat& f, const void* q, const void* k,
                          const void* v, void* out, float* lse, int n, int64_t n_kv);
// The same over rows [first_row, first_row + n_kv) of `layer` of `kv`.
AttnParams kv_attn_params(const ModelConfig& c, const KvCache& kv, int layer, int64_t first_row,
                          const void* q, void* out, float* lse, int n, int64_t n_kv);
// The same for k, v in the act_dtype ([n_kv, n_kv_heads, head_dim] contiguous rows).
AttnParams kv_attn_params(const ModelConfig& c, const void* q, const void* k, const void* v,
                          void* out, float* lse, int n, int64_t n_kv);

}  // namespace starattn
