#include "engine/kv_cache.h"

#include <algorithm>

#include "starattn/error.h"

namespace starattn {

KvCache::KvCache(int n_layers, int kv_dim, int64_t capacity)
    : kv_dim_(kv_dim), capacity_(capacity), k_(n_layers), v_(n_layers) {
  SA_CHECK(capacity >= 0, "KV cache: negative capacity");
  for (int l = 0; l < n_layers; ++l) {
    k_[l].resize(static_cast<size_t>(capacity) * kv_dim);
    v_[l].resize(static_cast<size_t>(capacity) * kv_dim);
  }
}

void KvCache::write(int layer, int64_t at, int n, const float* k, const float* v) {
  SA_CHECK(at >= 0 && at + n <= capacity_, "KV cache full: ", at + n, " tokens needed, capacity ",
           capacity_);
  std::copy_n(k, static_cast<int64_t>(n) * kv_dim_, k_[layer].data() + at * kv_dim_);
  std::copy_n(v, static_cast<int64_t>(n) * kv_dim_, v_[layer].data() + at * kv_dim_);
}

void KvCache::commit(int n) {
  SA_CHECK(size_ + n <= capacity_, "KV cache: commit past capacity");
  size_ += n;
}

void KvCache::truncate(int64_t n) {
  size_ = std::clamp<int64_t>(n, 0, size_);
}

}  // namespace starattn
