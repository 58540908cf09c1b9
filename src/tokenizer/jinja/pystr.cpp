#include "tokenizer/jinja/pystr.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <locale.h>
#include <pcre2.h>
#include <string.h>
#include <wctype.h>

#include <algorithm>

#include "starattn/error.h"
#include "tokenizer/utf8.h"

namespace starattn::jinja::pystr {

namespace {

// Decodes s into code points; a malformed byte becomes 0xDC00 + byte (Python's surrogateescape),
// so it survives a round trip through encode().
std::u32string decode(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    char32_t cp;
    size_t n = utf8::next(s, i, &cp);
    out += cp == utf8::kInvalid ? 0xDC00 + static_cast<unsigned char>(s[i]) : cp;
    i += n;
  }
  return out;
}

std::string encode(std::u32string_view cps) {
  std::string out;
  out.reserve(cps.size());
  for (char32_t c : cps) {
    if (c >= 0xDC80 && c <= 0xDCFF) {
      out += static_cast<char>(c - 0xDC00);
    } else {
      utf8::append(out, c);
    }
  }
  return out;
}

// The C library's Unicode case tables (glibc's C.UTF-8); ASCII only where that locale is absent.
locale_t utf8_locale() {
  static const locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(nullptr));
  return loc;
}

char32_t to_upper(char32_t c) {
  if (c < 0x80) return c >= 'a' && c <= 'z' ? c - 32 : c;
  locale_t loc = utf8_locale();
  return loc ? static_cast<char32_t>(towupper_l(static_cast<wint_t>(c), loc)) : c;
}

char32_t to_lower(char32_t c) {
  if (c < 0x80) return c >= 'A' && c <= 'Z' ? c + 32 : c;
  locale_t loc = utf8_locale();
  return loc ? static_cast<char32_t>(towlower_l(static_cast<wint_t>(c), loc)) : c;
}

bool is_cased(char32_t c) {
  return to_upper(c) != c || to_lower(c) != c;
}

template <typename F>
std::string map_chars(std::string_view s, F f) {
  std::u32string cps = decode(s);
  for (char32_t& c : cps) c = f(c);
  return encode(cps);
}

// Python's str.isprintable(): false for categories Cc, Cf, Cs, Co, Cn, Zl, Zp and Zs other
// than the ASCII space. PCRE2 carries the Unicode category tables.
bool is_printable(char32_t c) {
  if (c < 0x80) return c >= 0x20 && c < 0x7F;
  if (c >= 0xD800 && c <= 0xDFFF) return false;
  struct Pattern {
    pcre2_code* code = nullptr;
    Pattern() {
      const char* p = "[\\p{Cc}\\p{Cf}\\p{Co}\\p{Cn}\\p{Zl}\\p{Zp}\\p{Zs}]";
      int err = 0;
      PCRE2_SIZE at = 0;
      code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(p), PCRE2_ZERO_TERMINATED,
                           PCRE2_UTF | PCRE2_UCP, &err, &at, nullptr);
    }
    ~Pattern() { pcre2_code_free(code); }
  };
  static const Pattern pat;
  if (!pat.code || c > 0x10FFFF) return false;
  std::string u;
  utf8::append(u, c);
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(pat.code, nullptr);
  int rc =
      pcre2_match(pat.code, reinterpret_cast<PCRE2_SPTR>(u.data()), u.size(), 0, 0, md, nullptr);
  pcre2_match_data_free(md);
  return rc < 0;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void append_hex(std::string& out, const char* prefix, uint32_t v, int digits) {
  static const char* kHex = "0123456789abcdef";
  out += prefix;
  for (int d = digits - 1; d >= 0; --d) out += kHex[(v >> (4 * d)) & 0xF];
}

}  // namespace

size_t length(std::string_view s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++n) {
    char32_t cp;
    i += utf8::next(s, i, &cp);
  }
  return n;
}

std::vector<size_t> offsets(std::string_view s) {
  std::vector<size_t> out;
  out.reserve(s.size() + 1);
  for (size_t i = 0; i < s.size();) {
    out.push_back(i);
    char32_t cp;
    i += utf8::next(s, i, &cp);
  }
  out.push_back(s.size());
  return out;
}

std::vector<std::string> chars(std::string_view s) {
  std::vector<size_t> at = offsets(s);
  std::vector<std::string> out;
  out.reserve(at.size() - 1);
  for (size_t k = 0; k + 1 < at.size(); ++k) out.emplace_back(s.substr(at[k], at[k + 1] - at[k]));
  return out;
}

bool is_space(char32_t cp) {
  return cp != utf8::kInvalid && utf8::is_python_space(cp);
}

std::string strip(std::string_view s, bool left, bool right) {
  // Walks in from both ends without decoding the middle: a long document passes through trim.
  size_t b = 0, e = s.size();
  while (left && b < e) {
    char32_t cp;
    const size_t n = utf8::next(s, b, &cp);
    if (!is_space(cp)) break;
    b += n;
  }
  while (right && e > b) {
    size_t p = e - 1;  // lead byte of the last code point
    while (p > b && e - p < 4 && (static_cast<unsigned char>(s[p]) & 0xC0) == 0x80) --p;
    char32_t cp;
    if (p + utf8::next(s, p, &cp) != e || !is_space(cp)) break;
    e = p;
  }
  return std::string(s.substr(b, e - b));
}

