// model.safetensors.index.json beside two real shards (the tiny llama_gqa fixture): the index's
// JSON, its weight_map, shard names that try to leave the folder, and tensors placed in the wrong
// shard. Every tensor the folder then reports is read.
#include <cstdint>
#include <filesystem>
#include <string_view>

#include "fuzz_util.h"
#include "model/safetensors.h"
#include "starattn/error.h"

namespace fs = std::filesystem;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  for (const char* shard : {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"})
    fs::create_symlink(
        starattn::fuzz::source_path(std::string("tests/fixtures/tiny/llama_gqa/") + shard),
        fs::path(starattn::fuzz::scratch_dir()) / shard);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  starattn::fuzz::write_file("model.safetensors.index.json",
                             std::string_view(reinterpret_cast<const char*>(data), size));
  try {
    starattn::SafetensorsFolder folder(starattn::fuzz::scratch_dir());
    for (const char* name : {"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight",
                             "model.layers.1.self_attn.q_proj.weight"}) {
      const starattn::SafetensorsFile* file = nullptr;
      const starattn::SafetensorsTensor* t = folder.find(name, &file);
      if (t) folder.read_f32(name, t->shape);
    }
  } catch (const starattn::Error&) {
  }
  return 0;
}
