// Star Attention phase 2 (also used after dense and ring phase 1): the query and every generated
// token run on all ranks. Per layer each rank attends over the context KV it holds, with no mask:
// every context key precedes every query token. The query host alone also attends causally over
// the query/generated tokens' KV, and alone stores it. The ranks' partial results (out, lse) are
// exchanged with one allgather and merged in rank order, so every rank ends the layer with the
// same bits.
//
// Why allgather: it is one collective per layer (a reduce + broadcast is two, an allreduce of
// scaled partials needs the global max first), the merge on each rank is tiny, and rank-order
// merging makes the hidden state bitwise identical on every rank.
#pragma once

#include <vector>

#include "backend/cpu/forward.h"
#include "dist/comm.h"
#include "engine/kv_cache.h"
#include "model/config.h"

namespace starattn {

class Phase2Attention : public AttentionHook {
 public:
  // query_kv is non-null on the query host only.
  Phase2Attention(const ModelConfig& c, Comm& comm, const KvCache& context, KvCache* query_kv)
      : c_(c), comm_(comm), context_(context), query_kv_(query_kv) {}

  void attend(int layer, int n, const float* q, const float* k, const float* v,
              float* out) override;

  double comm_seconds() const { return comm_seconds_; }

 private:
  const ModelConfig& c_;
  Comm& comm_;
  const KvCache& context_;
  KvCache* query_kv_;
  std::vector<float> lse_, out2_, lse2_, packed_, gathered_;
  double comm_seconds_ = 0.0;
};

}  // namespace starattn
