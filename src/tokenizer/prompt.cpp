#include "tokenizer/prompt.h"

#include "starattn/error.h"
#include "tokenizer/chat.h"

namespace starattn {

PromptIds build_prompt_ids(const Tokenizer& tok, const std::string& context,
                           const std::string& query, bool chat, const std::string& system) {
  SA_CHECK(!query.empty(), "the query is empty");
  std::string ctx_text = context, q_text = query;
  if (chat) {
    const ChatTemplate tmpl = parse_chat_template(tok.chat_template());
    // Render once with a marker where the query starts, then cut there.
    const std::string marker = "\x01starattn-query\x01";
    std::vector<ChatMessage> msgs;
    if (!system.empty()) msgs.push_back({"system", system});
    msgs.push_back({"user", context.empty() ? marker + query : context + "\n\n" + marker + query});
    const std::string full = render_chat(tmpl, msgs, /*add_generation_prompt=*/true);
    const size_t cut = full.find(marker);
    SA_CHECK(cut != std::string::npos, "chat template lost the prompt text");
    ctx_text = full.substr(0, cut);
    q_text = full.substr(cut + marker.size());
  } else if (!ctx_text.empty()) {
    ctx_text += "\n\n";
  }
  PromptIds ids;
  if (tok.add_bos()) ids.context.push_back(tok.bos_id());
  const std::vector<int> c = tok.encode(ctx_text);
  // A template that starts with the BOS text already carries it; do not add a second one.
  if (!ids.context.empty() && !c.empty() && c[0] == ids.context[0]) ids.context.clear();
  ids.context.insert(ids.context.end(), c.begin(), c.end());
  ids.query = tok.encode(q_text);
  SA_CHECK(!ids.query.empty(), "the query encodes to no tokens");
  return ids;
}

}  // namespace starattn
