#include "app/kv_report.h"

#include "engine/engine_memory.h"

namespace starattn::app {

nlohmann::json kv_memory_json(const Backend& b, KvType type, int max_tokens) {
  nlohmann::json j;
  j["kv_type"] = kv_type_name(type);
  j["kv_bytes_per_token"] =
      2 * static_cast<int64_t>(b.config().n_layers) * b.kv_row_format(type).row_bytes();
  for (KvType t : {KvType::Bf16, KvType::Fp8, KvType::F32, KvType::Int8})
    if ((t != KvType::F32 && t != KvType::Int8) || b.act_dtype() == DType::F32)
      j["max_context_tokens"][kv_type_name(t)] = engine_kv_rows_that_fit(b, t, max_tokens);
  return j;
}

}  // namespace starattn::app
