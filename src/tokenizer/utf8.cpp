#include "tokenizer/utf8.h"

namespace starattn::utf8 {

const std::array<char32_t, 256>& byte_to_codepoint() {
  // Printable Latin-1 bytes stand for themselves; the other 68 bytes (controls, space, 0x7F-0xA0,
  // soft hyphen) are moved to U+0100.. in byte order, so every byte has a visible, unique symbol.
  static const std::array<char32_t, 256> table = [] {
    std::array<char32_t, 256> t{};
    char32_t shifted = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      t[b] = printable ? static_cast<char32_t>(b) : shifted++;
    }
    return t;
  }();
  return table;
}

std::string byte_level_decode(std::string_view text) {
  // Inverse table over U+0000..U+0143, the whole range the alphabet uses.
  static const std::array<int, 0x144> inverse = [] {
    std::array<int, 0x144> inv{};
    inv.fill(-1);
    const auto& fwd = byte_to_codepoint();
    for (int b = 0; b < 256; ++b) inv[fwd[b]] = b;
    return inv;
  }();
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    char32_t cp;
    size_t n = next(text, i, &cp);
    if (cp != kInvalid && cp < inverse.size() && inverse[cp] >= 0) {
      out.push_back(static_cast<char>(inverse[cp]));
    } else {
      out.append(text.substr(i, n));
    }
    i += n;
  }
  return out;
}

void append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

namespace {

// Sequence length announced by a lead byte (0 if it cannot start one), and the allowed range of
// the second byte, which is what rules out overlong forms, surrogates and code points > U+10FFFF.
struct Lead {
  int len;
  unsigned char lo, hi;
};

Lead lead_of(unsigned char b) {
  if (b < 0x80) return {1, 0, 0};
  if (b >= 0xC2 && b <= 0xDF) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};
  if (b >= 0xE1 && b <= 0xEF) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

bool is_cont(unsigned char b) {
  return (b & 0xC0) == 0x80;
}

}  // namespace

size_t next(std::string_view s, size_t i, char32_t* cp) {
  auto b0 = static_cast<unsigned char>(s[i]);
  Lead l = lead_of(b0);
  *cp = kInvalid;
  if (l.len == 1) {
    *cp = b0;
    return 1;
  }
  if (l.len == 0 || i + l.len > s.size()) return 1;
  auto b1 = static_cast<unsigned char>(s[i + 1]);
  if (b1 < l.lo || b1 > l.hi) return 1;
  char32_t v = b0 & (0xFF >> (l.len + 1));
  for (int k = 1; k < l.len; ++k) {
    auto b = static_cast<unsigned char>(s[i + k]);
    if (!is_cont(b)) return 1;
    v = (v << 6) | (b & 0x3F);
  }
  *cp = v;
  return static_cast<size_t>(l.len);
}

bool is_valid(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    char32_t cp;
    i += next(s, i, &cp);
    if (cp == kInvalid) return false;
  }
  return true;
}

size_t incomplete_tail(std::string_view s) {
  // Walk back over at most 3 continuation bytes to the lead byte of the last sequence.
  size_t n = s.size();
  for (size_t back = 1; back <= 4 && back <= n; ++back) {
    auto b = static_cast<unsigned char>(s[n - back]);
    if (is_cont(b)) continue;
    Lead l = lead_of(b);
    if (l.len <= 1 || static_cast<size_t>(l.len) <= back) return 0;  // ASCII, invalid or complete
    if (back >= 2) {
      auto b1 = static_cast<unsigned char>(s[n - back + 1]);
      if (b1 < l.lo || b1 > l.hi) return 0;  // can never become valid: nothing to wait for
    }
    return back;
  }
  return 0;
}

bool is_white_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

bool is_python_space(char32_t c) {
  // White_Space plus the information separators U+001C..U+001F (bidi class B/S in Python).
  return is_white_space(c) || (c >= 0x1C && c <= 0x1F);
}

}  // namespace starattn::utf8
