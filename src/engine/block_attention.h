// The attention hook for causal segments of a KV cache, used by dense prefill and decoding, by
// Star phase 1 (a block after its anchor) and by the anchor itself.
//
// New tokens are written to the cache at row cache.size(). They attend causally to the cache rows
// [first_row, cache.size() + n) -- the segment being encoded -- and, when `prefix` is given, to
// every row of it without a mask (the anchor: all its positions precede the block's). The two
// partial results are merged exactly, so this equals causal attention over [prefix, segment].
#pragma once

#include <functional>
#include <vector>

#include "attention/attention.h"
#include "backend/cpu/forward.h"
#include "engine/kv_cache.h"
#include "model/config.h"

namespace starattn {

class BlockAttention : public AttentionHook {
 public:
  BlockAttention(const ModelConfig& c, KvCache& cache, int64_t first_row = 0,
                 const KvCache* prefix = nullptr)
      : c_(c), cache_(cache), first_row_(first_row), prefix_(prefix) {}

  void attend(int layer, int n, const float* q, const float* k, const float* v,
              float* out) override;

  // Called after a layer's new K/V rows are written: (layer, first cache row, rows, k, v) with
  // k, v: [rows, kv_dim]. Star's broadcast anchor sends them from here.
  std::function<void(int, int64_t, int, const float*, const float*)> on_kv;

 private:
  const ModelConfig& c_;
  KvCache& cache_;
  int64_t first_row_;
  const KvCache* prefix_;
  std::vector<float> lse_, out2_, lse2_;  // scratch for the prefix merge
};

// Parameters for attending n query rows q[n, n_heads, head_dim] over n_kv rows k, v
// [n_kv, n_kv_heads, head_dim] laid out as a KV cache layer; no mask (set causal to add one).
AttnParams kv_attn_params(const ModelConfig& c, const float* q, const float* k, const float* v,
                          float* out, float* lse, int n, int64_t n_kv);

}  // namespace starattn
