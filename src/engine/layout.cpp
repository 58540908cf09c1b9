#include "engine/layout.h"

#include <algorithm>

#include "starattn/error.h"

namespace starattn {

std::vector<Span> star_blocks(int64_t n, int64_t block) {
  SA_CHECK(block >= 1, "block size must be at least 1, got ", block);
  std::vector<Span> out;
  for (int64_t b = 0; b < n; b += block) out.push_back({b, std::min(n, b + block)});
  return out;
}

Span blocks_of_rank(int64_t n_blocks, int ranks, int rank) {
  const int64_t base = n_blocks / ranks, extra = n_blocks % ranks;
  const int64_t first = rank * base + std::min<int64_t>(rank, extra);
  return {first, first + base + (rank < extra ? 1 : 0)};
}

std::vector<Span> zigzag_spans(int64_t n, int ranks, int rank) {
  const int64_t chunks = 2 * static_cast<int64_t>(ranks);
  auto chunk = [&](int64_t i) { return Span{i * n / chunks, (i + 1) * n / chunks}; };
  return {chunk(rank), chunk(chunks - 1 - rank)};
}

}  // namespace starattn
