#include "tokenizer/chat.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "starattn/error.h"
#include "tokenizer/jinja/template.h"
#include "tokenizer/tokenizer.h"

namespace starattn {

namespace {

// Real chat templates are tens of kilobytes; a model file's could be anything.
constexpr size_t kMaxTemplateBytes = size_t{1} << 20;

std::string override_hint() {
  std::string names;
  for (const auto& n : ChatTemplate::builtin_names()) names += (names.empty() ? "" : ", ") + n;
  return "pass --chat-template NAME|FILE to use another template (built-ins: " + names + ")";
}

// Limits scale with the conversation: a long document passes through the template, and a
// template may copy it a few times (trim, split, concatenation), but not without bound.
jinja::RenderOptions render_options(size_t input_bytes, const std::function<std::tm()>& now) {
  jinja::RenderOptions o;
  o.limits.max_bytes = (size_t{64} << 20) + 16 * input_bytes;
  o.limits.max_steps = 20'000'000 + static_cast<int64_t>(input_bytes);
  o.now = now;
  return o;
}

}  // namespace

ChatTemplate ChatTemplate::parse(const std::string& source, std::string bos_token,
                                 std::string eos_token) {
  SA_CHECK(!source.empty(), "the chat template is empty; ", override_hint());
  SA_CHECK(source.size() <= kMaxTemplateBytes, "the chat template has ", source.size(),
           " bytes, more than the ", kMaxTemplateBytes, " a chat template may have; ",
           override_hint());
  ChatTemplate t;
  try {
    t.tmpl_ = std::make_shared<const jinja::Template>(source);
  } catch (const Error& e) {
    fail("chat template: ", e.what(), "; ", override_hint());
  }
  t.source_ = source;
  t.bos_ = std::move(bos_token);
  t.eos_ = std::move(eos_token);
  if (!t.bos_.empty()) {
    // Whether the template writes BOS itself, seen on the smallest conversation; a template
    // that refuses it is taken not to.
    try {
      t.starts_with_bos_ = t.render({{"user", "Hi"}}, true).rfind(t.bos_, 0) == 0;
    } catch (const Error&) {
      t.starts_with_bos_ = false;
    }
  }
  return t;
}

ChatTemplate ChatTemplate::for_tokenizer(const Tokenizer& tok,
                                         const std::string& override_name_or_file) {
  std::string bos = tok.bos_id() >= 0 ? tok.token_text(tok.bos_id()) : "";
  std::string eos = tok.eos_id() >= 0 ? tok.token_text(tok.eos_id()) : "";
  const std::string& o = override_name_or_file;
  if (o.empty()) {
    SA_CHECK(!tok.chat_template().empty(),
             "the model has no chat template (tokenizer.chat_template is empty); ",
             override_hint());
    return parse(tok.chat_template(), std::move(bos), std::move(eos));
  }
  for (const auto& name : builtin_names()) {
    if (o == name) return builtin(name, std::move(bos), std::move(eos));
  }
  std::ifstream f(o, std::ios::binary);
  SA_CHECK(f.good(), "--chat-template ", o, ": neither a built-in template nor a readable file; ",
           override_hint());
  std::ostringstream text;
  text << f.rdbuf();
  SA_CHECK(!f.bad(), "cannot read the chat template file ", o);
  const std::string src = text.str();
  SA_CHECK(!src.empty(), "the chat template file ", o, " is empty");
  try {
    return parse(src, std::move(bos), std::move(eos));
  } catch (const Error& e) {
    fail(o, ": ", e.what());
  }
}

std::string ChatTemplate::render(const std::vector<ChatMessage>& msgs,
                                 bool add_generation_prompt) const {
  SA_CHECK(tmpl_, "ChatTemplate: no template (make one with parse, builtin or for_tokenizer)");
  SA_CHECK(!msgs.empty(), "cannot render an empty conversation");
  // The variables transformers' apply_chat_template passes: the messages, no tools or
  // documents, the generation flag and the tokenizer's special tokens that are set.
  nlohmann::ordered_json vars;
  vars["messages"] = nlohmann::ordered_json::array();
  size_t bytes = source_.size();
  for (const auto& m : msgs) {
    vars["messages"].push_back({{"role", m.role}, {"content", m.content}});
    bytes += m.role.size() + m.content.size();
  }
  vars["tools"] = nullptr;
  vars["documents"] = nullptr;
  vars["add_generation_prompt"] = add_generation_prompt;
  if (!bos_.empty()) vars["bos_token"] = bos_;
  if (!eos_.empty()) vars["eos_token"] = eos_;
  try {
    return tmpl_->render(vars, render_options(bytes, now_));
  } catch (const jinja::RaisedError& e) {
    fail("the chat template refused the conversation: ", e.what());
  } catch (const Error& e) {
    fail("chat template: ", e.what(), "; ", override_hint());
  }
}

}  // namespace starattn
