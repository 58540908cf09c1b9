// ModelConfig: everything the forward pass needs to know about a model, read from a GGUF file's
// metadata or a Hugging Face config.json. Both readers fill this one struct.
#pragma once

#include <cstdint>
#include <string>

namespace starattn {

// RoPE frequency scaling. Only "llama3" (Llama 3.1/3.2) is supported besides none.
struct RopeScaling {
  bool llama3 = false;
  float factor = 1.0f;             // scale of low frequencies
  float low_freq_factor = 1.0f;    // wavelengths above original_max / low_freq_factor are scaled
  float high_freq_factor = 1.0f;   // wavelengths below original_max / high_freq_factor are kept
  int original_max_positions = 0;  // context length the model was trained with before scaling
};

struct ModelConfig {
  std::string arch;       // "llama", "mistral", "qwen2" (SmolLM2 is "llama")
  int n_layers = 0;       // transformer blocks
  int d_model = 0;        // hidden size
  int n_heads = 0;        // query heads
  int n_kv_heads = 0;     // key/value heads (GQA: n_heads % n_kv_heads == 0)
  int head_dim = 0;       // per head; usually d_model / n_heads
  int d_ffn = 0;          // SwiGLU inner size
  int vocab_size = 0;     // rows of the embedding table
  int max_positions = 0;  // trained context length, in tokens
  float rms_eps = 1e-5f;  // RMSNorm epsilon
  float rope_theta = 10000.0f;
  RopeScaling rope_scaling;
  bool qkv_bias = false;         // Qwen2 has biases on q, k, v projections
  bool tied_embeddings = false;  // output projection shares the token embedding table

  int q_dim() const { return n_heads * head_dim; }
  int kv_dim() const { return n_kv_heads * head_dim; }
  // Checks the fields are consistent; throws starattn::Error naming the first bad one.
  void validate() const;
};

// The Llama-3.1-8B shape: 32 layers, d 4096, 32 q / 8 kv heads of 128, FFN 14336, vocab 128256,
// RoPE theta 500000 with llama3 scaling (8, 1, 4, 8192), untied output; the shape of the random
// model of speed runs (random:llama-3.1-8b), whose weights were never trained to a length, so it
// takes 2^21 positions (a 1M-token context plus queries) instead of the Hub's 131072.
ModelConfig llama31_8b_config();

}  // namespace starattn
