// Pre-tokenization: splits plain text (no added tokens) into the words BPE runs on.
// A pre-tokenizer is a sequence of regex steps with Hugging Face's "Isolated" behaviour: each match
// and each gap between matches becomes a piece, and each later step sees only one piece at a time
// (so look-aheads stop at piece ends, exactly as in HF's pre_tokenizers.Sequence).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace starattn {

class PreTokenizer {
 public:
  // Regexes as HF tokenizer.json writes them (Oniguruma syntax). They are translated so that
  // \s, \p{L}, \p{N} mean what they mean to HF (see pretokenizer.cpp) and compiled with PCRE2.
  explicit PreTokenizer(const std::vector<std::string>& patterns);
  PreTokenizer() = default;  // no steps: the whole text is one piece

  // Named presets: GGUF tokenizer.ggml.pre values. Throws Error naming an unknown one.
  static PreTokenizer from_gguf_name(const std::string& name);

  static const std::string& gpt2_pattern();    // ByteLevel(use_regex=true)
  static const std::string& llama3_pattern();  // Llama-3 Split regex
  static const std::string& qwen2_pattern();

  // Appends the pieces of `text` to `out`; the pieces cover `text` exactly, in order.
  void split(std::string_view text, std::vector<std::string_view>& out) const;

 private:
  struct Step;
  std::vector<std::shared_ptr<const Step>> steps_;  // compiled code is immutable: shared by copies
};

}  // namespace starattn
