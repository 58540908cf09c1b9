#include "eval/prompt_format.h"

#include <vector>

#include "starattn/error.h"

namespace starattn::eval {

PromptFormat PromptFormat::from_chat(const ChatTemplate& tmpl, const std::string& system) {
  // Render a user / assistant / user conversation with markers as the messages, then cut at them.
  const std::string m1 = "\x01sa-user-1\x01", m2 = "\x01sa-assistant\x01", m3 = "\x01sa-user-2\x01";
  std::vector<ChatMessage> msgs;
  if (!system.empty()) msgs.push_back({"system", system});
  msgs.push_back({"user", m1});
  msgs.push_back({"assistant", m2});
  msgs.push_back({"user", m3});
  const std::string full = tmpl.render(msgs, /*add_generation_prompt=*/true);
  const size_t a = full.find(m1), b = full.find(m2), c = full.find(m3);
  SA_CHECK(
      a != std::string::npos && b != std::string::npos && c != std::string::npos && a < b && b < c,
      "the chat template lost a message while cutting it into prompt pieces");
  PromptFormat f;
  f.prefix = full.substr(0, a);
  f.suffix = full.substr(a + m1.size(), b - a - m1.size());
  f.turn_end = full.substr(b + m2.size(), c - b - m2.size());
  SA_CHECK(full.substr(c + m3.size()) == f.suffix,
           "the chat template ends its second user turn differently from its first");
  return f;
}

PromptFormat PromptFormat::sa_llama3() {
  return from_chat(ChatTemplate::builtin("llama3", "<|begin_of_text|>", "<|eot_id|>"),
                   "You are a helpful assistant.");
}

PromptFormat PromptFormat::base() {
  return PromptFormat{"", "", "\n\n"};
}

}  // namespace starattn::eval
