// Ring attention (the exact context-parallel baseline for phase 1). Each rank holds the tokens of
// its two zigzag spans (layout.h) and encodes them all at once, layer by layer. In each layer the
// ranks' K/V shards travel around the ring (rank r sends to r+1, receives from r-1) for ranks-1
// steps; at every step a rank attends its queries to the visiting shard under the global causal
// mask and merges the partial result. Shards travel in two backend buffers used in turn: while
// the rank attends to the shard that arrived last, the TensorComm already passes it on and receives
// the next one (with NCCL the two overlap; host-staged, the exchange is done before compute).
// Shards are rows as the cache stores them (compressed in an fp8 cache).
#pragma once

#include "backend/backend.h"
#include "comm/tensor_comm.h"
#include "engine/kv_cache.h"
#include "engine/layout.h"

namespace starattn {

class RingAttention : public AttentionHook {
 public:
  // cache: this rank's (empty) context cache, which receives its own tokens' K/V.
  RingAttention(Backend& backend, TensorComm& comm, KvCache& cache, int64_t n_context);

  void attend(int layer, int n, const void* q, const void* k, const void* v, void* out) override;

 private:
  // Attends the query rows of span qs (from query row q_row) to the key rows of span ks (from row
  // k_row of k, v) under the causal mask. `first` writes out/lse directly; otherwise the partial
  // result is merged into them.
  void attend_pair(const void* q, const Span& qs, int64_t q_row, const void* k, const void* v,
                   const Span& ks, int64_t k_row, void* out, bool first);

  Backend& b_;
  TensorComm& comm_;
  KvCache& cache_;
  int64_t n_context_;
  BackendBuffer lse_, part_out_, part_lse_, shard_a_, shard_b_;
};

}  // namespace starattn
