// Phase 2 for many sequences at once, as a server runs it: the next tokens of every active
// sequence go through the model in one forward call (so each GEMM runs over all their rows), and
// each layer's attention is split the way Star Attention's phase 2 allows exactly:
//   - per context in the batch: ONE attention of all its sequences' rows over this rank's shard of
//     that context's KV, with no mask (every context key precedes every query token), returning
//     (out, lse). Sequences that share a document share this call;
//   - on the query host, per sequence: causal attention over the sequence's own KV (its query and
//     generated tokens, which no other sequence sees), merged into its rows;
//   - across ranks: one allgather of every row's (out, lse), merged in rank order, so every rank
//     ends the layer with the same bits (as Phase2Attention does for one sequence).
// A context's KV is never written here: contexts are immutable once encoded.
#pragma once

#include <vector>

#include "backend/backend.h"
#include "comm/tensor_comm.h"
#include "engine/kv_cache.h"

namespace starattn {

// One sequence's part of a step.
struct SeqStep {
  const KvCache* context = nullptr;  // this rank's shard of the sequence's context (0 rows is ok)
  KvCache* own = nullptr;            // query host: the sequence's own KV; null on other ranks
  int n = 0;                         // the sequence's tokens in this step (rows, consecutive)
};

class BatchPhase2 : public AttentionHook {
 public:
  // share_context = false gives every sequence its own context attention call, as if each read
  // the context alone (the same result; for measuring what the sharing buys).
  BatchPhase2(Backend& backend, TensorComm& comm, bool share_context = true);

  // Before each forward call: the step's sequences in row order. Sequences on the same context
  // should be adjacent: each run of them shares one context attention call.
  void begin(std::vector<SeqStep> seqs);
  void attend(int layer, int n, const void* q, const void* k, const void* v, void* out) override;
  // After the forward call: the new rows become part of each sequence's own KV.
  void end();

 private:
  Backend& b_;
  TensorComm& comm_;
  bool share_context_;
  std::vector<SeqStep> seqs_;
  std::vector<AttnItem> items_;  // this layer's per-sequence attentions
  int rows_ = 0;
  // Backend scratch: this rank's [out | lse] for all rows (the allgather's send buffer, or out and
  // lse alone with one rank), everyone's, and one sequence's own-KV partial.
  BackendBuffer packed_, gathered_, lse_, own_out_, own_lse_;
};

}  // namespace starattn
