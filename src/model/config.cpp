#include "model/config.h"

#include <cstdint>
#include <limits>

#include "starattn/error.h"

namespace starattn {

void ModelConfig::validate() const {
  SA_CHECK(n_layers > 0, "model config: n_layers must be positive, got ", n_layers);
  SA_CHECK(d_model > 0, "model config: hidden size must be positive, got ", d_model);
  SA_CHECK(n_heads > 0 && n_kv_heads > 0, "model config: head counts must be positive, got ",
           n_heads, " query / ", n_kv_heads, " kv");
  SA_CHECK(n_heads % n_kv_heads == 0, "model config: ", n_heads,
           " query heads are not a multiple of ", n_kv_heads, " kv heads");
  SA_CHECK(head_dim > 0 && head_dim % 2 == 0,
           "model config: head_dim must be even and positive, got ", head_dim);
  SA_CHECK(int64_t{n_heads} * head_dim <= std::numeric_limits<int>::max(),
           "model config: ", n_heads, " query heads of ", head_dim,
           " dimensions are too many to index with int");
  SA_CHECK(d_ffn > 0, "model config: FFN size must be positive, got ", d_ffn);
  SA_CHECK(vocab_size > 0, "model config: vocab size must be positive, got ", vocab_size);
  SA_CHECK(rope_theta > 0, "model config: rope theta must be positive");
  SA_CHECK(rms_eps > 0, "model config: RMSNorm epsilon must be positive");
}

ModelConfig llama31_8b_config() {
  ModelConfig c;
  c.arch = "llama";
  c.n_layers = 32;
  c.d_model = 4096;
  c.n_heads = 32;
  c.n_kv_heads = 8;
  c.head_dim = 128;
  c.d_ffn = 14336;
  c.vocab_size = 128256;
  c.max_positions = 1 << 21;
  c.rms_eps = 1e-5f;
  c.rope_theta = 500000.0f;
  c.rope_scaling.llama3 = true;
  c.rope_scaling.factor = 8.0f;
  c.rope_scaling.low_freq_factor = 1.0f;
  c.rope_scaling.high_freq_factor = 4.0f;
  c.rope_scaling.original_max_positions = 8192;
  c.qkv_bias = false;
  c.tied_embeddings = false;
  return c;
}

}  // namespace starattn
