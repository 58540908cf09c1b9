// SentencePiece-style text handling (Llama 2, Mistral, Mixtral): spaces become U+2581 "▁", a "▁"
// dummy prefix starts the text, and characters missing from the vocab fall back to <0xNN> byte
// tokens. The BPE merging itself is BpeModel's (bpe.h, Options::char_symbols and byte_fallback);
// this file holds what differs around it.
//
// Why not libsentencepiece: it runs SentencePiece's own algorithm from a .model file, and neither
// load path has one. A tokenizer.json must match Hugging Face `tokenizers`, whose BPE applies the
// file's merge list by rank, cuts added tokens out first and adds the prefix per its normalizer or
// Metaspace scheme ("always", "first", ...); SentencePiece has none of those rules. A GGUF has
// piece scores and no merges: llama.cpp merges the pair whose result scores highest. Here the
// merges are ranked by that score exactly as transformers ranks them when it converts a .model
// (and when it loads a GGUF); on a SentencePiece-trained vocab that is llama.cpp's order too (they
// could differ only in how ties between two splits of one piece are broken), so one merge loop, the
// one HF's BPE runs, serves both paths, and the GGUF path gives HF's ids for the tokenizer.json
// made from the same model.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace starattn::spm {

inline constexpr std::string_view kMeta = "\xE2\x96\x81";  // U+2581, SentencePiece's space

// Where the "▁" dummy prefix goes, per text piece (the text between two added tokens):
// - kAlways: every piece, even one that starts with a space: HF's Prepend("▁") normalizer (Llama 2,
//   Mistral v0.1) and llama.cpp's add_space_prefix;
// - kUnlessSpace: every piece not already starting with "▁" or " ": Metaspace "always";
// - kFirstUnlessSpace: only a piece at the start of the input, likewise: Metaspace "first"
//   (Mistral v0.3).
enum class Prefix { kNever, kAlways, kUnlessSpace, kFirstUnlessSpace };

// Appends `piece` with spaces as "▁" and the dummy prefix `prefix` asks for; at_input_start says
// whether the piece starts at byte 0 of the encoded text.
void normalize(std::string_view piece, bool at_input_start, Prefix prefix, std::string& out);

// Metaspace split=true: cuts before every "▁" (each "▁" starts a word). Pieces cover `text`.
void split_at_meta(std::string_view text, std::vector<std::string_view>& out);

// The byte a "<0xNN>" token stands for (HF's ByteFallback decoder test: six bytes, two hex
// digits), or -1.
int byte_of_token(std::string_view token);

// A piece's text as decoded output shows it: every "▁" replaced by a space.
std::string meta_to_spaces(std::string_view piece);

// BPE merges implied by piece scores, best first: for every piece, each split into two pieces that
// are both in the vocab is a merge, ranked by the piece's score (higher first), then by the code
// point lengths of the left and right part (longer first), then by piece id and the ids of the
// parts. This is transformers' generate_merges(vocab, vocab_scores), which wrote the merges of the
// Llama-2 tokenizer.json and which its GGUF loader uses. in_vocab[i] says whether piece i takes
// part (unused padding tokens do not); a piece listed twice counts once, at its first id. Scores
// must be finite (the loader checks).
std::vector<std::pair<std::string, std::string>> merges_from_scores(
    const std::vector<std::string>& pieces, const std::vector<float>& scores,
    const std::vector<char>& in_vocab);

}  // namespace starattn::spm
