// RunConfig: how a run spreads the context over ranks (the model's own shape is ModelConfig).
#pragma once

#include <cstdint>
#include <string>

namespace starattn {

enum class AttnMode {
  Dense,  // exact causal attention over the whole context, on the query host alone
  Star,   // Star Attention: blocks with an anchor prefix, no communication in phase 1
  Ring,   // exact context parallelism: zigzag shards, KV passed around the ring
};

// Where a rank gets the anchor's KV for its blocks (Star only; all give the same result).
enum class AnchorMode {
  Recompute,  // recompute the anchor before every block (the paper)
  Shared,     // compute it once per rank and reuse it for all the rank's blocks
  Broadcast,  // rank 0 sends it layer by layer while encoding block 0; others skip it
};

struct RunConfig {
  AttnMode attn = AttnMode::Star;
  int64_t block_size = -1;   // B, tokens; -1 = ceil(context tokens / ranks)
  int64_t anchor_size = -1;  // A, tokens; -1 = B; 0 = no anchor (the ablation)
  AnchorMode anchor = AnchorMode::Shared;
  // Tokens per forward call in long prefills (memory and progress granularity); 0 = the
  // backend's choice (Backend::preferred_chunk: 512 on a CPU, 8192 on a GPU).
  int chunk = 0;
  // Lets the backend record a one-token phase-2 step once and replay it (CUDA graphs on the GPU;
  // one rank only). Off: every step is launched op by op (for comparing the two).
  bool replay_steps = true;

  // Checks what needs no context length (the signs of -b and -a, -a <= -b when both are given,
  // --chunk), so that a bad flag is reported before anything slow; resolved() checks it too.
  void check() const;
  // Fills the defaults for a context of n tokens over `ranks` ranks and checks the values;
  // throws starattn::Error naming the flag at fault.
  RunConfig resolved(int64_t n_context, int ranks) const;
  // One line that must be identical on every rank (checked before any work).
  std::string describe() const;
};

AttnMode parse_attn_mode(const std::string& s);
AnchorMode parse_anchor_mode(const std::string& s);
const char* attn_mode_name(AttnMode m);
const char* anchor_mode_name(AnchorMode m);

}  // namespace starattn
