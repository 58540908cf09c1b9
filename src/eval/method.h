// How `starattn eval` names and sizes the attention method of a run. Block and anchor sizes are
// given relative to the target length so that one command covers several lengths the way the
// paper does (B = L/4, A = B or a fraction of it), and the table columns keep one name across
// lengths.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/run_config.h"

namespace starattn::eval {

struct MethodSpec {
  std::string attn = "star";  // dense, star, ring
  std::string block = "L/4";  // "L/k", "auto" (context / ranks) or a token count
  std::string anchor = "B";   // "B", "B/k" or a token count (0 = no anchor)
  std::string anchor_mode = "shared";
  std::string anchor_source = "first";  // first, previous, random, shuffled, constant
  uint64_t anchor_seed = 0;             // for random and shuffled
  int chunk = 0;                        // 0 = the backend's choice
  std::string kv_type = "bf16";         // bf16, fp8 or f32 (--kv-type)

  // Throws Error naming the flag (-b, -a) whose text is not one of the forms above.
  void check() const;
  // The run configuration at target length L, before RunConfig::resolved.
  RunConfig at_length(int64_t length) const;
  // The column name: "dense", "ring (2 ranks)", "star B=L/4 A=B/4", "star B=L/4 A=0 (none)",
  // "star B=L/4 A=B anchor=previous", and " kv=fp8" after any of them with an fp8 KV cache.
  std::string label(int ranks) const;
};

// "2048,4096" -> {2048, 4096}; each at least 256.
std::vector<int64_t> parse_lengths(const std::string& csv);

}  // namespace starattn::eval
