// The forward pass hands each layer's attention to a hook, so the engine decides which keys a
// token sees (dense causal, Star Attention's [anchor + block], phase 2 across ranks, ring). The
// backend knows nothing about Star Attention.
#pragma once

#include <cstdint>

namespace starattn {

class AttentionHook {
 public:
  virtual ~AttentionHook() = default;
  // Called once per layer, in layer order, for the same n tokens. Pointers are the backend's
  // memory, elements of its act_dtype():
  // q: [n, n_heads, head_dim]; k, v: [n, n_kv_heads, head_dim] (q and k already rotated).
  // Must write out: [n, n_heads, head_dim].
  virtual void attend(int layer, int n, const void* q, const void* k, const void* v, void* out) = 0;

  // Not 0 when the next forward is one token and attend() queues the same backend work on the same
  // memory as at every other call with this key: whatever changes from token to token (KV rows,
  // key counts) is read from backend memory when the work runs. A backend may then record the
  // whole one-token forward once (a CUDA graph) and replay it; attend() is not called on replay.
  // Keys are never reused for different work.
  virtual uint64_t replay_key() const { return 0; }
};

}  // namespace starattn
