// BPE merge model, as Hugging Face `tokenizers`' BPE. Two ways to start a word:
// - byte-level (GPT-2 family): one symbol per byte. Works on raw bytes throughout: the GPT-2
//   byte->symbol alphabet is undone once at load time, so encoding never converts text to it.
// - char_symbols (SentencePiece style): one symbol per UTF-8 character (a malformed byte is a
//   character of its own); with byte_fallback a character missing from the vocab becomes the
//   <0xNN> tokens of its bytes, else the unk token (or nothing).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace starattn {

class BpeModel {
 public:
  struct Options {
    bool ignore_merges = false;  // look a whole word up in the vocab before merging (Llama-3)
    int unk_id = -1;             // for a byte with no token; -1 drops the byte, as HF does
    bool fuse_unk = false;
    bool char_symbols = false;   // SentencePiece style: UTF-8 characters as symbols, not bytes
    bool byte_fallback = false;  // with char_symbols: <0xNN> tokens for a character not in vocab
  };

  BpeModel() = default;
  // vocab: (token bytes, id) pairs of the model vocab; merges: (left bytes, right bytes) in rank
  // order (rank = index). Throws Error if a merge names a token missing from the vocab.
  BpeModel(const std::vector<std::pair<std::string, int>>& vocab,
           const std::vector<std::pair<std::string, std::string>>& merges, Options opt);

  // Appends the ids of one pre-token word (raw bytes).
  void encode_word(std::string_view word, std::vector<int>& out) const;
  int find(std::string_view bytes) const;  // model-vocab id of exactly these bytes, or -1

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Merge {
    int rank;
    int id;  // id of the merged token
  };
  static uint64_t key(int a, int b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }

  struct Sym {  // a symbol of the word being merged, in a doubly linked list
    int id, prev, next;
  };
  void start_bytes(std::string_view word, std::vector<Sym>& sym) const;
  void start_chars(std::string_view word, std::vector<Sym>& sym) const;

  std::unordered_map<std::string, int, Hash, std::equal_to<>> vocab_;
  std::unordered_map<uint64_t, Merge> merges_;
  // Token of each byte, -1 where the vocab has none: its one-byte token, or <0xNN> (char_symbols).
  std::array<int, 256> byte_id_{};
  Options opt_;
};

}  // namespace starattn
