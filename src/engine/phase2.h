// Star Attention phase 2 (also used after dense and ring phase 1): the query and every generated
// token run on all ranks. Per layer each rank attends over the context KV it holds, with no mask:
// every context key precedes every query token. The query host alone also attends causally over
// the query/generated tokens' KV, and alone stores it (right after its context KV, so that both
// are one attention call). The ranks' partial results (out, lse) are
// exchanged with one allgather and merged in rank order, so every rank ends the layer with the
// same bits.
//
// Why allgather: it is one collective per layer (a reduce + broadcast is two, an allreduce of
// scaled partials needs the global max first), the merge on each rank is tiny, and rank-order
// merging makes the hidden state bitwise identical on every rank. The partials are a few KB per
// token, so the collective's latency, not its bandwidth, is what costs.
#pragma once

#include "backend/backend.h"
#include "comm/tensor_comm.h"
#include "engine/kv_cache.h"

namespace starattn {

class Phase2Attention : public AttentionHook {
 public:
  // query_kv is non-null on the query host only, and is the tail of `context` (KvCache::TailOf):
  // the query host's context and query keys are one array, so it attends over both in one call
  // (context unmasked, query causal is one causal mask offset by the context's length). With
  // `replayable`, one rank, and one token, the step reads its KV row and key count from backend
  // memory, so the backend may record it once and replay it (replay_key).
  Phase2Attention(Backend& backend, TensorComm& comm, const KvCache& context, KvCache* query_kv,
                  bool replayable);

  // Before each forward call: it runs n tokens after the query KV's committed rows.
  void begin(int n);
  void attend(int layer, int n, const void* q, const void* k, const void* v, void* out) override;
  uint64_t replay_key() const override { return dynamic_ ? key_ : 0; }

 private:
  Backend& b_;
  TensorComm& comm_;
  const KvCache& context_;
  KvCache* query_kv_;
  bool replayable_;
  uint64_t key_;
  bool dynamic_ = false;  // this forward reads its row and key count from step_
  // Backend scratch: this rank's packed [out | lse], everyone's; and the step's
  // {query KV row, key count} for a replayable step.
  BackendBuffer packed_, gathered_, step_;
};

}  // namespace starattn
