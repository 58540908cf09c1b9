// KV cache of one rank, in its backend's memory. Layout, per layer: K and V each
// [capacity, n_kv_heads, head_dim] row-major in the backend's act_dtype, so a token's keys for all
// kv heads are one contiguous row of kv_dim elements.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "attention/attention.h"
#include "backend/backend.h"

namespace starattn {

class KvCache {
 public:
  // tail_rows more rows are allocated after the capacity, for a tail cache (below).
  KvCache(Backend& backend, int n_layers, int kv_dim, int64_t capacity, int64_t tail_rows = 0);
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
  // Copies n rows of k, v ([n, kv_dim], backend memory) into `layer` at row `at`; throws when full.
  void write(int layer, int64_t at, int n, const void* k, const void* v);
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
  int64_t capacity_;
  int64_t tail_rows_;
  size_t row_bytes_;
  int64_t size_ = 0;
  std::vector<char*> k_, v_;                         // row 0 of each layer
  std::vector<std::unique_ptr<BackendBuffer>> own_;  // the memory, unless this is a tail
};

// Backend bytes a KvCache of `rows` rows occupies (K and V of every layer, as allocated).
size_t kv_bytes_for_rows(const Backend& backend, int64_t rows);

// Parameters for attending n query rows q[n, n_heads, head_dim] over n_kv rows k, v
// [n_kv, n_kv_heads, head_dim] laid out as a KV cache layer; no mask (set causal to add one).
AttnParams kv_attn_params(const ModelConfig& c, const void* q, const void* k, const void* v,
                          void* out, float* lse, int n, int64_t n_kv);

}  // namespace starattn
