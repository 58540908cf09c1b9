// The names of an enum's values, in one table per enum that serves both directions: printing
// (results, --json, messages), parsing (flags, files) and the lists of accepted values that the
// CLI checks against and the errors print. A value added to the enum and its table is known to
// all three at once.
//
//   inline constexpr EnumName<Color> kColorNames[] = {{Color::Red, "red"}, {Color::Blue, "blue"}};
//   enum_name(kColorNames, Color::Red)                 -> "red"
//   parse_enum(kColorNames, "blue", "color")           -> Color::Blue
//   parse_enum(kColorNames, "green", "color")          -> Error "unknown color 'green' (expected
//                                                          red or blue)"
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "starattn/error.h"

namespace starattn {

template <typename E>
struct EnumName {
  E value;
  const char* name;
};

// The name of v, or `unknown` for a value the table lacks (a cast from a bad integer).
template <typename E, size_t N>
constexpr const char* enum_name(const EnumName<E> (&table)[N], E v, const char* unknown = "?") {
  for (const EnumName<E>& e : table)
    if (e.value == v) return e.name;
  return unknown;
}

template <typename E, size_t N>
constexpr std::optional<E> enum_from_name(const EnumName<E> (&table)[N], std::string_view s) {
  for (const EnumName<E>& e : table)
    if (s == e.name) return e.value;
  return std::nullopt;
}

// Every name, in the table's order: what a CLI flag accepts.
template <typename E, size_t N>
std::vector<std::string> enum_names(const EnumName<E> (&table)[N]) {
  std::vector<std::string> out;
  for (const EnumName<E>& e : table) out.emplace_back(e.name);
  return out;
}

// "a, b or c": the names as an error message lists them.
template <typename E, size_t N>
std::string enum_names_text(const EnumName<E> (&table)[N]) {
  std::string out;
  for (size_t i = 0; i < N; ++i) {
    if (i > 0) out += i + 1 == N ? " or " : ", ";
    out += table[i].name;
  }
  return out;
}

// The value named s; otherwise an Error "unknown WHAT 's' (expected a, b or c)".
template <typename E, size_t N>
E parse_enum(const EnumName<E> (&table)[N], std::string_view s, const char* what) {
  if (const std::optional<E> v = enum_from_name(table, s)) return *v;
  fail("unknown ", what, " '", std::string(s), "' (expected ", enum_names_text(table), ")");
}

}  // namespace starattn
