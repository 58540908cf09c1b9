// Ring attention (the exact context-parallel baseline for phase 1). Each rank holds the tokens of
// its two zigzag spans (layout.h) and encodes them all at once, layer by layer. In each layer the
// ranks' K/V shards travel around the ring (rank r sends to r+1, receives from r-1) for ranks-1
// steps; at every step a rank attends its queries to the visiting shard under the global causal
// mask and merges the partial result. Blocking sendrecv: on CPU ranks compute and transfer do not
// overlap.
#pragma once

#include <vector>

#include "backend/cpu/forward.h"
#include "dist/comm.h"
#include "engine/kv_cache.h"
#include "engine/layout.h"
#include "model/config.h"

namespace starattn {

class RingAttention : public AttentionHook {
 public:
  // cache: this rank's (empty) context cache, which receives its own tokens' K/V.
  RingAttention(const ModelConfig& c, Comm& comm, KvCache& cache, int64_t n_context)
      : c_(c), comm_(comm), cache_(cache), n_context_(n_context) {}

  void attend(int layer, int n, const float* q, const float* k, const float* v,
              float* out) override;

 private:
  // Attends the query rows of span qs (starting at query row q_row) to the key rows of span ks
  // (starting at row k_row of k, v) under the causal mask, merging into out/lse_.
  void attend_pair(const float* q, const Span& qs, int64_t q_row, const float* k, const float* v,
                   const Span& ks, int64_t k_row, float* out);

  const ModelConfig& c_;
  Comm& comm_;
  KvCache& cache_;
  int64_t n_context_;
  std::vector<float> lse_, part_out_, part_lse_, shard_, incoming_;
};

}  // namespace starattn
