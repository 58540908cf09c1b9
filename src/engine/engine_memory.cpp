#include "engine/engine_memory.h"

namespace starattn {

size_t hook_scratch_bytes(const ModelConfig& c, DType act, int64_t rows) {
  const size_t n = rows > 0 ? static_cast<size_t>(rows) : 0, a = dtype_bytes(act);
  const size_t out = n * c.q_dim() * a;              // a partial attention output
  const size_t lse = n * c.n_heads * sizeof(float);  // a log-sum-exp
  const size_t kv_rows = n * c.kv_dim() * a;         // K or V rows of a shard
  // Block hook: lse, out2, lse2. Ring: partial out and lse, lse, two shards [K | V].
  return (out + 2 * lse) + (out + 2 * lse + 2 * 2 * kv_rows);
}

void plan_engine_memory(Backend& b, int64_t kv_rows, int max_tokens, KvType kv_type) {
  b.plan_memory(kv_rows, max_tokens, kv_type,
                hook_scratch_bytes(b.config(), b.act_dtype(), max_tokens));
}

int64_t engine_kv_rows_that_fit(const Backend& b, KvType kv_type, int max_tokens) {
  return b.kv_rows_that_fit(kv_type, max_tokens,
                            hook_scratch_bytes(b.config(), b.act_dtype(), max_tokens));
}

}  // namespace starattn
