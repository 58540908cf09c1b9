// jinja2's built-in filters, tests and globals, Python's str/list/dict methods, and what
// transformers adds for chat templates (its tojson, raise_exception, strftime_now, namespace,
// dict). Each behaves as its Python original does on the values chat templates use.
#pragma once

#include <string>

#include "tokenizer/jinja/eval.h"

namespace starattn::jinja {

enum class Support : uint8_t {
  Yes,
  Unsupported,  // a jinja2 built-in this interpreter does not provide
  Unknown,      // not a jinja2 built-in either
};
Support filter_support(const std::string& name);
Support test_support(const std::string& name);

Value run_filter(Interp& in, const std::string& name, const Value& v, const Args& a);
bool run_test(Interp& in, const std::string& name, const Value& v, const Args& a);

// The globals every template sees (range, namespace, dict, raise_exception, strftime_now).
void add_globals(Interp& in, Frame& globals);
Value call_global(Interp& in, const std::string& name, const Args& a);

// obj.name as Python's getattr sees it: a bound method of a str, list or dict, a field or
// method of the loop variable. *found is false (and the result Undefined, with the reason) when
// Python has no such attribute; methods that modify a list or dict exist but are refused, as
// transformers' sandbox refuses them, when called.
Value builtin_attr(Interp& in, const Value& obj, const std::string& name, bool* found = nullptr);
Value call_method(Interp& in, const Value& self, const std::string& name, const Args& a);

// Python's str % value (printf-style: %s, %r, %d, %i, %%; a tuple gives several values).
std::string percent_format(Interp& in, const std::string& fmt, const Value& arg);

// int() and float() of a string as Python parses them; false when it does not parse.
bool parse_py_int(const std::string& s, int base, int64_t* out);
bool parse_py_float(const std::string& s, double* out);

}  // namespace starattn::jinja
