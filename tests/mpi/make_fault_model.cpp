// Writes the model that the start-up fault tests run (tests/mpi/startup_fault_test.sh): a llama
// GGUF with one tiny layer and a vocabulary that holds tests/fixtures/tokenizer/
// llama3_tokenizer.json, so that loading takes milliseconds and each case times only the failure.
// The weights are arbitrary: the tests look at how ranks fail, never at the text.
//   make_fault_model OUT.gguf
#include <cmath>
#include <cstdio>

#include "model_files.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_fault_model OUT.gguf\n");
    return 2;
  }
  using starattn::testfiles::GgufBuilder;
  constexpr int64_t d = 16, ffn = 32, vocab = 3072;  // the tokenizer has 3005 tokens
  GgufBuilder b;
  b.set_string("general.architecture", "llama");
  b.set_u32("llama.block_count", 1);
  b.set_u32("llama.embedding_length", d);
  b.set_u32("llama.attention.head_count", 2);
  b.set_u32("llama.attention.head_count_kv", 2);
  b.set_u32("llama.feed_forward_length", ffn);
  b.set_u32("llama.context_length", 256);
  b.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  // dims in ggml order: row length first, so a [out, in] matrix is {in, out}.
  auto add = [&](const std::string& name, std::vector<int64_t> dims) {
    int64_t n = 1;
    for (int64_t x : dims) n *= x;
    std::vector<float> v(static_cast<size_t>(n));
    for (size_t i = 0; i < v.size(); ++i) v[i] = 0.1f * std::sin(0.37f * static_cast<float>(i));
    b.add_tensor({name, std::move(dims), std::move(v)});
  };
  add("token_embd.weight", {d, vocab});
  add("output_norm.weight", {d});
  for (const char* w : {"attn_q", "attn_k", "attn_v", "attn_output"})
    add(std::string("blk.0.") + w + ".weight", {d, d});
  add("blk.0.attn_norm.weight", {d});
  add("blk.0.ffn_norm.weight", {d});
  add("blk.0.ffn_gate.weight", {d, ffn});
  add("blk.0.ffn_up.weight", {d, ffn});
  add("blk.0.ffn_down.weight", {ffn, d});
  b.write(argv[1]);
  return 0;
}
