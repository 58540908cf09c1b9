#include "tokenizer/conversation.h"

#include "starattn/error.h"

namespace starattn {

std::string Conversation::render(const std::vector<ChatMessage>& msgs) const {
  return render_chat(parse_chat_template(tok_.chat_template()), msgs,
                     /*add_generation_prompt=*/true);
}

Conversation::Conversation(const Tokenizer& tok, std::string context, std::string system)
    : tok_(tok), context_(std::move(context)) {
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
  if (tok_.add_bos()) context_ids_.push_back(tok_.bos_id());
  const std::vector<int> c = tok_.encode(rendered_);
  // A template that starts with the BOS text already carries it; do not add a second one.
  if (!context_ids_.empty() && !c.empty() && c[0] == context_ids_[0]) context_ids_.clear();
  context_ids_.insert(context_ids_.end(), c.begin(), c.end());
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
