#include "serve/openai_api.h"

#include <cmath>
#include <cstdio>
#include <limits>

namespace starattn::serve {
namespace {

using nlohmann::json;

json parse_object(const std::string& body) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& e) {
    // nlohmann rejects ill-formed UTF-8 inside strings here too (parse_error), and a number
    // beyond double's range (1e999) as out_of_range.
    throw bad_request(std::string("the request body is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw bad_request("the request body must be a JSON object");
  return j;
}

const json* field(const json& j, const char* name) {
  const auto it = j.find(name);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

// Whether an object's "type" is the string "text". Not value("type", ""): that throws
// json::type_error when "type" is present but not a string.
bool is_text_type(const json& o) {
  if (!o.is_object()) return false;
  const auto it = o.find("type");
  return it != o.end() && it->is_string() && it->get_ref<const std::string&>() == "text";
}

std::string get_string(const json& j, const char* name) {
  const json* v = field(j, name);
  if (!v) return "";
  if (!v->is_string()) throw bad_request(std::string("'") + name + "' must be a string", name);
  return v->get<std::string>();
}

std::optional<double> get_number(const json& j, const char* name, double lo, double hi) {
  const json* v = field(j, name);
  if (!v) return std::nullopt;
  if (!v->is_number()) throw bad_request(std::string("'") + name + "' must be a number", name);
  const double x = v->get<double>();
  if (!std::isfinite(x) || x < lo || x > hi) {
    char range[96];
    std::snprintf(range, sizeof range, "[%g, %g]", lo, hi);
    throw bad_request(std::string("'") + name + "' must be in " + range + ", got " + v->dump(),
                      name);
  }
  return x;
}

std::optional<int64_t> get_int(const json& j, const char* name, int64_t lo, int64_t hi) {
  const json* v = field(j, name);
  if (!v) return std::nullopt;
  // 1.0 is an integer in JSON's eyes too; 1.5 and 1e300 are not.
  if (!v->is_number_integer()) {
    const bool whole = v->is_number_float() && std::isfinite(v->get<double>()) &&
                       std::floor(v->get<double>()) == v->get<double>() &&
                       std::fabs(v->get<double>()) < 9e15;
    if (!whole) throw bad_request(std::string("'") + name + "' must be an integer", name);
  }
  int64_t x = 0;
  if (v->is_number_unsigned()) {
    const uint64_t u = v->get<uint64_t>();
    if (u > static_cast<uint64_t>(hi))
      throw bad_request(std::string("'") + name + "' must be at most " + std::to_string(hi), name);
    x = static_cast<int64_t>(u);
  } else if (v->is_number_integer()) {
    x = v->get<int64_t>();
  } else {
    x = static_cast<int64_t>(v->get<double>());
  }
  if (x < lo || x > hi)
    throw bad_request(std::string("'") + name + "' must be in [" + std::to_string(lo) + ", " +
                          std::to_string(hi) + "], got " + std::to_string(x),
                      name);
  return x;
}

std::optional<bool> get_bool(const json& j, const char* name) {
  const json* v = field(j, name);
  if (!v) return std::nullopt;
  if (!v->is_boolean())
    throw bad_request(std::string("'") + name + "' must be true or false", name);
  return v->get<bool>();
}

// A message's content: a string, or a list of {"type": "text", "text": ...} parts.
std::string message_content(const json& m, size_t i) {
  const std::string where = "messages[" + std::to_string(i) + "].content";
  const json* c = field(m, "content");
  if (!c) return "";
  if (c->is_string()) return c->get<std::string>();
  if (!c->is_array())
    throw bad_request("'" + where + "' must be a string or a list of parts", where);
  std::string out;
  for (const json& part : *c) {
    if (!is_text_type(part) || !part.contains("text") || !part.at("text").is_string())
      throw bad_request("'" + where + "' may hold only {\"type\": \"text\", \"text\": ...} parts",
                        where);
    out += part.at("text").get<std::string>();
  }
  return out;
}

void parse_messages(const json& j, CompletionRequest& r) {
  const json* ms = field(j, "messages");
  if (!ms) throw bad_request("'messages' is required", "messages");
  if (!ms->is_array() || ms->empty())
    throw bad_request("'messages' must be a non-empty list", "messages");
  for (size_t i = 0; i < ms->size(); ++i) {
    const json& m = (*ms)[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) throw bad_request("'" + where + "' must be an object", where);
    const json* role = field(m, "role");
    if (!role || !role->is_string())
      throw bad_request("'" + where + ".role' must be a string", where + ".role");
    const std::string rs = role->get<std::string>();
    if (rs != "system" && rs != "user" && rs != "assistant" && rs != "developer")
      throw bad_request("'" + where + ".role' must be system, user or assistant, got '" + rs + "'",
                        where + ".role");
    if (field(m, "tool_calls")) throw bad_request("tool calls are not supported", where);
    r.messages.push_back({rs == "developer" ? "system" : rs, message_content(m, i)});
  }
}

void parse_stop(const json& j, CompletionRequest& r) {
  const json* s = field(j, "stop");
  if (!s) return;
  if (s->is_string()) {
    r.stop.push_back(s->get<std::string>());
  } else if (s->is_array()) {
    for (const json& x : *s) {
      if (!x.is_string()) throw bad_request("'stop' must be a string or a list of strings", "stop");
      r.stop.push_back(x.get<std::string>());
    }
  } else {
    throw bad_request("'stop' must be a string or a list of strings", "stop");
  }
  if (r.stop.size() > 16) throw bad_request("'stop' may hold at most 16 strings", "stop");
  for (const std::string& x : r.stop)
    if (x.empty()) throw bad_request("'stop' strings must not be empty", "stop");
}

}  // namespace

CompletionRequest parse_completion_request(const std::string& body, bool chat) {
  const json j = parse_object(body);
  CompletionRequest r;
  r.chat = chat;
  r.model = get_string(j, "model");
  if (chat) {
    parse_messages(j, r);
  } else {
    const json* p = field(j, "prompt");
    if (!p) throw bad_request("'prompt' is required", "prompt");
    if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) {
      r.prompt = (*p)[0].get<std::string>();
    } else if (p->is_string()) {
      r.prompt = p->get<std::string>();
    } else {
      throw bad_request("'prompt' must be a string (or a list of one string)", "prompt");
    }
    if (get_bool(j, "echo").value_or(false)) throw bad_request("'echo' is not supported", "echo");
    if (field(j, "suffix")) throw bad_request("'suffix' is not supported", "suffix");
  }
  const int64_t big = int64_t{1} << 40;
  r.max_tokens = get_int(j, "max_tokens", 1, big);
  if (!r.max_tokens) r.max_tokens = get_int(j, "max_completion_tokens", 1, big);
  r.temperature = static_cast<float>(get_number(j, "temperature", 0.0, 2.0).value_or(1.0));
  r.top_p = static_cast<float>(get_number(j, "top_p", 0.0, 1.0).value_or(1.0));
  if (r.top_p == 0.0f) throw bad_request("'top_p' must be greater than 0", "top_p");
  r.top_k = static_cast<int>(get_int(j, "top_k", 0, 1 << 30).value_or(0));
  r.min_p = static_cast<float>(get_number(j, "min_p", 0.0, 1.0).value_or(0.0));
  r.repetition_penalty =
      static_cast<float>(get_number(j, "repetition_penalty", 1e-3, 100.0)
                             .value_or(get_number(j, "repeat_penalty", 1e-3, 100.0).value_or(1.0)));
  if (const auto seed = get_int(j, "seed", std::numeric_limits<int64_t>::min(),
                                std::numeric_limits<int64_t>::max()))
    r.seed = static_cast<uint64_t>(*seed);
  parse_stop(j, r);
  r.stream = get_bool(j, "stream").value_or(false);
  if (const json* so = field(j, "stream_options")) {
    if (!so->is_object()) throw bad_request("'stream_options' must be an object", "stream_options");
    r.include_usage = get_bool(*so, "include_usage").value_or(false);
  }
  if (get_int(j, "n", 1, 1 << 20).value_or(1) != 1)
    throw bad_request("'n' must be 1: one choice per request", "n");
  for (const char* penalty : {"presence_penalty", "frequency_penalty"}) {
    if (get_number(j, penalty, -2.0, 2.0).value_or(0.0) != 0.0)
      throw bad_request(std::string("'") + penalty + "' is not supported (use 0)", penalty);
  }
  if (chat) {
    if (get_bool(j, "logprobs").value_or(false))
      r.top_logprobs = static_cast<int>(get_int(j, "top_logprobs", 0, kMaxTopLogprobs).value_or(0));
    else if (field(j, "top_logprobs"))
      throw bad_request("'top_logprobs' needs \"logprobs\": true", "top_logprobs");
  } else if (const auto n = get_int(j, "logprobs", 0, kMaxTopLogprobs)) {
    r.top_logprobs = static_cast<int>(*n);
  }
  if (const json* t = field(j, "tools"); t && !(t->is_array() && t->empty()))
    throw bad_request("'tools' are not supported", "tools");
  if (const json* rf = field(j, "response_format"); rf && !is_text_type(*rf))
    throw bad_request("only the 'text' response_format is supported", "response_format");
  if (field(j, "context_id")) r.context_id = get_string(j, "context_id");
  if (field(j, "context")) r.context = get_string(j, "context");
  if (r.context_id && r.context)
    throw bad_request("give 'context_id' or 'context', not both", "context");
  if (r.context && r.context->empty()) throw bad_request("'context' is empty", "context");
  return r;
}

ContextRequest parse_context_request(const std::string& body) {
  const json j = parse_object(body);
  ContextRequest r;
  const json* t = field(j, "text");
  if (!t) throw bad_request("'text' is required: the document to encode", "text");
  if (!t->is_string()) throw bad_request("'text' must be a string", "text");
  r.text = t->get<std::string>();
  if (r.text.empty()) throw bad_request("'text' is empty", "text");
  r.chat = get_bool(j, "chat");
  r.system = get_string(j, "system");
  r.model = get_string(j, "model");
  return r;
}

json usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt},
          {"completion_tokens", u.completion},
          {"total_tokens", u.prompt + u.completion},
          {"prompt_tokens_details", {{"cached_tokens", u.cached}}}};
}