std::string strip_chars(std::string_view s, std::string_view chars_, bool left, bool right) {
  std::u32string cps = decode(s), set = decode(chars_);
  std::sort(set.begin(), set.end());  // a long chars argument must not make this quadratic
  auto in_set = [&](char32_t c) { return std::binary_search(set.begin(), set.end(), c); };
  size_t b = 0, e = cps.size();
  while (left && b < e && in_set(cps[b])) ++b;
  while (right && e > b && in_set(cps[e - 1])) --e;
  return encode(std::u32string_view(cps).substr(b, e - b));
}

std::vector<std::string> split_whitespace(std::string_view s, int64_t maxsplit, bool from_right) {
  std::u32string cps = decode(s);
  std::vector<std::string> out;
  const size_t n = cps.size();
  if (!from_right) {
    size_t i = 0;
    while (true) {
      while (i < n && is_space(cps[i])) ++i;
      if (i == n) break;
      if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
        out.push_back(encode(std::u32string_view(cps).substr(i)));  // the rest, as it is
        break;
      }
      size_t j = i;
      while (j < n && !is_space(cps[j])) ++j;
      out.push_back(encode(std::u32string_view(cps).substr(i, j - i)));
      i = j;
    }
    return out;
  }
  size_t i = n;
  while (true) {
    while (i > 0 && is_space(cps[i - 1])) --i;
    if (i == 0) break;
    if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
      out.push_back(encode(std::u32string_view(cps).substr(0, i)));  // the rest, as it is
      break;
    }
    size_t j = i;
    while (j > 0 && !is_space(cps[j - 1])) --j;
    out.push_back(encode(std::u32string_view(cps).substr(j, i - j)));
    i = j;
  }
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<std::string> split(std::string_view s, std::string_view sep, int64_t maxsplit,
                               bool from_right) {
  SA_CHECK(!sep.empty(), "empty separator");
  if (from_right) {
    // Matching from the right is matching from the left in the reversed bytes.
    const std::string rs(s.rbegin(), s.rend()), rsep(sep.rbegin(), sep.rend());
    std::vector<std::string> out = split(rs, rsep, maxsplit, false);
    for (std::string& piece : out) std::reverse(piece.begin(), piece.end());
    std::reverse(out.begin(), out.end());
    return out;
  }
  std::vector<std::string> out;
  size_t at = 0;
  while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
    const size_t hit = pystr::search(s, sep, at);
    if (hit == std::string_view::npos) break;
    out.emplace_back(s.substr(at, hit - at));
    at = hit + sep.size();
  }
  out.emplace_back(s.substr(at));
  return out;
}

std::vector<std::string> splitlines(std::string_view s, bool keepends) {
  std::u32string cps = decode(s);
  std::vector<std::string> out;
  auto is_break = [](char32_t c) {
    return c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || (c >= 0x1C && c <= 0x1E) ||
           c == 0x85 || c == 0x2028 || c == 0x2029;
  };
  size_t start = 0, i = 0;
  while (i < cps.size()) {
    if (!is_break(cps[i])) {
      ++i;
      continue;
    }
    size_t eol = i;
    i += (cps[i] == '\r' && i + 1 < cps.size() && cps[i + 1] == '\n') ? 2 : 1;
    out.push_back(encode(std::u32string_view(cps).substr(start, (keepends ? i : eol) - start)));
    start = i;
  }
  if (start < cps.size()) out.push_back(encode(std::u32string_view(cps).substr(start)));
  return out;
}

std::string replace(std::string_view s, std::string_view old, std::string_view repl,
                    int64_t count_) {
  std::string out;
  if (old.empty()) {
    // Python inserts repl before every code point and at the end.
    std::vector<size_t> at = offsets(s);
    int64_t done = 0;
    for (size_t k = 0; k + 1 < at.size(); ++k) {
      if (count_ < 0 || done < count_) {
        out += repl;
        ++done;
      }
      out += s.substr(at[k], at[k + 1] - at[k]);
    }
    if (count_ < 0 || done < count_) out += repl;
    return out;
  }
  size_t at = 0;
  int64_t done = 0;
  while (count_ < 0 || done < count_) {
    const size_t hit = pystr::search(s, old, at);
    if (hit == std::string_view::npos) break;
    out += s.substr(at, hit - at);
    out += repl;
    at = hit + old.size();
    ++done;
  }
  out += s.substr(at);
  return out;
}

int64_t count(std::string_view s, std::string_view sub) {
  if (sub.empty()) return static_cast<int64_t>(length(s)) + 1;
  int64_t n = 0;
  for (size_t at = pystr::search(s, sub, 0); at != std::string_view::npos;
       at = pystr::search(s, sub, at + sub.size())) {
    ++n;
  }
  return n;
}

