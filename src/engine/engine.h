// The engine of one rank: phase 1 encodes the context (dense, star or ring) into this rank's
// context KV cache, phase 2 runs the query and each generated token on every rank (phase2.h).
// Every rank constructs an Engine with the same arguments and makes the same calls in the same
// order; rank 0 is the query host, which alone stores query/generated KV and gets logits.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "comm/comm.h"
#include "comm/tensor_comm.h"
#include "engine/kv_cache.h"
#include "engine/phase2.h"
#include "engine/progress.h"
#include "engine/run_config.h"

namespace starattn {

class Engine {
 public:
  // rc must be resolved (RunConfig::resolved) for n_context tokens and comm.size() ranks.
  // query_capacity: the most query + generated tokens this run will append.
  // tensors moves KV and partial results between ranks (NCCL between GPUs); null means staging
  // them through the host over `comm`.
  Engine(Backend& backend, Comm& comm, const RunConfig& rc, int64_t n_context,
         int64_t query_capacity, TensorComm* tensors = nullptr);

  // Phase 1. Every rank passes the whole context (n_context tokens) and encodes its share.
  // progress: this rank's tokens, and its work against the slowest rank's (progress.h).
  void encode_context(const std::vector<int>& context, const ProgressFn& progress = nullptr);
  // Phase 2. Every rank passes the same tokens (the query, or one generated token). Returns the
  // logits after the last token, [vocab], on the query host; an empty vector on other ranks.
  // progress: per chunk of rc.chunk tokens; the ranks go in step, each chunk's attention
  // reading the most context any rank holds.
  std::vector<float> run(const std::vector<int>& tokens, const ProgressFn& progress = nullptr);
  // As run(), with logits for every token ([n, vocab], query host only); for tests.
  std::vector<float> run_all_logits(const std::vector<int>& tokens);
  // As run(), but returns the greedy next token (Backend::forward_greedy: chosen on the device,
  // only the id crosses to the host) on the query host; -1 on other ranks.
  int run_greedy(const std::vector<int>& tokens, const ProgressFn& progress = nullptr);

  bool is_query_host() const { return comm_.rank() == 0; }
  const KvCache& context_kv() const { return *context_; }
  const KvCache* query_kv() const { return query_.get(); }
  // Seconds spent moving tensors between ranks since the engine was made (all phases).
  double comm_seconds() { return tensors_->seconds(); }

 private:
  // What run_phase2 returns on the query host: the last token's logits, every token's, or the
  // greedy next token (in *greedy_id).
  enum class Phase2Out { LastLogits, AllLogits, Greedy };
  std::vector<float> run_phase2(const std::vector<int>& tokens, Phase2Out what,
                                const ProgressFn& progress, int* greedy_id = nullptr);
  int64_t local_context_rows() const;

  Backend& b_;
  Comm& comm_;
  std::unique_ptr<TensorComm> own_tensors_;  // when none was given
  TensorComm* tensors_;
  RunConfig rc_;
  int64_t n_context_;
  std::unique_ptr<KvCache> context_;  // on the query host, with the query's rows as its tail
  std::unique_ptr<KvCache> query_;    // query host only: the tail of context_
  std::unique_ptr<Phase2Attention> phase2_;
  int64_t n_query_ = 0;  // query + generated tokens run so far (known on every rank)
};

}  // namespace starattn
