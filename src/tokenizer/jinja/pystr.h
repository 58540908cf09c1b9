// Python str operations on UTF-8 text, for the Jinja interpreter. Python indexes strings by code
// point, so lengths, indexes and slices here count code points; a malformed byte counts as one.
// Case mapping is Unicode's simple (one-to-one) mapping from the C library, which differs from
// Python's full mapping only for a few characters (e.g. 'ß'.upper() is 'SS' in Python).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace starattn::jinja::pystr {

size_t length(std::string_view s);  // code points
// Byte offset of each code point, plus s.size() at the end.
std::vector<size_t> offsets(std::string_view s);
std::vector<std::string> chars(std::string_view s);  // list(s)

bool is_space(char32_t cp);                                    // str.isspace()
std::string strip(std::string_view s, bool left, bool right);  // whitespace
std::string strip_chars(std::string_view s, std::string_view chars, bool left, bool right);

// str.split() / str.split(sep, maxsplit) / str.rsplit(...); maxsplit < 0 means no limit.
std::vector<std::string> split_whitespace(std::string_view s, int64_t maxsplit, bool from_right);
std::vector<std::string> split(std::string_view s, std::string_view sep, int64_t maxsplit,
                               bool from_right);
std::vector<std::string> splitlines(std::string_view s, bool keepends);

std::string replace(std::string_view s, std::string_view old, std::string_view repl, int64_t count);
int64_t count(std::string_view s, std::string_view sub);
// Byte offset of the first `needle` at or after `from`, or npos; linear time (glibc's memmem),
// unlike std::string::find, whose worst case is quadratic.
size_t search(std::string_view hay, std::string_view needle, size_t from);
// str.find / str.rfind as a code point index, -1 when absent.
int64_t find(std::string_view s, std::string_view sub, bool from_right);

std::string upper(std::string_view s);
std::string lower(std::string_view s);
std::string capitalize(std::string_view s);   // str.capitalize()
std::string title(std::string_view s);        // str.title()
std::string jinja_title(std::string_view s);  // jinja2's |title filter (word starts after -\s({[<)
bool is_lower(std::string_view s);            // str.islower()
bool is_upper(std::string_view s);            // str.isupper()
bool is_digit(std::string_view s);            // str.isdigit() for ASCII digits; else false

// Python repr(str): quotes chosen as CPython does, non-printable characters escaped.
std::string repr(std::string_view s);
// Undoes the escapes of a Jinja string literal as Python's 'unicode-escape' codec does; throws
// Error (with the message) for a malformed \x, \u, \U or \N escape.
std::string unescape(std::string_view s);

}  // namespace starattn::jinja::pystr
