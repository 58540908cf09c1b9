#include "eval/text.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace starattn::eval {
namespace {

bool is_space(char c) {
  const auto u = static_cast<unsigned char>(c);
  return c == ' ' || (u >= 0x09 && u <= 0x0d) || (u >= 0x1c && u <= 0x1f);
}
bool is_upper(char c) {
  return c >= 'A' && c <= 'Z';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Lowercase, with its final period: the words after which a period does not end a sentence.
constexpr std::array<std::string_view, 22> kAbbreviations = {
    "mr.",  "mrs.", "ms.",  "dr.",  "prof.", "sr.", "jr.", "st.",  "vs.",  "etc.", "e.g.",
    "i.e.", "u.s.", "u.k.", "inc.", "ltd.",  "co.", "no.", "vol.", "fig.", "cf.",  "al."};

bool is_abbreviation(std::string_view word) {
  // word ends with '.'; strip opening quotes or brackets in front of it.
  while (!word.empty() && (word.front() == '"' || word.front() == '\'' || word.front() == '(')) {
    word.remove_prefix(1);
  }
  if (word.size() == 2 && word[1] == '.' && std::isalpha(static_cast<unsigned char>(word[0]))) {
    return true;  // an initial: "J. Smith"
  }
  const std::string low = ascii_lower(word);
  return std::find(kAbbreviations.begin(), kAbbreviations.end(), low) != kAbbreviations.end();
}

}  // namespace

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  if (from.empty()) return s;
  std::string out;
  size_t pos = 0;
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, pos)) {
    out.append(s, pos, at - pos);
    out.append(to);
    pos = at + from.size();
  }
  out.append(s, pos, std::string::npos);
  return out;
}

std::vector<std::string> split_ws(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_space(s[i])) ++i;
    size_t j = i;
    while (j < s.size() && !is_space(s[j])) ++j;
    if (j > i) out.emplace_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out.append(sep);
    out.append(parts[i]);
  }
  return out;
}

std::string py_strip(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && is_space(s[b])) ++b;
  while (e > b && is_space(s[e - 1])) --e;
  return std::string(s.substr(b, e - b));
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (is_upper(c)) c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string substitute(std::string tmpl, std::string_view name, std::string_view value) {
  std::string field(1, '{');  // built by appends: GCC 12 misreports "x" + std::string as overlap
  field.append(name).push_back('}');
  return replace_all(std::move(tmpl), field, value);
}

std::vector<std::string> split_sentences(std::string_view text) {
  std::vector<std::string> out;
  const std::string t = py_strip(text);
  const size_t n = t.size();
  size_t start = 0;
  for (size_t i = 0; i < n; ++i) {
    if (t[i] != '.' && t[i] != '!' && t[i] != '?') continue;
    size_t j = i + 1;
    while (j < n && (t[j] == '"' || t[j] == '\'' || t[j] == ')' || t[j] == ']')) ++j;
    if (j >= n || !is_space(t[j])) continue;
    size_t k = j;
    while (k < n && is_space(t[k])) ++k;
    if (k >= n || !(is_upper(t[k]) || is_digit(t[k]) || t[k] == '"' || t[k] == '\'')) continue;
    if (t[i] == '.') {
      size_t w = i;
      while (w > start && !is_space(t[w - 1])) --w;
      if (is_abbreviation(std::string_view(t).substr(w, i + 1 - w))) continue;
    }
    out.push_back(t.substr(start, j - start));
    start = k;
    i = k - 1;
  }
  if (start < n) out.push_back(t.substr(start));
  return out;
}

}  // namespace starattn::eval
