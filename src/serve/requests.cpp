#include "serve/requests.h"

#include <chrono>
#include <random>

#include "starattn/error.h"

namespace starattn::serve {
namespace {

double steady_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

const RenderChat& need_template(const ServedModel& m) {
  if (!m.render)
    throw bad_request("the model has no chat template: use /v1/completions", "messages");
  return m.render;
}

// The system message a conversation starts with, or "".
std::string system_of(const std::vector<ChatMessage>& messages) {
  return !messages.empty() && messages[0].role == "system" ? messages[0].content : "";
}

// Releases an acquired entry when a later check fails, so no user leaks.
struct Holding {
  ContextRegistry& registry;
  std::shared_ptr<ContextEntry> entry;
  ~Holding() {
    if (entry) registry.release(entry);
  }
  std::shared_ptr<ContextEntry> keep() { return std::move(entry); }
};

}  // namespace

std::shared_ptr<ContextEntry> make_context_entry(const ServedModel& m, const std::string& document,
                                                 bool chat, const std::string& system) {
  auto e = std::make_shared<ContextEntry>();
  e->document = document;
  e->chat = chat;
  e->system = system;
  e->text = chat ? chat_context_text(need_template(m), document, system)
                 : plain_context_text(document);
  e->tokens = context_ids(*m.tok, e->text);
  if (static_cast<int64_t>(e->tokens.size()) >= m.max_positions)
    throw bad_request("the context is " + std::to_string(e->tokens.size()) +
                          " tokens, but the model's context is " +
                          std::to_string(m.max_positions) +
                          " tokens (and the question needs some of it)",
                      "context");
  try {
    e->rc = m.rc.resolved(static_cast<int64_t>(e->tokens.size()), m.ranks);
  } catch (const Error& err) {
    throw bad_request(err.what());
  }
  e->id = context_id(e->rc, e->tokens);
  e->created = unix_now();
  return e;
}

std::shared_ptr<Job> make_generate_job(const ServedModel& m, ContextRegistry& registry,
                                       const CompletionRequest& r) {
  Holding held{registry, nullptr};
  std::string query;
  if (r.context_id) {
    held.entry = registry.acquire_id(*r.context_id);
    if (!held.entry)
      throw HttpError(404, "not_found_error", "no context '" + *r.context_id + "'",
                      "context_id");
    const ContextEntry& e = *held.entry;
    if (r.chat) {
      if (!e.chat)
        throw bad_request("context " + e.id +
                              " was encoded as plain text (\"chat\": false): use "
                              "/v1/completions, or create it with \"chat\": true",
                          "context_id");
      const std::string system = system_of(r.messages).empty() ? e.system : "";
      const PromptParts p = chat_about(need_template(m), e.document, system, r.messages);
      if (p.context != e.text)
        throw bad_request("this conversation does not start the way context " + e.id +
                              " was encoded (a different system prompt?): the system message "
                              "must be the one the context was created with, or none",
                          "messages");
      query = p.query;
    } else {
      // A completion continues the context's text as it is, chat-made or plain.
      query = r.prompt;
    }
  } else if (r.context) {
    const std::string system = r.chat ? system_of(r.messages) : "";
    std::shared_ptr<ContextEntry> fresh = make_context_entry(m, *r.context, r.chat, system);
    if (r.chat) {
      const PromptParts p = chat_about(need_template(m), *r.context, "", r.messages);
      if (p.context != fresh->text) throw bad_request("the conversation cannot follow its context");
      query = p.query;
    } else {
      query = r.prompt;
    }
    held.entry = registry.acquire(fresh);
  } else {
    const PromptParts p =
        r.chat ? split_chat(need_template(m), r.messages) : split_completion(r.prompt);
    const std::string full = p.context + p.query;
    // A context the client sent before, inside this prompt: reuse it when it covers at least
    // half of this prompt's own context part (a short cached prefix is not worth running the
    // rest of a long document as the question).
    held.entry = registry.acquire_prefix_of(full);
    if (held.entry && 2 * held.entry->text.size() < p.context.size()) {
      registry.release(held.entry);
      held.entry = nullptr;
    }
    if (held.entry) {
      query = full.substr(held.entry->text.size());
    } else {
      auto fresh = std::make_shared<ContextEntry>();
      fresh->chat = r.chat;
      fresh->text = p.context;
      fresh->document = p.context;
      fresh->tokens = context_ids(*m.tok, p.context);
      try {
        fresh->rc = m.rc.resolved(static_cast<int64_t>(fresh->tokens.size()), m.ranks);
      } catch (const Error& err) {
        throw bad_request(err.what());
      }
      fresh->id = context_id(fresh->rc, fresh->tokens);
      fresh->created = unix_now();
      held.entry = registry.acquire(fresh);
      query = p.query;
    }
  }

  auto job = std::make_shared<Job>();
  job->query = m.tok->encode(query);
  if (job->query.empty()) throw bad_request("the question encodes to no tokens");
  const int64_t prompt =
      static_cast<int64_t>(held.entry->tokens.size() + job->query.size());
  const int64_t room = m.max_positions - prompt;
  if (room < 1 || (r.max_tokens && *r.max_tokens > room))
    throw bad_request("the model's context is " + std::to_string(m.max_positions) +
                          " tokens, but this request needs " + std::to_string(prompt) +
                          " for the prompt (" + std::to_string(held.entry->tokens.size()) +
                          " context + " + std::to_string(job->query.size()) + " question)" +
                          (r.max_tokens ? " and " + std::to_string(*r.max_tokens) +
                                              " for the completion"
                                        : std::string()),
                      r.max_tokens ? "max_tokens" : "messages");
  job->max_tokens = static_cast<int>(r.max_tokens.value_or(room));
  job->sampler.temperature = r.temperature;
  job->sampler.top_p = r.top_p;
  job->sampler.top_k = r.top_k;
  job->sampler.min_p = r.min_p;
  job->sampler.repeat_penalty = r.repetition_penalty;
  job->sampler.seed = r.seed ? *r.seed : std::random_device{}();
  try {
    validate(job->sampler);
  } catch (const Error& e) {
    throw bad_request(e.what());
  }
  job->top_logprobs = r.top_logprobs;
  job->stop = r.stop;
  job->submitted = steady_now();
  job->context = held.keep();
  return job;
}

}  // namespace starattn::serve