size_t search(std::string_view hay, std::string_view needle, size_t from) {
  if (from > hay.size()) return std::string_view::npos;
  if (needle.empty()) return from;
  const void* p = memmem(hay.data() + from, hay.size() - from, needle.data(), needle.size());
  return p ? static_cast<size_t>(static_cast<const char*>(p) - hay.data()) : std::string_view::npos;
}

int64_t find(std::string_view s, std::string_view sub, bool from_right) {
  size_t hit = pystr::search(s, sub, 0);
  if (from_right && hit != std::string_view::npos) {
    const std::string rs(s.rbegin(), s.rend()), rsub(sub.rbegin(), sub.rend());
    hit = s.size() - pystr::search(rs, rsub, 0) - sub.size();
  }
  if (hit == std::string_view::npos) return -1;
  return static_cast<int64_t>(length(s.substr(0, hit)));
}

std::string upper(std::string_view s) {
  return map_chars(s, to_upper);
}
std::string lower(std::string_view s) {
  return map_chars(s, to_lower);
}

std::string capitalize(std::string_view s) {
  std::u32string cps = decode(s);
  for (size_t k = 0; k < cps.size(); ++k) cps[k] = k == 0 ? to_upper(cps[k]) : to_lower(cps[k]);
  return encode(cps);
}

std::string title(std::string_view s) {
  std::u32string cps = decode(s);
  bool prev_cased = false;
  for (char32_t& c : cps) {
    const bool cased = is_cased(c);
    c = prev_cased ? to_lower(c) : to_upper(c);
    prev_cased = cased;
  }
  return encode(cps);
}

std::string jinja_title(std::string_view s) {
  // "".join(w[0].upper() + w[1:].lower() for w in re.split(r"([-\s({\[<]+)", s) if w)
  std::u32string cps = decode(s);
  auto is_sep = [](char32_t c) {
    return c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || is_space(c);
  };
  bool at_start = true, in_sep = false;
  for (char32_t& c : cps) {
    const bool sep = is_sep(c);
    if (sep != in_sep) at_start = true;
    in_sep = sep;
    c = at_start ? to_upper(c) : to_lower(c);
    at_start = false;
  }
  return encode(cps);
}

bool is_lower(std::string_view s) {
  bool any = false;
  for (char32_t c : decode(s)) {
    if (to_upper(c) != c && to_lower(c) == c) any = true;
    if (to_lower(c) != c) return false;
  }
  return any;
}

bool is_upper(std::string_view s) {
  bool any = false;
  for (char32_t c : decode(s)) {
    if (to_lower(c) != c && to_upper(c) == c) any = true;
    if (to_upper(c) != c) return false;
  }
  return any;
}

bool is_digit(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string repr(std::string_view s) {
  const bool has_single = s.find('\'') != std::string_view::npos;
  const bool has_double = s.find('"') != std::string_view::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  out.reserve(s.size() + 2);
  for (size_t i = 0; i < s.size();) {
    const unsigned char b = static_cast<unsigned char>(s[i]);
    if (b >= 0x20 && b < 0x7F && b != static_cast<unsigned char>(quote) && b != '\\') {
      out += static_cast<char>(b);  // printable ASCII, the common case
      ++i;
      continue;
    }
    char32_t c;
    const size_t n = utf8::next(s, i, &c);
    if (c == utf8::kInvalid) c = 0xDC00 + b;  // surrogateescape, as decode() does
    i += n;
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (is_printable(c)) {
      utf8::append(out, c);
    } else if (c < 0x100) {
      append_hex(out, "\\x", c, 2);
    } else if (c < 0x10000) {
      append_hex(out, "\\u", c, 4);
    } else {
      append_hex(out, "\\U", c, 8);
    }
  }
  out += quote;
  return out;
}

std::string unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    const char e = s[++i];
    switch (e) {
      case '\n':
        break;  // a backslash at the end of a line joins the lines
      case '\\':
        out += '\\';
        break;
      case '\'':
        out += '\'';
        break;
      case '"':
        out += '"';
        break;
      case 'a':
        out += '\a';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'v':
        out += '\v';
        break;
      case 'x':
      case 'u':
      case 'U': {
        const int digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
        uint32_t v = 0;
        for (int d = 0; d < digits; ++d) {
          const int h = i + 1 < s.size() ? hex_value(s[i + 1]) : -1;
          if (h < 0) fail("truncated \\", e, " escape in a string literal");
          v = v * 16 + static_cast<uint32_t>(h);
          ++i;
        }
        SA_CHECK(v <= 0x10FFFF, "illegal Unicode character \\U", std::string(s.substr(i - 7, 8)),
                 " in a string literal");
        utf8::append(out, v);
        break;
      }
      case 'N':
        fail("\\N{...} escapes in string literals are not supported");
      default:
        if (e >= '0' && e <= '7') {
          uint32_t v = static_cast<uint32_t>(e - '0');
          for (int d = 0; d < 2 && i + 1 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '7'; ++d) {
            v = v * 8 + static_cast<uint32_t>(s[++i] - '0');
          }
          utf8::append(out, v);
        } else {
          out += '\\';  // Python keeps unknown escapes as they are
          out += e;
        }
    }
  }
  return out;
}

}  // namespace starattn::jinja::pystr
