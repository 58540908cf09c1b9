// Where a served prompt is cut into the context (phase 1, cached and shared) and the query
// (phase 2, the request's own). The rules, as the README documents them:
//   - A context made for chat is the chat template's prefix (system prompt, the first user
//     turn's header) followed by the document and a blank line, exactly what `starattn generate
//     --chat --context-file` encodes; the question goes on in the same user turn.
//   - A plain context is the document followed by a blank line (`generate` without --chat).
//   - A prompt that names no context is cut at its last blank line ("\n\n") that leaves a
//     non-empty question; for a chat, inside the last user message, so the context is the whole
//     conversation up to there. Without a blank line the context is only the template's prefix.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "tokenizer/chat.h"
#include "tokenizer/tokenizer.h"

namespace starattn::serve {

// Renders a conversation with the model's chat template (add_generation_prompt as given).
using RenderChat =
    std::function<std::string(const std::vector<ChatMessage>&, bool add_generation_prompt)>;

struct PromptParts {
  std::string context, query;  // texts; context + query is the whole rendered prompt
};

// The context text of a document for chat, with an optional system prompt.
std::string chat_context_text(const RenderChat& render, const std::string& document,
                              const std::string& system);
// A chat about a document: the document opens the first user message (the conversation's own
// system message wins over `system`). Throws HttpError 400 for a conversation with no user turn.
PromptParts chat_about(const RenderChat& render, const std::string& document,
                       const std::string& system, const std::vector<ChatMessage>& messages);
// A chat that names no context: the default split.
PromptParts split_chat(const RenderChat& render, const std::vector<ChatMessage>& messages);

std::string plain_context_text(const std::string& document);
PromptParts split_completion(const std::string& prompt);

// The context's token ids: BOS (when the tokenizer adds one and the text does not start with it)
// and the text, as build_prompt_ids encodes a context.
std::vector<int> context_ids(const Tokenizer& tok, const std::string& text);

}  // namespace starattn::serve
