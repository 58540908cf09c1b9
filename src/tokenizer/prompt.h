// Turns a context and a query into the token ids the engine runs: phase 1 gets the context, phase
// 2 the query. With a chat template the model's own wrapping is kept, cut where the query starts:
// the template's prefix (system prompt, headers) belongs to the context, its suffix (end of the
// user turn, assistant header) to the query. Each part is encoded as a string of its own, as HF's
// tokenizer encodes it (a SentencePiece tokenizer starts the query with its "▁" dummy prefix too),
// which is how reference Star Attention code tokenizes context and query.
#pragma once

#include <string>
#include <vector>

#include "tokenizer/chat.h"
#include "tokenizer/tokenizer.h"

namespace starattn {

struct PromptIds {
  std::vector<int> context;  // BOS (when the tokenizer wants one) + the context part
  std::vector<int> query;
};

// context may be empty (then everything runs as the query). With chat = false the context and the
// query are joined by a blank line; with chat = true they are one user message (context, a blank
// line, query) in the model's chat template. Throws Error for an empty query.
PromptIds build_prompt_ids(const Tokenizer& tok, const std::string& context,
                           const std::string& query, bool chat, const std::string& system = "");
// The same with a given chat template (the model's, a built-in or one from a file).
PromptIds build_prompt_ids(const Tokenizer& tok, const std::string& context,
                           const std::string& query, const ChatTemplate& tmpl,
                           const std::string& system = "");

// Token ids of text that starts a prompt: BOS first when the tokenizer wants one, unless the
// text (a chat template's rendering) already begins with it.
std::vector<int> encode_prompt_start(const Tokenizer& tok, const std::string& text);

}  // namespace starattn
