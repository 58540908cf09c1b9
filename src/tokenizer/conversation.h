// A multi-turn chat as token runs to append to one KV cache: phase 1 holds the start of the first
// user message (system prompt, template headers, the context document), and each turn appends the
// tokens of its new text only. The new text of a turn is what the chat template renders for the
// whole conversation so far, minus what it rendered before; a template that renders the earlier
// turns differently once a turn is added (so the KV already holds text it no longer renders) is an
// error, not a silent mismatch.
//
// The first turn splits exactly as build_prompt_ids (prompt.h) splits a --chat context + query, so
// a conversation's first answer is `generate --chat --context-file --query`'s.
#pragma once

#include <string>
#include <vector>

#include "tokenizer/chat.h"
#include "tokenizer/tokenizer.h"

namespace starattn {

class Conversation {
 public:
  // context ("" for none) opens the first user message, followed by a blank line; system ("" for
  // none) is the system message. The template is the model's own (throws Error when the
  // tokenizer has none it can render) or `tmpl`.
  Conversation(const Tokenizer& tok, std::string context, std::string system);
  Conversation(const Tokenizer& tok, ChatTemplate tmpl, std::string context, std::string system);

  // Phase 1: BOS (when the tokenizer wants one and the template does not write it) and the
  // rendered text up to the end of the context (the template's prefix alone when there is none).
  const std::vector<int>& context_ids() const { return context_ids_; }

  // Adds a user message (not empty). Returns the tokens to append after everything so far: the
  // template's end of the previous answer, the user turn and the assistant header.
  std::vector<int> add_user(const std::string& text);
  // Adds the assistant's answer: the text of the tokens generated for it, which the KV holds
  // already (everything up to the end-of-generation token, which is not in the KV: the template's
  // text after the answer, in the next add_user, supplies it).
  void add_assistant(const std::string& text);

  const std::vector<ChatMessage>& messages() const { return msgs_; }
  // The text of the KV so far: what the template rendered, with the answers as generated.
  const std::string& rendered() const { return rendered_; }

 private:
  // The one place a conversation meets the chat template (with the generation prompt).
  std::string render(const std::vector<ChatMessage>& msgs) const;

  const Tokenizer& tok_;
  ChatTemplate tmpl_;
  std::string context_;
  std::vector<ChatMessage> msgs_;
  std::string rendered_;
  std::vector<int> context_ids_;
};

}  // namespace starattn
