#include "tokenizer/chat.h"

#include "starattn/error.h"
#include "tokenizer/utf8.h"

namespace starattn {

namespace {

bool has(const std::string& s, const char* what) {
  return s.find(what) != std::string::npos;
}

// Undoes the escapes a Jinja string literal may hold (\n, \t, \', \", \\).
std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      char e = s[++i];
      out += e == 'n' ? '\n' : e == 't' ? '\t' : e;
    } else {
      out += s[i];
    }
  }
  return out;
}

// A ChatML template's built-in system prompt: the first literal
// '<|im_start|>system\n...<|im_end|>' whose body is plain text, not an expression.
std::string chatml_default_system(const std::string& t) {
  const std::string open = "<|im_start|>system", close = "<|im_end|>";
  for (size_t at = t.find(open); at != std::string::npos; at = t.find(open, at + 1)) {
    size_t body = at + open.size();
    if (t.compare(body, 1, "\n") == 0) {
      body += 1;
    } else if (t.compare(body, 2, "\\n") == 0) {
      body += 2;
    } else {
      continue;
    }
    size_t end = t.find(close, body);
    if (end == std::string::npos) break;
    std::string text = t.substr(body, end - body);
    if (text.find_first_of("'\"{}+") == std::string::npos) return unescape(text);
  }
  return "";
}

// Jinja's `trim` filter is Python's str.strip(): it removes str.isspace() code points.
std::string py_strip(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e) {
    char32_t cp;
    size_t n = utf8::next(s, b, &cp);
    if (cp == utf8::kInvalid || !utf8::is_python_space(cp)) break;
    b += n;
  }
  while (e > b) {
    size_t p = e - 1;  // lead byte of the last character
    while (p > b && e - p < 4 && (static_cast<unsigned char>(s[p]) & 0xC0) == 0x80) --p;
    char32_t cp;
    if (p + utf8::next(s, p, &cp) != e || cp == utf8::kInvalid || !utf8::is_python_space(cp)) {
      break;
    }
    e = p;
  }
  return s.substr(b, e - b);
}

}  // namespace

ChatTemplate parse_chat_template(const std::string& t) {
  SA_CHECK(!t.empty(), "the model has no chat template (tokenizer.chat_template is empty)");
  if (has(t, "<|im_start|>") && has(t, "<|im_end|>")) {
    SA_CHECK(!has(t, "<think>"),
             "ChatML chat template with <think> reasoning blocks is not "
             "supported");
    return ChatTemplate{ChatFormat::ChatML, chatml_default_system(t)};
  }
  if (has(t, "<|start_header_id|>") && has(t, "<|eot_id|>")) {
    SA_CHECK(!has(t, "Cutting Knowledge Date") && !has(t, "date_string"),
             "Llama-3.1+ chat template (system header with dates and tools) is not supported; "
             "only the Llama-3 instruct template");
    return ChatTemplate{ChatFormat::Llama3, ""};
  }
  fail("unrecognised chat template (neither ChatML <|im_start|> nor Llama-3 <|start_header_id|>): ",
       t.substr(0, 80), t.size() > 80 ? "..." : "");
}

std::string render_chat(const ChatTemplate& tmpl, const std::vector<ChatMessage>& msgs,
                        bool add_generation_prompt) {
  SA_CHECK(!msgs.empty(), "cannot render an empty conversation");
  std::string out;
  switch (tmpl.format) {
    case ChatFormat::ChatML:
      if (msgs[0].role != "system" && !tmpl.default_system.empty()) {
        out += "<|im_start|>system\n" + tmpl.default_system + "<|im_end|>\n";
      }
      for (const auto& m : msgs) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
      if (add_generation_prompt) out += "<|im_start|>assistant\n";
      return out;
    case ChatFormat::Llama3:
      out = "<|begin_of_text|>";
      for (const auto& m : msgs) {
        out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + py_strip(m.content) +
               "<|eot_id|>";
      }
      if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      return out;
  }
  fail("render_chat: unknown ChatFormat ", static_cast<int>(tmpl.format));
}

}  // namespace starattn