json logprobs_json(const CompletionRequest& r, const Tokenizer& tok,
                   const std::vector<TokenChoice>& tokens, size_t text_offset) {
  if (r.top_logprobs < 0) return nullptr;
  // A token's text as bytes (a token may hold part of a character) and as a string.
  auto text_of = [&](int id) {
    if (id >= 0 && id < tok.vocab_size()) return tok.token_text(id);
    std::string t = "<";  // an id past the tokenizer (a padded embedding)
    t += std::to_string(id);
    t += '>';
    return t;
  };
  auto bytes_of = [](const std::string& t) {
    json b = json::array();
    for (unsigned char ch : t) b.push_back(ch);
    return b;
  };
  if (r.chat) {
    json content = json::array();
    for (const TokenChoice& t : tokens) {
      const std::string s = text_of(t.id);
      json top = json::array();
      for (const TokenLogprob& alt : t.top) {
        const std::string a = text_of(alt.id);
        top.push_back({{"token", a}, {"logprob", alt.logprob}, {"bytes", bytes_of(a)}});
      }
      content.push_back(
          {{"token", s}, {"logprob", t.logprob}, {"bytes", bytes_of(s)}, {"top_logprobs", top}});
    }
    return {{"content", content}};
  }
  json toks = json::array(), lps = json::array(), tops = json::array(), offsets = json::array();
  for (const TokenChoice& t : tokens) {
    const std::string s = text_of(t.id);
    toks.push_back(s);
    lps.push_back(t.logprob);
    json top = json::object();
    for (const TokenLogprob& alt : t.top) top[text_of(alt.id)] = alt.logprob;
    tops.push_back(top);
    offsets.push_back(text_offset);
    text_offset += s.size();
  }
  return {
      {"tokens", toks}, {"token_logprobs", lps}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

json completion_json(const CompletionRequest& r, const std::string& id, int64_t created,
                     const std::string& model, const std::string& text,
                     const std::string& finish_reason, const Usage& u, const json& logprobs) {
  json choice = {{"index", 0}, {"logprobs", logprobs}, {"finish_reason", finish_reason}};
  if (r.chat) {
    choice["message"] = {{"role", "assistant"}, {"content", text}};
  } else {
    choice["text"] = text;
  }
  return {{"id", id},
          {"object", r.chat ? "chat.completion" : "text_completion"},
          {"created", created},
          {"model", model},
          {"choices", json::array({choice})},
          {"usage", usage_json(u)}};
}

json chunk_json(const CompletionRequest& r, const std::string& id, int64_t created,
                const std::string& model, const std::string* role, const std::string& text,
                const std::string& finish_reason, const json& logprobs) {
  json choice = {{"index", 0}, {"logprobs", logprobs}};
  choice["finish_reason"] = finish_reason.empty() ? json(nullptr) : json(finish_reason);
  if (r.chat) {
    json delta = json::object();
    if (role) delta["role"] = *role;
    if (!text.empty() || (!role && finish_reason.empty())) delta["content"] = text;
    choice["delta"] = delta;
  } else {
    choice["text"] = text;
  }
  return {{"id", id},
          {"object", r.chat ? "chat.completion.chunk" : "text_completion"},
          {"created", created},
          {"model", model},
          {"choices", json::array({choice})}};
}

json usage_chunk_json(const CompletionRequest& r, const std::string& id, int64_t created,
                      const std::string& model, const Usage& u) {
  return {{"id", id},
          {"object", r.chat ? "chat.completion.chunk" : "text_completion"},
          {"created", created},
          {"model", model},
          {"choices", json::array()},
          {"usage", usage_json(u)}};
}

json error_json(const HttpError& e) {
  json err = {{"message", e.what()}, {"type", e.type}};
  err["param"] = e.param.empty() ? json(nullptr) : json(e.param);
  err["code"] = e.code.empty() ? json(nullptr) : json(e.code);
  return {{"error", err}};
}

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace starattn::serve
