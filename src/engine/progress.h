// Progress of a long step (phase 1, a long query) for a progress bar, and the arithmetic of its
// ETA. Time is predicted from work, not tokens: a forward call's cost grows with the keys its
// attention reads, so within a block (or a long query) the later chunks cost more than the first
// ones, and a token-count ETA comes out too early. Under several ranks the step ends when the
// rank with the most work ends, so the work to wait for is that rank's, measured at this rank's
// speed (ranks on equal hardware run at equal speed).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "model/config.h"

namespace starattn {

struct Progress {
  int64_t tokens_done = 0, tokens_total = 0;  // this rank's tokens of the step
  double work_done = 0;                       // FLOPs this rank has run in the step
  double work_total = 0;  // FLOPs of the rank with the most: the step ends when that one is done
};

// Called before the first forward call of a step (work_done 0) and after each one.
using ProgressFn = std::function<void(const Progress&)>;

// FLOPs of one forward call of n tokens whose attention reads `keys_before` keys (cached rows:
// an anchor, the earlier chunks of a block, the context) besides the causal n x n of its own:
// the projections and the MLP (2 per weight per token) and attention (4 per query-key pair per
// q_dim: QK^T and PV). The lm head is left out: phase 1 and a query's chunks but the last skip it.
double forward_work(const ModelConfig& c, int64_t n, int64_t keys_before);

// Its two parts: the projections and the MLP of n tokens, and attention over `pairs` query-key
// pairs (a ring rank's share is its tokens' pairs with every earlier token).
double projection_work(const ModelConfig& c, int64_t n);
double attention_work(const ModelConfig& c, double pairs);

// Seconds left of a step of work_total, of which work_done took `elapsed` seconds, at the same
// rate; nothing while there is no rate to go by (no work done yet, or no time measured).
std::optional<double> eta_seconds(double elapsed, double work_done, double work_total);

// One frame of a progress bar, `elapsed` seconds into the step on a job of `ranks` ranks:
//   phase 1 [#######.......................] 24%, 1024/4096 tokens, 850 tok/s, ETA 12s
//   phase 1 [#######.......................] 24% of the slowest of 2 ranks, rank 0: 1024/2048
//   tokens, 850 tok/s, ETA 12s
// The bar and the percentage are work (of the slowest rank), the tokens this rank's. Before any
// work is done there is no rate: the frame stops after the tokens.
std::string progress_frame(const std::string& label, const Progress& p, double elapsed, int ranks);
// "12s", "3m05s", "1h02m".
std::string short_duration(double seconds);

}  // namespace starattn
