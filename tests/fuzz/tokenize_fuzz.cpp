// encode and decode on arbitrary bytes, with the four tokenizers of tests/fixtures/tokenizer/
// (byte-level and SentencePiece, each from tokenizer.json and from GGUF). The first input byte
// picks the tokenizer (bits 0-1), parse_special (bit 2) and whether the rest is text to encode or
// little-endian int32 ids to decode (bit 3). Checked beyond "no crash": encode gives ids inside
// the vocab, and a StreamDecoder fed the ids one at a time gives exactly decode()'s bytes.
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

#include "fuzz_util.h"
#include "model/gguf.h"
#include "starattn/error.h"
#include "tokenizer/tokenizer.h"

namespace {

std::vector<std::unique_ptr<starattn::Tokenizer>> g_tokenizers;

void check_stream(const starattn::Tokenizer& tok, const std::vector<int>& ids) {
  const std::string whole = tok.decode(ids);
  starattn::StreamDecoder stream(tok);
  std::string pieces;
  for (int id : ids) pieces += stream.push(id);
  pieces += stream.flush();
  if (pieces != whole) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  using starattn::fuzz::source_path;
  const std::string dir = "tests/fixtures/tokenizer/";
  for (const char* name : {"llama3", "sp"}) {
    const std::string base = dir + name + "_tokenizer";
    g_tokenizers.push_back(std::make_unique<starattn::Tokenizer>(starattn::Tokenizer::from_hf_json(
        source_path(base + ".json"), source_path(base + "_config.json"))));
    const starattn::GgufFile f(source_path(base + ".gguf"));
    g_tokenizers.push_back(
        std::make_unique<starattn::Tokenizer>(starattn::Tokenizer::from_gguf(f)));
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const starattn::Tokenizer& tok = *g_tokenizers[data[0] & 3];
  const bool parse_special = data[0] & 4;
  const bool decode_ids = data[0] & 8;
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  if (decode_ids) {
    std::vector<int> ids(rest.size() / 4);
    if (!ids.empty()) std::memcpy(ids.data(), rest.data(), ids.size() * 4);
    // Mostly ids inside the vocab, so that decoding gets exercised rather than refused; a high
    // bit keeps the raw value, which must be refused with an Error when it is outside.
    for (int& id : ids) {
      if (!(id & 0x40000000)) id = static_cast<int>(static_cast<unsigned>(id) % tok.vocab_size());
    }
    try {
      check_stream(tok, ids);
    } catch (const starattn::Error&) {
    }
    return 0;
  }
  const std::vector<int> ids = tok.encode(rest, parse_special);
  for (int id : ids) {
    if (id < 0 || id >= tok.vocab_size()) __builtin_trap();
  }
  check_stream(tok, ids);
  return 0;
}
