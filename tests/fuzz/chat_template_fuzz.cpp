// The Jinja chat-template interpreter: template text and the conversation both come from the
// input. Layout: the template's source, then NUL-separated role / content strings (none: one user
// message). Rendering runs under tight limits (steps, bytes, elements) so that a template that
// loops or doubles a string forever ends with the interpreter's own Error in milliseconds instead
// of running into libFuzzer's timeout: that the limits are honoured is part of what is fuzzed.
#include <cstdint>
#include <ctime>
#include <nlohmann/json.hpp>
#include <string>

#include "fuzz_util.h"
#include "starattn/error.h"
#include "tokenizer/jinja/template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto parts = starattn::fuzz::split_at_nul(data, size);
  nlohmann::ordered_json vars;
  vars["messages"] = nlohmann::ordered_json::array();
  if (parts.size() < 3) {
    vars["messages"].push_back({{"role", "user"}, {"content", "Hi"}});
  }
  for (size_t i = 1; i + 1 < parts.size(); i += 2) {
    // Any bytes: a prompt file or a terminal can hold invalid UTF-8.
    const std::string role(parts[i]), content(parts[i + 1]);
    vars["messages"].push_back({{"role", role}, {"content", content}});
  }
  // The variables transformers' apply_chat_template passes (as ChatTemplate::render does).
  vars["tools"] = nullptr;
  vars["documents"] = nullptr;
  vars["add_generation_prompt"] = (size & 1) != 0;
  vars["bos_token"] = "<s>";
  vars["eos_token"] = "</s>";

  starattn::jinja::RenderOptions opt;
  opt.limits.max_steps = 200'000;
  opt.limits.max_bytes = size_t{1} << 20;
  opt.limits.max_elements = 50'000;
  opt.now = [] {
    std::tm t{};
    t.tm_year = 124;
    t.tm_mon = 6;
    t.tm_mday = 26;
    return t;
  };
  try {
    const starattn::jinja::Template tmpl(parts[0]);
    tmpl.render(vars, opt);
  } catch (const starattn::Error&) {  // RaisedError included
  }
  return 0;
}
