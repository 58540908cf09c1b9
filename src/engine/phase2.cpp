#include "engine/phase2.h"

#include <chrono>

#include "engine/block_attention.h"

namespace starattn {

Phase2Attention::Phase2Attention(Backend& backend, Comm& comm, const KvCache& context,
                                 KvCache* query_kv)
    : b_(backend),
      comm_(comm),
      context_(context),
      query_kv_(query_kv),
      lse_(backend),
      out2_(backend),
      lse2_(backend) {}

void Phase2Attention::attend(int layer, int n, const void* q, const void* k, const void* v,
                             void* out) {
  const ModelConfig& c = b_.config();
  const int hd = c.head_dim, heads = c.n_heads;
  const size_t rows = static_cast<size_t>(n) * heads;
  const size_t out_bytes = rows * hd * dtype_bytes(b_.act_dtype());
  const size_t lse_bytes = rows * sizeof(float);
  lse_.reserve(lse_bytes);
  // Context: every key visible (causal = false). This is where the public reference went wrong:
  // a bottom-right causal mask here hides the last keys of the block from early query rows.
  b_.attention(kv_attn_params(c, q, context_.k(layer), context_.v(layer), out, lse_.as<float>(), n,
                              context_.size()));
  if (query_kv_) {
    const int64_t past = query_kv_->size();
    query_kv_->write(layer, past, n, k, v);
    out2_.reserve(out_bytes);
    lse2_.reserve(lse_bytes);
    AttnParams p = kv_attn_params(c, q, query_kv_->k(layer), query_kv_->v(layer), out2_.get(),
                                  lse2_.as<float>(), n, past + n);
    p.causal = true;
    p.causal_offset = past;
    b_.attention(p);
    b_.merge(out, lse_.as<float>(), out2_.get(), lse2_.as<float>(), n, heads, hd);
  }
  const int ranks = comm_.size();
  if (ranks == 1) return;

  // Pack [out | lse] per rank on the host, gather everyone's, merge in rank order.
  const size_t each = out_bytes + lse_bytes;
  packed_.resize(each);
  b_.to_host(packed_.data(), out, out_bytes);
  b_.to_host(packed_.data() + out_bytes, lse_.get(), lse_bytes);
  gathered_.resize(each * ranks);
  const auto t0 = std::chrono::steady_clock::now();
  comm_.allgather(packed_.data(), gathered_.data(), each);
  comm_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  out2_.reserve(out_bytes);
  lse2_.reserve(lse_bytes);
  b_.from_host(out, gathered_.data(), out_bytes);
  b_.from_host(lse_.get(), gathered_.data() + out_bytes, lse_bytes);
  for (int r = 1; r < ranks; ++r) {
    const char* part = gathered_.data() + each * r;
    b_.from_host(out2_.get(), part, out_bytes);
    b_.from_host(lse2_.get(), part + out_bytes, lse_bytes);
    b_.merge(out, lse_.as<float>(), out2_.get(), lse2_.as<float>(), n, heads, hd);
  }
}

}  // namespace starattn
