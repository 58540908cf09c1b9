// One .safetensors file: the 8-byte header length, the JSON header, and every tensor read as
// fp32, both through SafetensorsFile and through a model folder holding it as model.safetensors.
#include <cstdint>
#include <string_view>

#include "fuzz_util.h"
#include "model/safetensors.h"
#include "starattn/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const std::string path = starattn::fuzz::write_file("model.safetensors", bytes);
  try {
    starattn::SafetensorsFile f(path);
    for (const auto& [name, t] : f.tensors()) {
      try {
        const std::vector<float> w = f.read_f32(t);
        if (static_cast<int64_t>(w.size()) != t.n_elements()) __builtin_trap();
      } catch (const starattn::Error&) {
      }
    }
  } catch (const starattn::Error&) {
  }
  try {
    starattn::SafetensorsFolder folder(starattn::fuzz::scratch_dir());
    const starattn::SafetensorsFile* file = nullptr;
    if (folder.find("model.embed_tokens.weight", &file) && !file) __builtin_trap();
  } catch (const starattn::Error&) {
  }
  return 0;
}
