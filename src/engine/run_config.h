// RunConfig: how a run spreads the context over ranks (the model's own shape is ModelConfig).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "attention/kv_format.h"
#include "util/enum_names.h"

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

// What the anchor holds (Star only; an experiment of the paper's Table 3). Its positions are
// always 0..A-1; only its tokens change.
enum class AnchorSource {
  First,     // the context's first A tokens (the paper's anchor; the default)
  Previous,  // each block's previous block (its last A tokens): a different anchor per block
  Random,    // A random token ids (seeded), the same for every block
  Shuffled,  // the first A tokens in a seeded random order
  Constant,  // the context's first token repeated A times
};

struct RunConfig {
  AttnMode attn = AttnMode::Star;
  int64_t block_size = -1;   // B, tokens; -1 = ceil(context tokens / ranks)
  int64_t anchor_size = -1;  // A, tokens; -1 = B; 0 = no anchor (the ablation)
  AnchorMode anchor = AnchorMode::Shared;
  AnchorSource anchor_source = AnchorSource::First;
  uint64_t anchor_seed = 0;  // for the random and shuffled sources
  // Tokens per forward call in long prefills (memory and progress granularity); 0 = the
  // backend's choice (Backend::preferred_chunk: 512 on a CPU, 8192 on a GPU).
  int chunk = 0;
  // Lets the backend record a one-token phase-2 step once and replay it (CUDA graphs on the GPU;
  // one rank only). Off: every step is launched op by op (for comparing the two).
  bool replay_steps = true;
  // What the KV cache stores (--kv-type): the backend's activation type (bf16 on a GPU; fp32 on
  // the CPU, whose "bf16" keeps full precision) or FP8 E4M3 with a scale per (token, kv head),
  // half the bytes of bf16 (kv_format.h). Every KV row is quantised once, as it is written.
  KvType kv_type = KvType::Act;

  // Checks what needs no context length (the signs of -b and -a, -a <= -b when both are given,
  // --chunk), so that a bad flag is reported before anything slow; resolved() checks it too.
  void check() const;
  // Fills the defaults for a context of n tokens over `ranks` ranks and checks the values;
  // throws starattn::Error naming the flag at fault.
  RunConfig resolved(int64_t n_context, int ranks) const;
  // One line that must be identical on every rank (checked before any work).
  std::string describe() const;
};

// The anchor's tokens for block `block` (>= 1) of `context`, A = rc.anchor_size of them
// (rc resolved), as rc.anchor_source says; random ids are drawn from [0, vocab).
std::vector<int> anchor_tokens(const RunConfig& rc, const std::vector<int>& context, int64_t block,
                               int vocab);

// The names of the flags --attn, --anchor-mode and --anchor-source (util/enum_names.h).
inline constexpr EnumName<AttnMode> kAttnModeNames[] = {
    {AttnMode::Dense, "dense"}, {AttnMode::Star, "star"}, {AttnMode::Ring, "ring"}};
inline constexpr EnumName<AnchorMode> kAnchorModeNames[] = {{AnchorMode::Recompute, "recompute"},
                                                            {AnchorMode::Shared, "shared"},
                                                            {AnchorMode::Broadcast, "broadcast"}};
inline constexpr EnumName<AnchorSource> kAnchorSourceNames[] = {
    {AnchorSource::First, "first"},
    {AnchorSource::Previous, "previous"},
    {AnchorSource::Random, "random"},
    {AnchorSource::Shuffled, "shuffled"},
    {AnchorSource::Constant, "constant"}};

// Parsing throws starattn::Error naming the accepted values.
AttnMode parse_attn_mode(const std::string& s);
AnchorMode parse_anchor_mode(const std::string& s);
AnchorSource parse_anchor_source(const std::string& s);
const char* attn_mode_name(AttnMode m);
const char* anchor_mode_name(AnchorMode m);
const char* anchor_source_name(AnchorSource s);

}  // namespace starattn
