// The built-in chat templates that --chat-template NAME selects, written here in Jinja. Each
// renders what the model family's own template renders for plain role/content conversations;
// tools/make_chat_fixtures.py reads them from this file (the R"jinja(...)jinja" literals) and
// checks them against jinja2 and, where a real template is at hand, against it.
#include <utility>
#include <vector>

#include "starattn/error.h"
#include "tokenizer/chat.h"

namespace starattn {

namespace {

const std::vector<std::pair<std::string, std::string>>& builtins() {
  static const std::vector<std::pair<std::string, std::string>> table = {
      // ChatML (Qwen2, SmolLM2 without its default system prompt, many fine-tunes).
      {"chatml", R"jinja({%- for message in messages %}
    {{- '<|im_start|>' ~ message['role'] ~ '\n' ~ message['content'] ~ '<|im_end|>\n' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %})jinja"},
      // Llama 2 chat: the system prompt is folded into the first user turn inside <<SYS>>;
      // every user turn opens with BOS, every assistant turn closes with EOS.
      {"llama2", R"jinja({%- if messages[0]['role'] == 'system' %}
    {%- set system_text = messages[0]['content'] %}
    {%- set turns = messages[1:] %}
{%- else %}
    {%- set system_text = none %}
    {%- set turns = messages %}
{%- endif %}
{%- for message in turns %}
    {%- if (message['role'] == 'user') != (loop.index0 is even) %}
        {{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}
    {%- endif %}
    {%- set text = message['content'] %}
    {%- if loop.first and system_text is not none %}
        {%- set text = '<<SYS>>\n' ~ system_text ~ '\n<</SYS>>\n\n' ~ text %}
    {%- endif %}
    {%- if message['role'] == 'user' %}
        {{- bos_token ~ '[INST] ' ~ text.strip() ~ ' [/INST]' }}
    {%- elif message['role'] == 'assistant' %}
        {{- ' ' ~ text.strip() ~ ' ' ~ eos_token }}
    {%- endif %}
{%- endfor %})jinja"},
      // Llama 3 instruct: header per turn, contents trimmed, BOS once at the start.
      {"llama3", R"jinja({{- bos_token }}
{%- for message in messages %}
    {{- '<|start_header_id|>' ~ message['role'] ~ '<|end_header_id|>\n\n' }}
    {{- message['content'] | trim }}
    {{- '<|eot_id|>' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %})jinja"},
      // Mistral instruct: [INST] ... [/INST] turns after one BOS; a system message is put in
      // front of the first user message.
      {"mistral", R"jinja({%- if messages[0]['role'] == 'system' %}
    {%- set system_text = messages[0]['content'] %}
    {%- set turns = messages[1:] %}
{%- else %}
    {%- set system_text = none %}
    {%- set turns = messages %}
{%- endif %}
{{- bos_token }}
{%- for message in turns %}
    {%- if (message['role'] == 'user') != (loop.index0 is even) %}
        {{- raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant/...') }}
    {%- endif %}
    {%- if message['role'] == 'user' %}
        {%- set text = message['content'] %}
        {%- if loop.first and system_text is not none %}
            {%- set text = system_text ~ '\n\n' ~ text %}
        {%- endif %}
        {{- '[INST] ' ~ text ~ ' [/INST]' }}
    {%- elif message['role'] == 'assistant' %}
        {{- ' ' ~ message['content'] ~ eos_token }}
    {%- else %}
        {{- raise_exception('Only user and assistant messages (after an optional system message) are supported') }}
    {%- endif %}
{%- endfor %})jinja"},
  };
  return table;
}

}  // namespace

const std::vector<std::string>& ChatTemplate::builtin_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& [name, src] : builtins()) out.push_back(name);
    return out;
  }();
  return names;
}

const std::string& ChatTemplate::builtin_source(const std::string& name) {
  for (const auto& [n, src] : builtins()) {
    if (n == name) return src;
  }
  std::string known;
  for (const auto& n : builtin_names()) known += (known.empty() ? "" : ", ") + n;
  fail("no built-in chat template named '", name, "' (built-ins: ", known, ")");
}

ChatTemplate ChatTemplate::builtin(const std::string& name, std::string bos_token,
                                   std::string eos_token) {
  return parse(builtin_source(name), std::move(bos_token), std::move(eos_token));
}

}  // namespace starattn
