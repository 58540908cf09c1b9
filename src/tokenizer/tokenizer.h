// Byte-level BPE tokenizer (GPT-2 family: SmolLM2, Llama-3, Qwen2), loaded from GGUF metadata or
// from a Hugging Face tokenizer.json. Ids match HF `tokenizers` (tests/fixtures/tokenizer/).
//
// encode: added tokens are cut out of the raw text first (leftmost, then longest match), the rest
// is pre-tokenized by regex and each piece is BPE-merged. Bytes that have no token of their own
// are dropped, as HF does (SmolLM2's vocab lacks 21 of the 256 bytes, e.g. 0xFF and 0x1D).
// All methods are const and safe to call from several threads at once.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/bpe.h"
#include "tokenizer/pretokenizer.h"

namespace starattn {

class GgufFile;

class Tokenizer {
 public:
  Tokenizer() = default;  // empty vocab: a placeholder until a loader's result is assigned
  // Requires tokenizer.ggml.model == "gpt2"; tokenizer.ggml.pre picks the pre-tokenizer.
  static Tokenizer from_gguf(const GgufFile& f);
  // tokenizer_config.json supplies bos/eos, add_bos_token and chat_template; when its path is
  // empty, a tokenizer_config.json beside tokenizer.json is used if there is one.
  static Tokenizer from_hf_json(const std::string& tokenizer_json_path,
                                const std::string& tokenizer_config_json_path = "");

  // Never adds BOS (see add_bos()). parse_special=false reads control/special tokens as plain
  // text (HF's encode_special_tokens); user-defined added tokens are still matched.
  std::vector<int> encode(std::string_view text, bool parse_special = true) const;
  // Raw bytes; may be invalid UTF-8 when the ids split a character.
  std::string decode(const std::vector<int>& ids) const;
  const std::string& token_text(int id) const;  // bytes of one token
  int token_id(std::string_view text) const;    // exact token of these bytes, or -1

  int vocab_size() const { return static_cast<int>(tokens_.size()); }
  int bos_id() const { return bos_id_; }  // -1 if none
  int eos_id() const { return eos_id_; }  // -1 if none
  bool add_bos() const { return add_bos_; }
  bool is_eog(int id) const;
  const std::vector<int>& eog_ids() const { return eog_ids_; }
  const std::string& chat_template() const { return chat_template_; }  // "" if none

 private:
  struct AddedToken {
    std::string text;
    int id;
    bool special;     // CONTROL in GGUF; skipped when parse_special is false
    bool normalized;  // HF matches non-normalized added tokens in a first pass
    bool lstrip, rstrip;
  };
  struct Piece {  // a span of the input: an added token (id >= 0) or plain text (id < 0)
    size_t begin, end;
    int id;
  };
  // What a loader hands to build(): token bytes for every id and everything else by value.
  struct Spec {
    std::vector<std::string> tokens;
    std::vector<std::pair<std::string, int>> bpe_vocab;
    std::vector<std::pair<std::string, std::string>> merges;
    BpeModel::Options bpe;
    PreTokenizer pre;
    std::vector<AddedToken> added;
    int bos = -1, eos = -1;
    std::vector<int> extra_eog;
    bool add_bos = false;
    std::string chat_template;
  };
  static Tokenizer build(Spec&& s);

  void split_added(std::string_view text, bool parse_special, std::vector<Piece>& out) const;
  void match_group(std::string_view text, size_t begin, size_t end, bool normalized,
                   bool parse_special, std::vector<Piece>& out) const;

  std::vector<std::string> tokens_;  // [vocab] bytes of each id
  BpeModel bpe_;
  PreTokenizer pre_;
  std::vector<AddedToken> added_;                       // longest first
  std::array<std::vector<int>, 256> added_by_first_{};  // first byte -> indices into added_
  int bos_id_ = -1, eos_id_ = -1;
  bool add_bos_ = false;
  std::vector<int> eog_ids_;  // sorted
  std::string chat_template_;
};

// Streaming decode: feed ids one at a time; each push returns only complete UTF-8 characters and
// holds back a trailing partial one. Bytes that can never become valid UTF-8 are passed through,
// so the concatenation of all pushes and flush() equals decode() of all the ids.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok) : tok_(&tok) {}
  std::string push(int id);
  std::string flush();  // the held-back bytes (an unfinished sequence at end of stream)

 private:
  const Tokenizer* tok_;
  std::string pending_;
};

}  // namespace starattn
