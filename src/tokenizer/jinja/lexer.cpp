#include "tokenizer/jinja/lexer.h"

#include <cerrno>
#include <cstdlib>

#include "starattn/error.h"
#include "tokenizer/jinja/pystr.h"
#include "tokenizer/utf8.h"

namespace starattn::jinja {

namespace {

// Operators, longest first (jinja2 matches the longest).
constexpr const char* kOperators[] = {"//", "**", "==", "!=", ">=", "<=", "+", "-", "/",
                                      "*",  "%",  "~",  "[",  "]",  "(",  ")", "{", "}",
                                      ">",  "<",  "=",  ".",  ":",  "|",  ",", ";"};

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_name_char(char c) {
  return is_name_start(c) || is_digit(c);
}

// Length of the Python-whitespace code point at s[i], or 0.
size_t space_at(std::string_view s, size_t i) {
  if (i >= s.size()) return 0;
  char32_t cp;
  size_t n = utf8::next(s, i, &cp);
  return pystr::is_space(cp) ? n : 0;
}

size_t skip_spaces(std::string_view s, size_t i) {
  while (size_t n = space_at(s, i)) i += n;
  return i;
}

// Python's str.rstrip() on text: the length without trailing whitespace.
size_t rstrip_length(std::string_view s) {
  size_t keep = 0;
  for (size_t i = 0; i < s.size();) {
    size_t n = space_at(s, i);
    if (n) {
      i += n;
    } else {
      char32_t cp;
      i += utf8::next(s, i, &cp);
      keep = i;
    }
  }
  return keep;
}

// True when s is one or more whitespace code points (jinja2's \s+ fullmatch).
bool all_space(std::string_view s) {
  return !s.empty() && skip_spaces(s, 0) == s.size();
}

// Digits with single underscores between them ((\d+_)*\d+); returns the end or `at` for none.
size_t digits_end(std::string_view s, size_t at) {
  size_t i = at;
  if (i >= s.size() || !is_digit(s[i])) return at;
  while (true) {
    while (i < s.size() && is_digit(s[i])) ++i;
    if (i + 1 < s.size() && s[i] == '_' && is_digit(s[i + 1])) {
      ++i;
      continue;
    }
    return i;
  }
}

class Lexer {
 public:
  explicit Lexer(const Source& src) : src_(src), s_(src.text) {}

  std::vector<Token> run() {
    while (pos_ < s_.size()) root();
    push(Tok::Eof, "", s_.size());
    return std::move(out_);
  }

 private:
  [[noreturn]] void error(size_t at, const std::string& msg) const {
    fail(src_.where(at), ": ", msg);
  }

  void push(Tok t, std::string text, size_t at) {
    Token tok;
    tok.type = t;
    tok.text = std::move(text);
    tok.pos = at;
    out_.push_back(std::move(tok));
  }

  // Text up to the next tag, then the tag.
  void root() {
    size_t tag = s_.find('{', pos_);
    while (tag != std::string_view::npos && tag + 1 < s_.size() && s_[tag + 1] != '{' &&
           s_[tag + 1] != '%' && s_[tag + 1] != '#') {
      tag = s_.find('{', tag + 1);
    }
    if (tag == std::string_view::npos || tag + 1 >= s_.size()) {
      push(Tok::Data, std::string(s_.substr(pos_)), pos_);
      pos_ = s_.size();
      return;
    }
    const char kind = s_[tag + 1];
    size_t after = tag + 2;
    const char sign = after < s_.size() && (s_[after] == '-' || s_[after] == '+') ? s_[after] : 0;
    if (sign) ++after;
    size_t raw_end = 0;
    const bool raw = kind == '%' && match_raw_begin(after, &raw_end);
    emit_text(s_.substr(pos_, tag - pos_), pos_, sign, kind != '{');
    if (raw) {
      raw_block(raw_end);
    } else if (kind == '#') {
      comment(tag, after);
    } else {
      tag_tokens(kind == '{', tag, after);
    }
  }

  // Data before a tag, with the tag's whitespace control applied to it.
  void emit_text(std::string_view text, size_t at, char sign, bool lstrip_applies) {
    if (sign == '-') {
      text = text.substr(0, rstrip_length(text));
    } else if (sign != '+' && lstrip_applies) {
      // lstrip_blocks: drop the indentation before a block or comment tag that starts a line.
      const size_t nl = text.rfind('\n');
      const size_t line = nl == std::string_view::npos ? 0 : nl + 1;
      if ((line > 0 || line_starting_) && all_space(text.substr(line))) text = text.substr(0, line);
    }
    if (!text.empty()) push(Tok::Data, std::string(text), at);
  }

