#include "engine/run_config.h"

#include "starattn/error.h"

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
  return r;
}

std::string RunConfig::describe() const {
  return std::string("attn=") + attn_mode_name(attn) + " B=" + std::to_string(block_size) +
         " A=" + std::to_string(anchor_size) + " anchor=" + anchor_mode_name(anchor) +
         " chunk=" + std::to_string(chunk);
}

AttnMode parse_attn_mode(const std::string& s) {
  if (s == "dense") return AttnMode::Dense;
  if (s == "star") return AttnMode::Star;
  if (s == "ring") return AttnMode::Ring;
  fail("unknown attention mode '", s, "' (expected dense, star or ring)");
}

AnchorMode parse_anchor_mode(const std::string& s) {
  if (s == "recompute") return AnchorMode::Recompute;
  if (s == "shared") return AnchorMode::Shared;
  if (s == "broadcast") return AnchorMode::Broadcast;
  fail("unknown anchor mode '", s, "' (expected recompute, shared or broadcast)");
}

const char* attn_mode_name(AttnMode m) {
  switch (m) {
    case AttnMode::Dense:
      return "dense";
    case AttnMode::Star:
      return "star";
    case AttnMode::Ring:
      return "ring";
  }
  return "?";
}

const char* anchor_mode_name(AnchorMode m) {
  switch (m) {
    case AnchorMode::Recompute:
      return "recompute";
    case AnchorMode::Shared:
      return "shared";
    case AnchorMode::Broadcast:
      return "broadcast";
  }
  return "?";
}

}  // namespace starattn
