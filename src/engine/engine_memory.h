// What the engine holds in a backend's memory besides the weights, so that a backend can plan for
// it before any of it is taken (Backend::plan_memory): the KV caches, which the caller counts in
// rows, and the scratch of the engine's attention hooks, counted here next to the hooks.
#pragma once

#include <cstddef>
#include <cstdint>

#include "attention/kv_format.h"
#include "backend/backend.h"
#include "model/config.h"

namespace starattn {

// The most backend memory the engine's attention hooks hold at once for forward calls of up to
// `rows` tokens, in act-dtype tensors and fp32 log-sum-exps, counted generously: the block hook's
// merge with a prefix (a partial out and two lse), the ring's (a partial out, two lse and two
// shards of K and V rows in flight), which also covers phase 2's packed partials and allgather
// for its few rows.
size_t hook_scratch_bytes(const ModelConfig& c, DType act, int64_t rows);

// Backend::plan_memory for an engine run: kv_rows rows of KV of kv_type in all (context, anchor,
// query), forward calls of at most max_tokens tokens, and the hooks' scratch for them.
void plan_engine_memory(Backend& b, int64_t kv_rows, int max_tokens, KvType kv_type);
// Backend::kv_rows_that_fit next to the hooks' scratch for max_tokens-token calls.
int64_t engine_kv_rows_that_fit(const Backend& b, KvType kv_type, int max_tokens);

}  // namespace starattn
