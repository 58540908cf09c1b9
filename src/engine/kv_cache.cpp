#include "engine/kv_cache.h"

#include <algorithm>

#include "starattn/error.h"

namespace starattn {

KvCache::KvCache(Backend& backend, int n_layers, int kv_dim, int64_t capacity)
    : b_(backend),
      kv_dim_(kv_dim),
      capacity_(capacity),
      row_bytes_(static_cast<size_t>(kv_dim) * dtype_bytes(backend.act_dtype())) {
  SA_CHECK(capacity >= 0, "KV cache: negative capacity");
  for (int l = 0; l < n_layers; ++l) {
    k_.push_back(std::make_unique<BackendBuffer>(b_, capacity * row_bytes_));
    v_.push_back(std::make_unique<BackendBuffer>(b_, capacity * row_bytes_));
  }
}

const void* KvCache::k_row(int layer, int64_t row) const {
  return static_cast<const char*>(k(layer)) + row * row_bytes_;
}
const void* KvCache::v_row(int layer, int64_t row) const {
  return static_cast<const char*>(v(layer)) + row * row_bytes_;
}

void KvCache::check_room(int64_t at, int n) const {
  SA_CHECK(at >= 0 && at + n <= capacity_, "KV cache full: ", at + n, " tokens needed, capacity ",
           capacity_);
}

void KvCache::write(int layer, int64_t at, int n, const void* k, const void* v) {
  check_room(at, n);
  b_.copy(k_[layer]->as<char>() + at * row_bytes_, k, n * row_bytes_);
  b_.copy(v_[layer]->as<char>() + at * row_bytes_, v, n * row_bytes_);
}

void* KvCache::mutable_k_row(int layer, int64_t row, int n) {
  check_room(row, n);
  return k_[layer]->as<char>() + row * row_bytes_;
}
void* KvCache::mutable_v_row(int layer, int64_t row, int n) {
  check_room(row, n);
  return v_[layer]->as<char>() + row * row_bytes_;
}

void KvCache::commit(int n) {
  SA_CHECK(size_ + n <= capacity_, "KV cache: commit past capacity");
  size_ += n;
}

void KvCache::truncate(int64_t n) {
  size_ = std::clamp<int64_t>(n, 0, size_);
}

}  // namespace starattn
