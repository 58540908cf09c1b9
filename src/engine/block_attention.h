// The attention hook for causal segments of a KV cache, used by dense prefill, by Star phase 1 (a
// block after its anchor) and by the anchor itself.
//
// New tokens are written to the cache at row cache.size(). They attend causally to the cache rows
// [first_row, cache.size() + n) -- the segment being encoded -- and, when `prefix` is given, to
// every row of it without a mask (the anchor: all its positions precede the block's). The two
// partial results are merged exactly, so this equals causal attention over [prefix, segment].
#pragma once

#include <functional>

#include "attention/attention.h"
#include "backend/backend.h"
#include "engine/kv_cache.h"

namespace starattn {

class BlockAttention : public AttentionHook {
 public:
  BlockAttention(Backend& backend, KvCache& cache, int64_t first_row = 0,
                 const KvCache* prefix = nullptr);

  void attend(int layer, int n, const void* q, const void* k, const void* v, void* out) override;

  // Called after a layer's new K/V rows are written: (layer, first cache row, rows, k, v) with
  // k, v: the rows as the cache holds them ([rows, cache.row_bytes()] in backend memory, in the
  // cache's format). Star's broadcast anchor sends them from here, compressed when fp8.
  std::function<void(int, int64_t, int, const void*, const void*)> on_kv;
  // Called at the start of each layer, before any attention: a rank receiving the broadcast
  // anchor fills the prefix's rows of this layer here, just in time.
  std::function<void(int)> before_attend;

 private:
  Backend& b_;
  KvCache& cache_;
  int64_t first_row_;
  const KvCache* prefix_;
  BackendBuffer lse_, out2_, lse2_;  // scratch for the prefix merge
};

}  // namespace starattn
