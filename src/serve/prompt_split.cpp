#include "serve/prompt_split.h"

#include "serve/http_error.h"
#include "tokenizer/prompt.h"

namespace starattn::serve {
namespace {

// Where the query starts, in the text handed to the template; no client text may hold it.
const std::string kMarker = "\x01starattn-query\x01";

void check_no_marker(const std::vector<ChatMessage>& messages) {
  for (const ChatMessage& m : messages)
    if (m.content.find(kMarker) != std::string::npos)
      throw bad_request("a message holds a reserved control sequence");
}

// Renders with the marker inserted at byte `at` of message `msg`'s content and cuts there.
PromptParts render_cut(const RenderChat& render, std::vector<ChatMessage> messages, size_t msg,
                       size_t at) {
  messages[msg].content.insert(at, kMarker);
  const std::string full = render(messages, /*add_generation_prompt=*/true);
  const size_t cut = full.find(kMarker);
  if (cut == std::string::npos || full.find(kMarker, cut + 1) != std::string::npos)
    throw HttpError(500, "server_error",
                    "the chat template does not keep message text as it is, so the prompt cannot "
                    "be split into context and question");
  return {full.substr(0, cut), full.substr(cut + kMarker.size())};
}

size_t first_user(const std::vector<ChatMessage>& messages) {
  for (size_t i = 0; i < messages.size(); ++i)
    if (messages[i].role == "user") return i;
  throw bad_request("the conversation has no user message", "messages");
}

// Where a text's question starts: after its last blank line that leaves a non-empty question.
size_t question_start(const std::string& s) {
  for (size_t at = s.rfind("\n\n"); at != std::string::npos;
       at = at == 0 ? std::string::npos : s.rfind("\n\n", at - 1)) {
    if (s.find_first_not_of(" \t\r\n", at + 2) != std::string::npos) return at + 2;
  }
  return 0;
}

}  // namespace

std::string chat_context_text(const RenderChat& render, const std::string& document,
                              const std::string& system) {
  std::vector<ChatMessage> messages;
  if (!system.empty()) messages.push_back({"system", system});
  messages.push_back({"user", document + "\n\n?"});
  check_no_marker(messages);
  return render_cut(render, messages, messages.size() - 1, document.size() + 2).context;
}

PromptParts chat_about(const RenderChat& render, const std::string& document,
                       const std::string& system, const std::vector<ChatMessage>& messages) {
  check_no_marker(messages);
  std::vector<ChatMessage> all;
  if (!system.empty() && (messages.empty() || messages[0].role != "system"))
    all.push_back({"system", system});
  all.insert(all.end(), messages.begin(), messages.end());
  const size_t u = first_user(all);
  all[u].content = document + "\n\n" + all[u].content;
  return render_cut(render, all, u, document.size() + 2);
}

PromptParts split_chat(const RenderChat& render, const std::vector<ChatMessage>& messages) {
  check_no_marker(messages);
  size_t last = messages.size();
  for (size_t i = 0; i < messages.size(); ++i)
    if (messages[i].role == "user") last = i;
  if (last == messages.size()) throw bad_request("the conversation has no user message", "messages");
  return render_cut(render, messages, last, question_start(messages[last].content));
}

std::string plain_context_text(const std::string& document) {
  return document + "\n\n";
}

PromptParts split_completion(const std::string& prompt) {
  const size_t at = question_start(prompt);
  return {prompt.substr(0, at), prompt.substr(at)};
}

std::vector<int> context_ids(const Tokenizer& tok, const std::string& text) {
  return encode_prompt_start(tok, text);
}

}  // namespace starattn::serve
