#include "engine/run_config.h"

#include <algorithm>

#include "starattn/error.h"
#include "util/splitmix64.h"

namespace starattn {

void RunConfig::check() const {
  SA_CHECK(chunk >= 0, "--chunk must be at least 1 (or 0 for the device's default), got ", chunk);
  if (attn != AttnMode::Star) return;
  SA_CHECK(block_size >= 1 || block_size == -1, "--block-size must be at least 1, got ",
           block_size);
  SA_CHECK(anchor_size >= -1, "--anchor-size must be >= 0, got ", anchor_size);
  SA_CHECK(block_size == -1 || anchor_size <= block_size, "--anchor-size (", anchor_size,
           ") must not exceed --block-size (", block_size, ")");
}

RunConfig RunConfig::resolved(int64_t n_context, int ranks) const {
  SA_CHECK(ranks >= 1, "no ranks");
  check();
  RunConfig r = *this;
  if (attn != AttnMode::Star) return r;
  if (r.block_size == -1) r.block_size = n_context > 0 ? (n_context + ranks - 1) / ranks : 1;
  if (r.anchor_size < 0) r.anchor_size = r.block_size;
  SA_CHECK(r.anchor_size <= r.block_size, "--anchor-size (", r.anchor_size,
           ") must not exceed --block-size (", r.block_size, ")");
  // A previous-block anchor differs from block to block, so it can be neither computed once per
  // rank nor sent by rank 0.
  SA_CHECK(r.anchor_source != AnchorSource::Previous || r.anchor == AnchorMode::Recompute,
           "--anchor-source previous gives every block its own anchor, so it needs "
           "--anchor-mode recompute (got ",
           anchor_mode_name(r.anchor), ")");
  return r;
}

std::string RunConfig::describe() const {
  return std::string("attn=") + attn_mode_name(attn) + " B=" + std::to_string(block_size) +
         " A=" + std::to_string(anchor_size) + " anchor=" + anchor_mode_name(anchor) +
         " source=" + anchor_source_name(anchor_source) + "/" + std::to_string(anchor_seed) +
         " chunk=" + std::to_string(chunk) + " kv=" + kv_type_name(kv_type);
}

AttnMode parse_attn_mode(const std::string& s) {
  return parse_enum(kAttnModeNames, s, "attention mode");
}

AnchorMode parse_anchor_mode(const std::string& s) {
  return parse_enum(kAnchorModeNames, s, "anchor mode");
}

AnchorSource parse_anchor_source(const std::string& s) {
  return parse_enum(kAnchorSourceNames, s, "anchor source");
}

const char* attn_mode_name(AttnMode m) {
  return enum_name(kAttnModeNames, m);
}

const char* anchor_mode_name(AnchorMode m) {
  return enum_name(kAnchorModeNames, m);
}

const char* anchor_source_name(AnchorSource s) {
  return enum_name(kAnchorSourceNames, s);
}

std::vector<int> anchor_tokens(const RunConfig& rc, const std::vector<int>& context, int64_t block,
                               int vocab) {
  const int64_t A = rc.anchor_size, n = static_cast<int64_t>(context.size());
  SA_CHECK(A >= 0 && A <= n && block >= 1, "anchor_tokens: no anchor for block ", block);
  const auto first = context.begin();
  // A seeded stream that is the same on every rank and every platform.
  SplitMix64 rng{rc.anchor_seed * kSplitMix64Gamma + 0x632BE59BD9B4E019ull};
  auto next = [&rng] { return rng.next(); };
  switch (rc.anchor_source) {
    case AnchorSource::First:
      return {first, first + A};
    case AnchorSource::Previous: {
      const int64_t end = std::min(block * rc.block_size, n);  // the previous block's end
      return {first + (end - A), first + end};
    }
    case AnchorSource::Random: {
      SA_CHECK(vocab > 0, "anchor_tokens: no vocabulary to draw from");
      std::vector<int> out(A);
      for (int& x : out) x = static_cast<int>(next() % static_cast<uint64_t>(vocab));
      return out;
    }
    case AnchorSource::Shuffled: {
      std::vector<int> out(first, first + A);
      for (int64_t i = A - 1; i > 0; --i)
        std::swap(out[i], out[next() % static_cast<uint64_t>(i + 1)]);
      return out;
    }
    case AnchorSource::Constant:
      return std::vector<int>(A, n > 0 ? context[0] : 0);
  }
  return {};
}

}  // namespace starattn
