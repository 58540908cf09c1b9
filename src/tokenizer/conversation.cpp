#include "tokenizer/conversation.h"

#include "starattn/error.h"
#include "tokenizer/prompt.h"

namespace starattn {

std::string Conversation::render(const std::vector<ChatMessage>& msgs) const {
  return tmpl_.render(msgs, /*add_generation_prompt=*/true);
}

Conversation::Conversation(const Tokenizer& tok, std::string context, std::string system)
    : Conversation(tok, ChatTemplate::for_tokenizer(tok), std::move(context), std::move(system)) {}

Conversation::Conversation(const Tokenizer& tok, ChatTemplate tmpl, std::string context,
                           std::string system)
    : tok_(tok), tmpl_(std::move(tmpl)), context_(std::move(context)) {
  if (!system.empty()) msgs_.push_back({"system", std::move(system)});
  // Render the first user message with a marker where the question will go; phase 1 is the
  // text before it (build_prompt_ids cuts the same way).
  const std::string marker = "\x01starattn-query\x01";
  std::vector<ChatMessage> first = msgs_;
  first.push_back({"user", context_.empty() ? marker : context_ + "\n\n" + marker});
  const std::string full = render(first);
  const size_t cut = full.find(marker);
  SA_CHECK(cut != std::string::npos, "chat template lost the prompt text");
  rendered_ = full.substr(0, cut);
  context_ids_ = encode_prompt_start(tok_, rendered_);
}

std::vector<int> Conversation::add_user(const std::string& text) {
  SA_CHECK(!text.empty(), "chat: the message is empty");
  SA_CHECK(msgs_.empty() || msgs_.back().role != "user",
           "chat: two user messages in a row (the answer to the first was not added)");
  const bool first = msgs_.empty() || msgs_.back().role == "system";
  msgs_.push_back({"user", first && !context_.empty() ? context_ + "\n\n" + text : text});
  const std::string full = render(msgs_);
  if (full.compare(0, rendered_.size(), rendered_) != 0) {
    size_t at = 0;
    while (at < rendered_.size() && at < full.size() && rendered_[at] == full[at]) ++at;
    msgs_.pop_back();
    fail(
        "chat: the chat template renders the earlier turns differently once a new message is "
        "added (from byte ",
        at, " of ", rendered_.size(),
        "), so the KV cache no longer matches the conversation; this template cannot be used "
        "for multi-turn chat");
  }
  const std::vector<int> ids = tok_.encode(std::string_view(full).substr(rendered_.size()));
  rendered_ = full;
  return ids;
}

void Conversation::add_assistant(const std::string& text) {
  SA_CHECK(!msgs_.empty() && msgs_.back().role == "user",
           "chat: an answer without a question before it");
  msgs_.push_back({"assistant", text});
  rendered_ += text;
}

}  // namespace starattn
