// GGUF reader: header, metadata, tensor table, every tensor dequantised, and the tokenizer built
// from the metadata (a model file's vocab is as untrusted as the rest of it).
#include <cstdint>
#include <string_view>

#include "fuzz_util.h"
#include "model/gguf.h"
#include "starattn/error.h"
#include "tokenizer/tokenizer.h"

namespace {

using starattn::GgufFile;
using starattn::GgufValue;

// Reads a value through every getter that applies to it, as loaders do.
void touch(const GgufFile& f, const std::string& key, const GgufValue& v) {
  try {
    if (v.is_integer()) {
      f.get_int(key);
      f.get_int_in(key, -1, 1 << 20);
    }
    if (v.type == GgufValue::Type::STRING) f.get_string(key);
    if (v.type == GgufValue::Type::ARRAY) {
      f.get_string_array(key);
    }
  } catch (const starattn::Error&) {
  }
  try {
    if (v.type == GgufValue::Type::ARRAY) f.get_int_array(key);
  } catch (const starattn::Error&) {
  }
  try {
    if (v.type == GgufValue::Type::ARRAY) f.get_float_array(key);
    f.get_float(key);
  } catch (const starattn::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = starattn::fuzz::write_file(
      "model.gguf", std::string_view(reinterpret_cast<const char*>(data), size));
  try {
    GgufFile f(path);
    for (const auto& [key, v] : f.metadata()) touch(f, key, v);
    for (const auto& t : f.tensors()) {
      try {
        const std::vector<float> w = f.read_f32(t);
        if (static_cast<int64_t>(w.size()) != t.n_elements()) __builtin_trap();
      } catch (const starattn::Error&) {
      }
    }
    const starattn::Tokenizer tok = starattn::Tokenizer::from_gguf(f);
    const std::vector<int> ids = tok.encode("Hello world, <|eot_id|> 123 \xe2\x96\x81x\xff");
    tok.decode(ids);
  } catch (const starattn::Error&) {
  }
  return 0;
}