  // {%[-+]? raw [-]?%}: sets *end past the tag.
  bool match_raw_begin(size_t at, size_t* end) const {
    size_t i = skip_spaces(s_, at);
    if (s_.compare(i, 3, "raw") != 0) return false;
    i = skip_spaces(s_, i + 3);
    if (s_.compare(i, 3, "-%}") == 0) {
      *end = skip_spaces(s_, i + 3);
      return true;
    }
    if (s_.compare(i, 2, "%}") == 0) {
      *end = i + 2;
      return true;
    }
    return false;
  }

  void raw_block(size_t body) {
    for (size_t t = s_.find("{%", body); t != std::string_view::npos; t = s_.find("{%", t + 1)) {
      size_t i = t + 2;
      const char sign = i < s_.size() && (s_[i] == '-' || s_[i] == '+') ? s_[i] : 0;
      if (sign) ++i;
      i = skip_spaces(s_, i);
      if (s_.compare(i, 6, "endraw") != 0) continue;
      i = skip_spaces(s_, i + 6);
      size_t end;
      if (!block_end_at(i, &end)) continue;
      // The raw tag's own end decides whether its body starts a line.
      line_starting_ = body > 0 && s_[body - 1] == '\n';
      emit_text(s_.substr(body, t - body), body, sign, true);
      pos_ = end;
      line_starting_ = end > 0 && s_[end - 1] == '\n';
      return;
    }
    error(body, "missing {% endraw %} for a {% raw %} block");
  }

  // The end of a block tag at i (+%}, -%} and following whitespace, %} and one newline).
  bool block_end_at(size_t i, size_t* end) const {
    if (s_.compare(i, 3, "+%}") == 0) {
      *end = i + 3;
    } else if (s_.compare(i, 3, "-%}") == 0) {
      *end = skip_spaces(s_, i + 3);
    } else if (s_.compare(i, 2, "%}") == 0) {
      *end = i + 2 < s_.size() && s_[i + 2] == '\n' ? i + 3 : i + 2;  // trim_blocks
    } else {
      return false;
    }
    return true;
  }

  void comment(size_t tag, size_t body) {
    size_t close = s_.find("#}", body);
    if (close == std::string_view::npos) error(tag, "missing end of comment tag #}");
    size_t end;
    if (close > body && s_[close - 1] == '+') {
      end = close + 2;
    } else if (close > body && s_[close - 1] == '-') {
      end = skip_spaces(s_, close + 2);
    } else {
      end = close + 2 < s_.size() && s_[close + 2] == '\n' ? close + 3 : close + 2;
    }
    pos_ = end;
    line_starting_ = s_[end - 1] == '\n';
  }

  // The tokens of a {{ }} or {% %} tag up to and including its end.
  void tag_tokens(bool variable, size_t tag, size_t at) {
    push(variable ? Tok::VarBegin : Tok::BlockBegin, "", tag);
    std::string balance;  // closing brackets expected, innermost last
    size_t i = at;
    while (true) {
      if (i >= s_.size()) {
        error(tag, variable ? "unclosed {{ ... }} tag: missing }}"
                            : "unclosed {% ... %} tag: missing %}");
      }
      if (balance.empty()) {
        size_t end = 0;
        bool done = false;
        if (variable) {
          if (s_.compare(i, 3, "-}}") == 0) {
            end = skip_spaces(s_, i + 3);
            done = true;
          } else if (s_.compare(i, 2, "}}") == 0) {
            end = i + 2;
            done = true;
          }
        } else {
          done = block_end_at(i, &end);
        }
        if (done) {
          push(variable ? Tok::VarEnd : Tok::BlockEnd, "", i);
          pos_ = end;
          line_starting_ = s_[end - 1] == '\n';
          return;
        }
      }
      if (size_t n = space_at(s_, i)) {
        i = skip_spaces(s_, i + n);
        continue;
      }
      const char c = s_[i];
      if (is_digit(c)) {
        i = number(i);
      } else if (is_name_start(c)) {
        size_t j = i;
        while (j < s_.size() && is_name_char(s_[j])) ++j;
        push(Tok::Name, std::string(s_.substr(i, j - i)), i);
        i = j;
      } else if (c == '\'' || c == '"') {
        i = string_literal(i);
      } else {
        i = op(i, balance);
      }
    }
  }

