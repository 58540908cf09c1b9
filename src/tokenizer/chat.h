// Chat prompts from the model's own chat template (tokenizer.chat_template in a GGUF,
// chat_template in tokenizer_config.json), run by the Jinja interpreter in tokenizer/jinja/
// with the variables transformers' apply_chat_template gives it, so the prompt is byte for byte
// what transformers renders (tests/chat_test.cpp and tests/jinja_test.cpp compare with it).
// A built-in template (chatml, llama2, llama3, mistral) or a Jinja file can replace the model's
// (--chat-template NAME|FILE).
#pragma once

#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace starattn {

class Tokenizer;
namespace jinja {
class Template;
}

struct ChatMessage {
  std::string role, content;
};

class ChatTemplate {
 public:
  // source: the template text; bos/eos: the tokenizer's special token texts ("" for none, which
  // leaves bos_token / eos_token undefined, as transformers does). Throws Error naming the
  // construct and its position for a template outside the supported Jinja subset.
  static ChatTemplate parse(const std::string& source, std::string bos_token,
                            std::string eos_token);
  // The model's template, or override_name_or_file: a built-in NAME or a FILE holding a Jinja
  // template. Throws Error when the model has none and no override is given.
  static ChatTemplate for_tokenizer(const Tokenizer& tok,
                                    const std::string& override_name_or_file = "");
  static ChatTemplate builtin(const std::string& name, std::string bos_token,
                              std::string eos_token);
  static const std::vector<std::string>& builtin_names();
  static const std::string& builtin_source(const std::string& name);  // throws for unknown

  // add_generation_prompt appends the assistant header. Throws Error for an empty conversation,
  // and, with the template's own message, when the template refuses the conversation
  // (raise_exception, e.g. roles that do not alternate). Safe to call from several threads on
  // one ChatTemplate (copies share the parsed template).
  std::string render(const std::vector<ChatMessage>& msgs, bool add_generation_prompt) const;
  // True when rendered prompts begin with the BOS text (the template writes bos_token itself),
  // so callers must not add a BOS token of their own.
  bool starts_with_bos() const { return starts_with_bos_; }
  const std::string& source() const { return source_; }

  // The local time strftime_now() sees (tests fix it); the system clock by default.
  void set_clock(std::function<std::tm()> now) { now_ = std::move(now); }

 private:
  std::shared_ptr<const jinja::Template> tmpl_;
  std::string source_, bos_, eos_;
  bool starts_with_bos_ = false;
  std::function<std::tm()> now_;
};

}  // namespace starattn
