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

int64_t context_rows_of_rank(const RunConfig& rc, int64_t n, int ranks, int rank) {
  switch (rc.attn) {
    case AttnMode::Dense:
      return rank == 0 ? n : 0;
    case AttnMode::Ring: {
      const std::vector<Span> s = zigzag_spans(n, ranks, rank);
      return s[0].size() + s[1].size();
    }
    case AttnMode::Star: {
      const std::vector<Span> blocks = star_blocks(n, rc.block_size);
      const Span mine = blocks_of_rank(static_cast<int64_t>(blocks.size()), ranks, rank);
      int64_t rows = 0;
      for (int64_t b = mine.begin; b < mine.end; ++b) rows += blocks[b].size();
      return rows;
    }
  }
  return 0;
}

}  // namespace starattn
