// BPE tokenizer, loaded from GGUF metadata or from a Hugging Face tokenizer.json. Two families:
// - byte-level (GPT-2 style: SmolLM2, Llama-3, Qwen2): GGUF tokenizer.ggml.model "gpt2",
//   tokenizer.json ByteLevel;
// - SentencePiece style (Llama 2, Mistral, Mixtral; spm.h): GGUF model "llama", tokenizer.json BPE
//   with byte_fallback and "▁" (U+2581) for spaces.
// Ids match HF `tokenizers` (tests/fixtures/tokenizer/).
//
// encode: added tokens are cut out of the raw text first (leftmost, then longest match).
// Byte-level: the rest is pre-tokenized by regex and each piece is BPE-merged; bytes that have no
// token of their own are dropped, as HF does (SmolLM2's vocab lacks 21 of the 256 bytes, e.g. 0xFF
// and 0x1D). SentencePiece: each piece between added tokens gets spaces as "▁" and the "▁" dummy
// prefix its scheme asks for, and is BPE-merged whole; characters missing from the vocab become
// <0xNN> byte tokens, so no input byte is lost, invalid UTF-8 included.
//
// Every encode() call is a text of its own, as a call of HF's tokenizer on that string: with a
// SentencePiece tokenizer it starts with the dummy prefix ("▁" before the first word), so
// encoding two halves of a text separately is not the same as encoding the whole.
// All methods are const and safe to call from several threads at once.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/bpe.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/spm.h"

namespace starattn {

class GgufFile;

class Tokenizer {
 public:
  Tokenizer() = default;  // empty vocab: a placeholder until a loader's result is assigned
  // tokenizer.ggml.model "gpt2" (byte-level; tokenizer.ggml.pre picks the pre-tokenizer) or
  // "llama" (SentencePiece: tokens, scores, token types; add_space_prefix, default true).
  static Tokenizer from_gguf(const GgufFile& f);
  // tokenizer_config.json supplies bos/eos, add_bos_token and chat_template; when its path is
  // empty, a tokenizer_config.json beside tokenizer.json is used if there is one.
  static Tokenizer from_hf_json(const std::string& tokenizer_json_path,
                                const std::string& tokenizer_config_json_path = "");

  // HF's encode(text, add_special_tokens=False): never adds BOS/EOS (see add_bos()).
  // parse_special=false reads control/special tokens as plain text (HF's encode_special_tokens);
  // user-defined added tokens are still matched.
  std::vector<int> encode(std::string_view text, bool parse_special = true) const;
  // HF's decode(ids, skip_special_tokens=False), as raw bytes: the token texts joined, less the
  // leading space(s) a SentencePiece decoder strips (the dummy prefix; strip_leading_spaces()).
  // May be invalid UTF-8 where the ids split a character. Where HF turns a run of <0xNN> byte
  // tokens that is not valid UTF-8 into one U+FFFD per byte, this keeps the bytes, so that
  // invalid input round-trips and StreamDecoder can pass on a character as soon as it is whole.
  std::string decode(const std::vector<int>& ids) const;
  // The bytes one token adds to decode(): byte-level tokens decoded, SentencePiece "▁" as a space
  // and <0xNN> as its byte, added tokens as their text.
  const std::string& token_text(int id) const;
  // The token whose text is exactly these bytes (an added token first), or -1. SentencePiece: a
  // space is looked up as "▁", and a single byte with no piece of its own gives its <0xNN> token.
  int token_id(std::string_view text) const;

  int vocab_size() const { return static_cast<int>(tokens_.size()); }
  int bos_id() const { return bos_id_; }  // -1 if none
  int eos_id() const { return eos_id_; }  // -1 if none
  bool add_bos() const { return add_bos_; }
  // Whether HF appends EOS to an encoded text (Llama's add_eos_token). The prompt code never does:
  // a prompt ends where generation starts.
  bool add_eos() const { return add_eos_; }
  bool is_sentencepiece() const { return spm_; }
  // How many leading spaces decode() drops from the joined token texts (HF's Strip decoder after
  // Fuse; 1 for SentencePiece with a dummy prefix, else 0).
  int strip_leading_spaces() const { return strip_left_; }
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
    bool spm = false;  // SentencePiece style: the fields below apply, `pre` does not
    spm::Prefix prefix = spm::Prefix::kNever;
    bool split_at_meta = false;
    int strip_left = 0;
    std::vector<AddedToken> added;
    int bos = -1, eos = -1;
    std::vector<int> extra_eog;
    bool add_bos = false, add_eos = false;
    std::string chat_template;
  };
  static Tokenizer build(Spec&& s);
  // The vocab parts of from_gguf (tokenizer_load.cpp), per tokenizer.ggml.model.
  static void gguf_byte_level_vocab(const GgufFile& f, Spec& s);
  static void gguf_sentencepiece_vocab(const GgufFile& f, Spec& s);

  void split_added(std::string_view text, bool parse_special, std::vector<Piece>& out) const;
  void match_group(std::string_view text, size_t begin, size_t end, bool normalized,
                   bool parse_special, std::vector<Piece>& out) const;

  void split_words(std::string_view text, const Piece& p, std::deque<std::string>& normalized,
                   std::vector<std::string_view>& words) const;

  std::vector<std::string> tokens_;  // [vocab] bytes of each id (token_text)
  BpeModel bpe_;
  PreTokenizer pre_;
  bool spm_ = false;
  spm::Prefix prefix_ = spm::Prefix::kNever;
  bool split_at_meta_ = false;
  int strip_left_ = 0;
  std::vector<AddedToken> added_;                       // longest first
  std::array<std::vector<int>, 256> added_by_first_{};  // first byte -> indices into added_
  int bos_id_ = -1, eos_id_ = -1;
  bool add_bos_ = false, add_eos_ = false;
  std::vector<int> eog_ids_;  // sorted
  std::string chat_template_;
};

// Streaming decode: feed ids one at a time. A push returns the token's token_text(), less the
// leading space(s) decode() strips while nothing but spaces has come out yet (so the first word
// of a SentencePiece stream shows no dummy-prefix space, as HF's decode of the same ids), and
// only complete UTF-8 characters: a trailing partial one, e.g. the first <0xNN> byte tokens of a
// character, is held back until its last byte arrives. Bytes that can never become valid UTF-8
// are passed through, so the concatenation of all pushes and flush() equals decode() of all the
// ids. A stream is one decode(): start a new StreamDecoder for each generated text.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok)
      : tok_(&tok), strip_left_(tok.strip_leading_spaces()) {}
  std::string push(int id);
  std::string flush();  // the held-back bytes (an unfinished sequence at end of stream)

 private:
  const Tokenizer* tok_;
  int strip_left_;  // leading spaces still to drop (0 once a non-space byte has come)
  std::string pending_;
};

}  // namespace starattn
