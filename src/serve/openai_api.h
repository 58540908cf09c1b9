// The OpenAI wire format: request bodies of /v1/chat/completions and /v1/completions parsed and
// checked into one struct, and the JSON of every reply (plain, streamed chunks, usage, errors).
// Pure functions over strings and JSON, so the HTTP layer stays thin and these can be fuzzed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "serve/http_error.h"
#include "serve/job.h"
#include "tokenizer/chat.h"
#include "tokenizer/tokenizer.h"

namespace starattn::serve {

struct CompletionRequest {
  bool chat = false;                  // /v1/chat/completions (messages) or /v1/completions (prompt)
  std::string model;                  // "" when the client named none
  std::vector<ChatMessage> messages;  // chat
  std::string prompt;                 // completions
  std::optional<int64_t> max_tokens;  // max_tokens or max_completion_tokens
  float temperature = 1.0f;           // OpenAI's defaults
  float top_p = 1.0f;
  int top_k = 0;                      // extension; 0 = off
  float min_p = 0.0f;                 // extension; 0 = off
  float repetition_penalty = 1.0f;    // extension (vLLM's name); 1 = off
  // Chat: "logprobs": true with "top_logprobs": N; completions: "logprobs": N. -1 = off.
  int top_logprobs = -1;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;         // stream_options.include_usage
  // starattn's extension fields (the openai client sends them through extra_body): the context
  // this question is about, by id (a context made by POST /v1/contexts) or inline.
  std::optional<std::string> context_id;
  std::optional<std::string> context;
};

// Throws HttpError 400 naming the field at fault for malformed JSON, wrong types, values out of
// range and unsupported options.
CompletionRequest parse_completion_request(const std::string& body, bool chat);

// POST /v1/contexts: {"text": DOCUMENT, "chat": bool (default: the model has a chat template),
// "system": optional system prompt, "model": optional}.
struct ContextRequest {
  std::string text;
  std::optional<bool> chat;
  std::string system;
  std::string model;
};
ContextRequest parse_context_request(const std::string& body);

// Replies. `id` is the response id ("chatcmpl-..." / "cmpl-..."), `created` unix seconds.
nlohmann::json usage_json(const Usage& u);
// The OpenAI "logprobs" object of a choice for these tokens (chat: {"content": [...]};
// completions: tokens, token_logprobs, top_logprobs, text_offset).
nlohmann::json logprobs_json(const CompletionRequest& r, const Tokenizer& tok,
                             const std::vector<TokenChoice>& tokens, size_t text_offset = 0);
nlohmann::json completion_json(const CompletionRequest& r, const std::string& id, int64_t created,
                               const std::string& model, const std::string& text,
                               const std::string& finish_reason, const Usage& u,
                               const nlohmann::json& logprobs = nullptr);
// One streamed chunk: `text` as the delta (chat: the first chunk also carries the role), and the
// finish reason on the last one ("" for none).
nlohmann::json chunk_json(const CompletionRequest& r, const std::string& id, int64_t created,
                          const std::string& model, const std::string* role,
                          const std::string& text, const std::string& finish_reason,
                          const nlohmann::json& logprobs = nullptr);
// The usage chunk that ends a stream when stream_options.include_usage is set.
nlohmann::json usage_chunk_json(const CompletionRequest& r, const std::string& id,
                                int64_t created, const std::string& model, const Usage& u);
nlohmann::json error_json(const HttpError& e);
// A JSON value as text, with invalid UTF-8 from a model replaced rather than failing the reply.
std::string dump(const nlohmann::json& j);

}  // namespace starattn::serve
