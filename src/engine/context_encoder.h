// Phase 1 as a job that advances one forward call at a time, so that a server can interleave the
// encoding of a new context with the decode steps of running questions (Engine simply runs it to
// the end). Every rank makes a ContextEncoder for the context with the same arguments and calls
// advance() in lock-step with the others until all are done; a rank with no work left returns
// false at once. The collectives of phase 1 (the ring's exchanges, the broadcast anchor) all
// happen inside each rank's first call, so they line up across ranks whatever their share.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "comm/tensor_comm.h"
#include "engine/kv_cache.h"
#include "engine/progress.h"
#include "engine/run_config.h"

namespace starattn {

class ContextEncoder {
 public:
  // rc must be resolved for context.size() tokens and tensors.size() ranks. dst: this rank's
  // empty context cache with room for context_rows_of_rank() rows. `context` (the whole context,
  // on every rank) and dst must outlive the encoder.
  ContextEncoder(Backend& backend, TensorComm& tensors, const RunConfig& rc,
                 const std::vector<int>& context, KvCache& dst);

  // The most tokens one of this rank's forward calls runs (for the memory plan).
  static int64_t max_call_tokens(const RunConfig& rc, int64_t n_context, int ranks, int rank);
  // Rows of the anchor cache this rank holds while it encodes (A, or 0).
  static int64_t anchor_rows(const RunConfig& rc, int64_t n_context);
  // The phase-1 work of `rank` in FLOPs (progress.h), and the most any rank has: what phase 1
  // waits for. rc resolved, its chunk set (not 0).
  static double work_of_rank(const RunConfig& rc, const ModelConfig& c, int64_t n_context,
                             int ranks, int rank);
  static double slowest_rank_work(const RunConfig& rc, const ModelConfig& c, int64_t n_context,
                                  int ranks);

  // Runs this rank's next forward call; false when this rank had nothing left to do.
  bool advance();
  bool done() const { return next_ >= calls_.size(); }
  // This rank's context tokens encoded so far, and in all (anchor recomputation not counted).
  int64_t tokens_done() const { return tokens_done_; }
  int64_t tokens_total() const { return tokens_total_; }
  // The same in FLOPs, anchor computation included.
  double work_done() const { return work_done_; }
  double work_total() const { return work_total_; }

 private:
  enum class Kind {
    Anchor,         // tokens of the anchor into the anchor cache (recomputed or computed once)
    Block,          // tokens of one of this rank's blocks (or of the dense context) into dst
    ReceiveAnchor,  // broadcast mode, a rank with no blocks: just take the anchor's layers
    Ring,           // the ring: this rank's whole share in one call
  };
  // One forward call: n tokens at positions [pos, pos + n) (of the context, or of the anchor).
  struct Call {
    Kind kind = Kind::Block;
    int64_t pos = 0, n = 0;
    int64_t block = 0;            // the block it is for (Anchor: the block that needs it)
    int64_t block_row = 0;        // dst row of the block's first token (Block)
    bool restart = false;         // Anchor: the first call of a computation (empties the cache)
    bool anchored = false;        // Block: the block sees the anchor as its prefix
    bool anchor_from_kv = false;  // Block 0: its first A rows are the anchor; keep (and send) them
    int64_t keys_before = 0;      // cached keys its attention reads before its own rows
    double work = 0;              // FLOPs (progress.h)
  };
  // This rank's calls, in order (rc resolved, its chunk set).
  static std::vector<Call> plan(const RunConfig& rc, const ModelConfig& c, int64_t n_context,
                                int ranks, int rank);
  static void plan_star(const RunConfig& rc, const ModelConfig& c, int64_t n_context, int ranks,
                        int rank, std::vector<Call>& calls);
  // Calls of at most rc.chunk tokens (the first first_chunk) over [begin, begin + n).
  static void add_chunks(const RunConfig& rc, const ModelConfig& c, Call proto, int64_t begin,
                         int64_t n, int64_t first_chunk, std::vector<Call>& calls);
  void run_anchor(const Call& call);
  void run_block(const Call& call);
  void run_ring();
  // Broadcast mode on a receiving rank: layer `layer` of rank 0's anchor, into the anchor cache.
  void receive_anchor_layer(int layer);

  Backend& b_;
  TensorComm& tensors_;
  RunConfig rc_;
  const std::vector<int>& context_;
  KvCache& dst_;
  int64_t n_context_;
  std::vector<Call> calls_;
  size_t next_ = 0;
  int64_t tokens_done_ = 0, tokens_total_ = 0;
  double work_done_ = 0, work_total_ = 0;

  // Star's anchor (A tokens at positions 0..A-1, by default the context's first A): its KV, and
  // how this rank gets it. Recompute: before every anchored block. Shared: once per rank; from
  // block 0's own first A rows where the rank holds block 0 and the anchor is the context's
  // start. Broadcast: rank 0 sends the anchor's rows layer by layer in its first call (while it
  // encodes block 0, or computes another source's anchor); every other rank receives them during
  // its first call.
  std::unique_ptr<KvCache> anchor_;
  std::vector<int> anchor_tokens_;  // the anchor of the block being computed (one call's worth)
  bool send_anchor_ = false, receive_anchor_ = false;
};

}  // namespace starattn
