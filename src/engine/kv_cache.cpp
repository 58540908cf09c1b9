#include "engine/kv_cache.h"

#include <algorithm>
#include <cmath>

#include "starattn/error.h"

namespace starattn {

AttnParams kv_attn_params(const ModelConfig& c, const KvRowFormat& f, const void* q, const void* k,
                          const void* v, void* out, float* lse, int n, int64_t n_kv) {
  AttnParams p;
  p.q = q;
  p.k = k;
  p.v = v;
  p.out = out;
  p.lse = lse;
  p.n_q = n;
  p.n_kv = static_cast<int>(n_kv);
  p.n_heads = c.n_heads;
  p.n_kv_heads = c.n_kv_heads;
  p.head_dim = c.head_dim;
  p.q_stride = c.q_dim();
  p.kv_stride = f.stride_elements();
  p.kv_type = f.type;
  p.kv_scale_offset = f.scale_offset();
  p.out_stride = c.q_dim();
  p.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  return p;
}

AttnParams kv_attn_params(const ModelConfig& c, const KvCache& kv, int layer, int64_t first_row,
                          const void* q, void* out, float* lse, int n, int64_t n_kv) {
  return kv_attn_params(c, kv.format(), q, kv.k_row(layer, first_row), kv.v_row(layer, first_row),
                        out, lse, n, n_kv);
}

AttnParams kv_attn_params(const ModelConfig& c, const void* q, const void* k, const void* v,
                          void* out, float* lse, int n, int64_t n_kv) {
  KvRowFormat f;
  f.n_kv_heads = c.n_kv_heads;
  f.head_dim = c.head_dim;
  return kv_attn_params(c, f, q, k, v, out, lse, n, n_kv);
}

size_t kv_bytes_for_rows(const Backend& b, int64_t rows, KvType type) {
  const ModelConfig& c = b.config();
  const size_t layer = static_cast<size_t>(rows) * b.kv_row_format(type).row_bytes();
  return 2 * static_cast<size_t>(c.n_layers) * (rows > 0 ? b.allocation_size(layer) : 0);
}

KvCache::KvCache(Backend& backend, int n_layers, int kv_dim, int64_t capacity, int64_t tail_rows,
                 KvType type)
    : b_(backend),
      kv_dim_(kv_dim),
      format_(backend.kv_row_format(type)),
      capacity_(capacity),
      tail_rows_(tail_rows),
      row_bytes_(format_.row_bytes()) {
  SA_CHECK(capacity >= 0 && tail_rows >= 0, "KV cache: negative capacity");
  SA_CHECK(kv_dim == format_.kv_dim(), "KV cache: ", kv_dim, " values a row, but the model has ",
           format_.kv_dim());
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
      format_(t.owner.format_),
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
  b_.write_kv_rows(k_[layer], v_[layer], format_, at, k, v, n);
}

void KvCache::put_rows(int layer, int64_t at, int n, const void* k_rows, const void* v_rows) {
  check_room(at, n);
  b_.copy(k_[layer] + at * row_bytes_, k_rows, n * row_bytes_);
  b_.copy(v_[layer] + at * row_bytes_, v_rows, n * row_bytes_);
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

void KvCache::grow(int64_t capacity) {
  SA_CHECK(tail_rows_ == 0 && own_.size() == 2 * k_.size(),
           "KV cache: only a cache without a tail can grow");
  if (capacity <= capacity_) return;
  const size_t bytes = capacity * row_bytes_, keep = size_ * row_bytes_;
  for (size_t l = 0; l < k_.size(); ++l) {
    for (int kv = 0; kv < 2; ++kv) {
      auto grown = std::make_unique<BackendBuffer>(b_, bytes);
      std::unique_ptr<BackendBuffer>& old = own_[2 * l + kv];
      b_.copy(grown->get(), old->get(), keep);
      old = std::move(grown);
      (kv == 0 ? k_ : v_)[l] = old->as<char>();
    }
  }
  capacity_ = capacity;
}

size_t KvCache::bytes() const {
  size_t total = 0;
  for (const auto& b : own_) total += b->bytes();
  return total;
}

}  // namespace starattn
