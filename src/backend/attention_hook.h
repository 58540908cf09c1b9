// The forward pass hands each layer's attention to a hook, so the engine decides which keys a
// token sees (dense causal, Star Attention's [anchor + block], phase 2 across ranks, ring). The
// backend knows nothing about Star Attention.
#pragma once

namespace starattn {

class AttentionHook {
 public:
  virtual ~AttentionHook() = default;
  // Called once per layer, in layer order, for the same n tokens. Pointers are the backend's
  // memory, elements of its act_dtype():
  // q: [n, n_heads, head_dim]; k, v: [n, n_kv_heads, head_dim] (q and k already rotated).
  // Must write out: [n, n_heads, head_dim].
  virtual void attend(int layer, int n, const void* q, const void* k, const void* v, void* out) = 0;
};

}  // namespace starattn
