#include "tokenizer/prompt.h"

#include "starattn/error.h"

namespace starattn {

namespace {

// Stands where the query starts inside the user message. Control characters without case and
// outside Python's whitespace, so trim/strip/upper/title leave it alone.
const std::string kMarker = "\x01\x02\x03\x02\x01";

PromptIds encode(const Tokenizer& tok, const std::string& ctx_text, const std::string& q_text) {
  PromptIds ids;
  ids.context = encode_prompt_start(tok, ctx_text);
  ids.query = tok.encode(q_text);
  SA_CHECK(!ids.query.empty(), "the query encodes to no tokens");
  return ids;
}

}  // namespace

std::vector<int> encode_prompt_start(const Tokenizer& tok, const std::string& text) {
  std::vector<int> ids = tok.encode(text);
  if (tok.add_bos() && tok.bos_id() >= 0 && (ids.empty() || ids[0] != tok.bos_id())) {
    ids.insert(ids.begin(), tok.bos_id());
  }
  return ids;
}

PromptIds build_prompt_ids(const Tokenizer& tok, const std::string& context,
                           const std::string& query, bool chat, const std::string& system) {
  if (chat) return build_prompt_ids(tok, context, query, ChatTemplate::for_tokenizer(tok), system);
  SA_CHECK(!query.empty(), "the query is empty");
  return encode(tok, context.empty() ? "" : context + "\n\n", query);
}

PromptIds build_prompt_ids(const Tokenizer& tok, const std::string& context,
                           const std::string& query, const ChatTemplate& tmpl,
                           const std::string& system) {
  SA_CHECK(!query.empty(), "the query is empty");
  SA_CHECK(context.find(kMarker) == std::string::npos && query.find(kMarker) == std::string::npos &&
               system.find(kMarker) == std::string::npos,
           "the prompt contains the byte sequence 01 02 03 02 01, which marks the query");
  const std::string head = context.empty() ? "" : context + "\n\n";
  auto render = [&](const std::string& content) {
    std::vector<ChatMessage> msgs;
    if (!system.empty()) msgs.push_back({"system", system});
    msgs.push_back({"user", content});
    return tmpl.render(msgs, /*add_generation_prompt=*/true);
  };
  // Render once with the marker where the query starts and cut there; then check the cut against
  // the real rendering. A template that transforms the message (trim, strip) may change the text
  // at the cut: the real rendering wins, the marker only says where to cut it.
  const std::string marked = render(head + kMarker + query);
  const size_t cut = marked.find(kMarker);
  SA_CHECK(cut != std::string::npos && marked.find(kMarker, cut + 1) == std::string::npos,
           "the chat template ", cut == std::string::npos ? "drops" : "repeats",
           " the user message, so the prompt cannot be cut into context and query");
  const std::string before = marked.substr(0, cut), after = marked.substr(cut + kMarker.size());
  const std::string real = render(head + query);
  if (real == before + after) return encode(tok, before, after);
  if (real.compare(0, before.size(), before) == 0) {
    return encode(tok, before, real.substr(before.size()));
  }
  if (real.size() >= after.size() &&
      real.compare(real.size() - after.size(), after.size(), after) == 0) {
    return encode(tok, real.substr(0, real.size() - after.size()), after);
  }
  fail(
      "the chat template changes the user message where the query starts, so the prompt "
      "cannot be cut into context and query");
}

}  // namespace starattn
