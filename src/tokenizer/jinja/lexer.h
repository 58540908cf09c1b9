// Jinja's lexer, as jinja2 3.1 runs it for transformers' chat templates: trim_blocks and
// lstrip_blocks on, keep_trailing_newline off, the default delimiters {{ }}, {% %} and {# #},
// whitespace control with - and +, {% raw %} blocks. Newlines (\r\n, \r, \n) become \n.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace starattn::jinja {

enum class Tok : uint8_t {
  Data,        // template text between tags
  VarBegin,    // {{
  VarEnd,      // }}
  BlockBegin,  // {%
  BlockEnd,    // %}
  Name,
  String,  // text: the value with escapes undone
  Int,
  Float,
  Op,  // text: the operator, e.g. "==", "(", "|"
  Eof,
};

struct Token {
  Tok type;
  std::string text;
  int64_t ival = 0;
  double fval = 0;
  size_t pos = 0;  // byte offset in Source::text
};

// A template's text after newline normalisation, with offset -> line:column for messages.
struct Source {
  std::string text;
  explicit Source(std::string_view raw);
  std::string where(size_t pos) const;  // "line 3, column 14"
};

// Throws Error ("line L, column C: ...") for text the lexer cannot read.
std::vector<Token> lex(const Source& src);

}  // namespace starattn::jinja
