#include "engine/kv_cache.h"

#include <algorithm>

#include "starattn/error.h"

namespace starattn {

KvCache::KvCache(Backend& backend, int n_layers, int kv_dim, int64_t capacity, int64_t tail_rows)
    : b_(backend),
      kv_dim_(kv_dim),
      capacity_(capacity),
      tail_rows_(tail_rows),
      row_bytes_(static_cast<size_t>(kv_dim) * dtype_bytes(backend.act_dtype())) {
  SA_CHECK(capacity >= 0 && tail_rows >= 0, "KV cache: negative capacity");
  const size_t bytes = (capacity + tail_rows) * row_bytes_;
  for (int l = 0; l < n_layers; ++l) {
    for (std::vector<char*>* kv : {&k_, &v_}) {
      own_.push_back(std::make_unique<BackendBuffer>(b_, bytes));
      kv->push_back(own_.back()->as<char>());
    }
  }
}

KvCache::KvCache(TailOf t)
    : b_(t.owner.b_),
      kv_dim_(t.owner.kv_dim_),
      capacity_(t.owner.tail_rows_),
      tail_rows_(0),
      row_bytes_(t.owner.row_bytes_) {
  const int64_t skip = t.owner.capacity_ * static_cast<int64_t>(row_bytes_);
  for (char* k : t.owner.k_) k_.push_back(k ? k + skip : nullptr);
  for (char* v : t.owner.v_) v_.push_back(v ? v + skip : nullptr);
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
  b_.copy(k_[layer] + at * row_bytes_, k, n * row_bytes_);
  b_.copy(v_[layer] + at * row_bytes_, v, n * row_bytes_);
}

void* KvCache::mutable_k_row(int layer, int64_t row, int n) {
  check_room(row, n);
  return k_[layer] + row * row_bytes_;
}
void* KvCache::mutable_v_row(int layer, int64_t row, int n) {
  check_room(row, n);
  return v_[layer] + row * row_bytes_;
}

void KvCache::commit(int n) {
  SA_CHECK(size_ + n <= capacity_, "KV cache: commit past capacity");
  size_ += n;
}

void KvCache::truncate(int64_t n) {
  size_ = std::clamp<int64_t>(n, 0, size_);
}

}  // namespace starattn
