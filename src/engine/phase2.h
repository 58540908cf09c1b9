// Star Attention phase 2 (also used after dense and ring phase 1): the query and every generated
// token run on all ranks. Per layer each rank attends over the context KV it holds, with no mask:
// every context key precedes every query token. The query host alone also attends causally over
// the query/generated tokens' KV, and alone stores it. The ranks' partial results (out, lse) are
// exchanged with one allgather and merged in rank order, so every rank ends the layer with the
// same bits.
//
// Why allgather: it is one collective per layer (a reduce + broadcast is two, an allreduce of
// scaled partials needs the global max first), the merge on each rank is tiny, and rank-order
// merging makes the hidden state bitwise identical on every rank. The partials are a few KB per
// token, so the collective's latency, not its bandwidth, is what costs.
#pragma once

#include "backend/backend.h"
#include "dist/tensor_comm.h"
#include "engine/kv_cache.h"

namespace starattn {

class Phase2Attention : public AttentionHook {
 public:
  // query_kv is non-null on the query host only.
  Phase2Attention(Backend& backend, TensorComm& comm, const KvCache& context, KvCache* query_kv);

  void attend(int layer, int n, const void* q, const void* k, const void* v, void* out) override;

 private:
  Backend& b_;
  TensorComm& comm_;
  const KvCache& context_;
  KvCache* query_kv_;
  // Backend scratch: this rank's packed [out | lse], everyone's, and the query-KV partial.
  BackendBuffer packed_, gathered_, lse_, out2_, lse2_;
};

}  // namespace starattn
