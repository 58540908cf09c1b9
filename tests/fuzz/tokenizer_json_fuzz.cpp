// tokenizer.json loading, with an optional tokenizer_config.json: the input is tokenizer.json's
// bytes, then (after a NUL byte, if there is one) tokenizer_config.json's. A tokenizer that loads
// then encodes and decodes a fixed text, so that a vocab which loads but lies (ids pointing past
// the vocab, merges of tokens that do not exist) is caught where it would be used.
#include <cstdint>
#include <filesystem>
#include <string_view>

#include "fuzz_util.h"
#include "starattn/error.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto parts = starattn::fuzz::split_at_nul(data, size);
  const std::string json_path = starattn::fuzz::write_file("tokenizer.json", parts[0]);
  // The loader reads a tokenizer_config.json beside tokenizer.json when there is one.
  const std::string cfg_path = starattn::fuzz::scratch_dir() + "/tokenizer_config.json";
  if (parts.size() > 1) {
    starattn::fuzz::write_file("tokenizer_config.json", parts[1]);
  } else {
    std::error_code ec;
    std::filesystem::remove(cfg_path, ec);
  }
  try {
    const starattn::Tokenizer tok = starattn::Tokenizer::from_hf_json(json_path);
    for (bool special : {true, false}) {
      const std::vector<int> ids = tok.encode(
          " Hello world,\n\n<|eot_id|><s> x\xe2\x96\x81y 12345 \xff\xfe\xf0\x9f\x98", special);
      tok.decode(ids);
    }
    if (tok.bos_id() >= 0) tok.token_text(tok.bos_id());
    if (tok.eos_id() >= 0) tok.token_text(tok.eos_id());
    for (int id : tok.eog_ids()) tok.token_text(id);
  } catch (const starattn::Error&) {
  }
  return 0;
}
