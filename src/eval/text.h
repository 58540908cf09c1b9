// Small string helpers for the RULER-style tasks: Python-like replace/split/join/strip, and the
// sentence splitter that stands in for nltk's Punkt when needles are placed at depths of prose.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace starattn::eval {

// Python's s.replace(from, to): every non-overlapping occurrence, left to right.
std::string replace_all(std::string s, std::string_view from, std::string_view to);
// Python's s.split() with no argument: runs of ASCII whitespace separate, none are kept.
std::vector<std::string> split_ws(std::string_view s);
std::string join(const std::vector<std::string>& parts, std::string_view sep);
// Python's str.strip() for ASCII: space, \t \n \v \f \r and \x1c-\x1f.
std::string py_strip(std::string_view s);
std::string ascii_lower(std::string_view s);
// Substitutes "{name}" by value (all occurrences), as str.format does for the templates here.
std::string substitute(std::string tmpl, std::string_view name, std::string_view value);

// Splits prose into sentences: a break after [.!?] plus closing quotes or brackets, when
// whitespace and then an uppercase letter, a digit or a quote follow, unless the word before is a
// known abbreviation (Mr., Dr., e.g., ...) or a single letter (an initial). Sentences come back
// without the whitespace between them. Only needle depth granularity depends on this.
std::vector<std::string> split_sentences(std::string_view text);

}  // namespace starattn::eval
