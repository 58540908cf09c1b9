// KV cache of one rank. Layout, per layer: K and V each [capacity, n_kv_heads, head_dim] row-major,
// so a token's keys for all kv heads are one contiguous row of kv_dim floats.
#pragma once

#include <cstdint>
#include <vector>

namespace starattn {

class KvCache {
 public:
  KvCache(int n_layers, int kv_dim, int64_t capacity);

  int64_t size() const { return size_; }  // committed tokens
  int64_t capacity() const { return capacity_; }
  int kv_dim() const { return kv_dim_; }

  const float* k(int layer) const { return k_[layer].data(); }
  const float* v(int layer) const { return v_[layer].data(); }
  // Copies n rows of k, v ([n, kv_dim]) into layer `layer` at row `at`; throws when full.
  void write(int layer, int64_t at, int n, const float* k, const float* v);
  // Makes the rows written at [size, size + n) part of the cache.
  void commit(int n);
  // Forgets everything from row `n` on.
  void truncate(int64_t n);

 private:
  int kv_dim_;
  int64_t capacity_;
  int64_t size_ = 0;
  std::vector<std::vector<float>> k_, v_;  // [n_layers][capacity * kv_dim]
};

}  // namespace starattn