  size_t number(size_t i) {
    // Float: digits, then a fraction and/or an exponent; not right after a '.' (x.0.1).
    const bool after_dot = i > 0 && s_[i - 1] == '.';
    const size_t int_end = digits_end(s_, i);
    size_t j = int_end;
    bool is_float = false;
    if (!after_dot) {
      if (j + 1 < s_.size() && s_[j] == '.' && is_digit(s_[j + 1])) {
        j = digits_end(s_, j + 1);
        is_float = true;
      }
      if (j < s_.size() && (s_[j] == 'e' || s_[j] == 'E')) {
        size_t k = j + 1;
        if (k < s_.size() && (s_[k] == '+' || s_[k] == '-')) ++k;
        const size_t e = digits_end(s_, k);
        if (e > k) {
          j = e;
          is_float = true;
        }
      }
    }
    if (is_float) {
      std::string text;
      for (size_t k = i; k < j; ++k) {
        if (s_[k] != '_') text += s_[k];
      }
      Token t;
      t.type = Tok::Float;
      t.pos = i;
      t.fval = std::strtod(text.c_str(), nullptr);
      out_.push_back(t);
      return j;
    }
    // Integer: 0b / 0o / 0x prefixes, a decimal without leading zeros, or zeros.
    int base = 10;
    size_t k = i;
    const char p = i + 1 < s_.size() ? static_cast<char>(s_[i + 1] | 0x20) : 0;
    if (s_[i] == '0' && (p == 'b' || p == 'o' || p == 'x')) {
      base = p == 'b' ? 2 : p == 'o' ? 8 : 16;
      k = i + 2;
    }
    auto digit_ok = [&](char c) {
      if (base == 2) return c == '0' || c == '1';
      if (base == 8) return c >= '0' && c <= '7';
      if (base == 16) return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
      return is_digit(c);
    };
    std::string digits;
    size_t e = k;
    if (base == 10 && s_[i] == '0') {
      // "0(_?0)*": zeros only; "012" lexes as 0 then 12, as jinja2 does.
      digits = "0";
      e = i + 1;
      while (e < s_.size() &&
             (s_[e] == '0' || (s_[e] == '_' && e + 1 < s_.size() && s_[e + 1] == '0'))) {
        ++e;
      }
    } else {
      while (e < s_.size()) {
        if (digit_ok(s_[e])) {
          digits += s_[e++];
        } else if (s_[e] == '_' && e + 1 < s_.size() && digit_ok(s_[e + 1]) &&
                   (e > k || base != 10)) {
          ++e;
        } else {
          break;
        }
      }
      if (digits.empty()) error(i, "malformed number literal");
    }
    errno = 0;
    char* endp = nullptr;
    const long long v = std::strtoll(digits.c_str(), &endp, base);
    SA_CHECK(errno != ERANGE, src_.where(i), ": integer literal ", digits,
             " does not fit in 64 bits");
    Token t;
    t.type = Tok::Int;
    t.pos = i;
    t.ival = v;
    out_.push_back(t);
    return e;
  }

  size_t string_literal(size_t i) {
    const char q = s_[i];
    size_t j = i + 1;
    while (j < s_.size() && s_[j] != q) j += s_[j] == '\\' ? 2 : 1;
    if (j >= s_.size()) error(i, "unterminated string literal");
    std::string value;
    try {
      value = pystr::unescape(s_.substr(i + 1, j - i - 1));
    } catch (const Error& e) {
      error(i, e.what());
    }
    push(Tok::String, std::move(value), i);
    return j + 1;
  }

  size_t op(size_t i, std::string& balance) {
    for (const char* o : kOperators) {
      const std::string_view ov(o);
      if (s_.compare(i, ov.size(), ov) != 0) continue;
      const char c = o[0];
      if (ov.size() == 1 && (c == '(' || c == '[' || c == '{')) {
        balance += c == '(' ? ')' : c == '[' ? ']' : '}';
      } else if (ov.size() == 1 && (c == ')' || c == ']' || c == '}')) {
        if (balance.empty()) error(i, std::string("unexpected '") + c + "'");
        if (balance.back() != c) {
          error(i, std::string("unexpected '") + c + "', expected '" + balance.back() + "'");
        }
        balance.pop_back();
      }
      push(Tok::Op, std::string(ov), i);
      return i + ov.size();
    }
    char32_t cp;
    const size_t n = utf8::next(s_, i, &cp);
    error(i, "unexpected character '" + std::string(s_.substr(i, n)) + "' in a tag");
  }

  const Source& src_;
  std::string_view s_;
  size_t pos_ = 0;
  bool line_starting_ = true;  // the last thing lexed ended a line (or nothing was lexed yet)
  std::vector<Token> out_;
};

}  // namespace

Source::Source(std::string_view raw) {
  text.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\r') {
      text += '\n';
      if (i + 1 < raw.size() && raw[i + 1] == '\n') ++i;
    } else {
      text += raw[i];
    }
  }
  // keep_trailing_newline=False: one final newline of the template is dropped.
  if (!text.empty() && text.back() == '\n') text.pop_back();
}

std::string Source::where(size_t pos) const {
  size_t line = 1, col = 1;
  for (size_t k = 0; k < pos && k < text.size(); ++k) {
    if (text[k] == '\n') {
      ++line;
      col = 1;
    } else if ((static_cast<unsigned char>(text[k]) & 0xC0) != 0x80) {
      ++col;
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(col);
}

std::vector<Token> lex(const Source& src) {
  return Lexer(src).run();
}

}  // namespace starattn::jinja
