#include "engine/phase2.h"

#include "engine/block_attention.h"

namespace starattn {

Phase2Attention::Phase2Attention(Backend& backend, TensorComm& comm, const KvCache& context,
                                 KvCache* query_kv)
    : b_(backend),
      comm_(comm),
      context_(context),
      query_kv_(query_kv),
      packed_(backend),
      gathered_(backend),
      lse_(backend),
      out2_(backend),
      lse2_(backend) {}

void Phase2Attention::attend(int layer, int n, const void* q, const void* k, const void* v,
                             void* out) {
  const ModelConfig& c = b_.config();
  const int hd = c.head_dim, heads = c.n_heads, ranks = comm_.size();
  const size_t rows = static_cast<size_t>(n) * heads;
  const size_t out_bytes = rows * hd * dtype_bytes(b_.act_dtype());
  const size_t lse_bytes = rows * sizeof(float);
  const size_t each = out_bytes + lse_bytes;  // out_bytes is a multiple of 4: lse stays aligned
  // With several ranks this rank's partial is built in place in the allgather's send buffer
  // [out | lse]; alone, it is the layer's output.
  void* my_out = out;
  float* my_lse = nullptr;
  if (ranks > 1) {
    packed_.reserve(each);
    my_out = packed_.get();
    my_lse = reinterpret_cast<float*>(packed_.as<char>() + out_bytes);
  } else {
    lse_.reserve(lse_bytes);
    my_lse = lse_.as<float>();
  }
  // Context: every key visible (causal = false). This is where the public reference went wrong:
  // a bottom-right causal mask here hides the last keys of the block from early query rows.
  b_.attention(kv_attn_params(c, q, context_.k(layer), context_.v(layer), my_out, my_lse, n,
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
    b_.merge(my_out, my_lse, out2_.get(), lse2_.as<float>(), n, heads, hd);
  }
  if (ranks == 1) return;

  // Everyone's partials, merged in rank order so every rank ends with the same bits.
  gathered_.reserve(each * ranks);
  comm_.allgather(packed_.get(), gathered_.get(), each);
  lse_.reserve(lse_bytes);
  const char* all = gathered_.as<char>();
  b_.copy(out, all, out_bytes);
  b_.copy(lse_.get(), all + out_bytes, lse_bytes);
  for (int r = 1; r < ranks; ++r) {
    const char* part = all + each * r;
    b_.merge(out, lse_.as<float>(), part, reinterpret_cast<const float*>(part + out_bytes), n,
             heads, hd);
  }
}

}  // namespace starattn
