// The --kv-type option shared by generate, bench, eval and serve, and what each KV type costs on
// the device (for --json): bytes per token and the longest context whose KV fits.
#pragma once

#include <nlohmann/json.hpp>

#include "backend/backend.h"

namespace starattn::app {

inline constexpr const char* kKvTypeHelp =
    "KV cache type: bf16 (the default; the CPU rounds its fp32 keys and values to bf16 as it "
    "stores them), fp8 (FP8 E4M3 with a scale per token and kv head: half the memory of bf16, "
    "read directly by the attention kernels), int8 (CPU only: 8-bit integers with a scale per "
    "token and kv head, the fp8 cache's size and closer to bf16's accuracy) or f32 (CPU only: "
    "the exact fp32 reference)";

// {"kv_type": "fp8", "kv_bytes_per_token": 67584,
//  "max_context_tokens": {"bf16": 889000, "fp8": 1758000}}  (and "f32" and "int8" on the CPU)
// kv_bytes_per_token: K and V of one token in every layer. max_context_tokens: the most tokens
// whose KV fits on this device (this rank) next to forward calls of max_tokens tokens, as the
// memory plan counts it (a CPU: host memory available); a star anchor's rows and the query's
// come out of it.
nlohmann::json kv_memory_json(const Backend& b, KvType type, int max_tokens);

}  // namespace starattn::app
