// How the context is cut and spread over ranks. Pure functions of (length, sizes, ranks), so every
// rank computes the same layout without talking.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/run_config.h"

namespace starattn {

struct Span {
  int64_t begin = 0, end = 0;  // token positions [begin, end)
  int64_t size() const { return end - begin; }
};

// Star blocks of `block` tokens; the last one may be shorter. Empty for n = 0.
std::vector<Span> star_blocks(int64_t n, int64_t block);
// The contiguous group of block indices [first, last) owned by `rank`: blocks are dealt out as
// evenly as possible, earlier ranks taking the extra ones. May be empty.
Span blocks_of_rank(int64_t n_blocks, int ranks, int rank);
// Ring: the context in 2*ranks near-equal chunks; rank r owns chunks r and 2*ranks-1-r (zigzag),
// so every rank gets the same share of the causal work. Returns the rank's two spans.
std::vector<Span> zigzag_spans(int64_t n, int ranks, int rank);

// Rows of context KV that `rank` holds after phase 1 of an n-token context (rc resolved for n and
// ranks): dense keeps it all on rank 0, ring its two zigzag spans, star its blocks.
int64_t context_rows_of_rank(const RunConfig& rc, int64_t n, int ranks, int rank);

}  // namespace starattn
