// jinja2's built-in filters and tests (jinja2/filters.py, jinja2/tests.py), with transformers'
// tojson (ensure_ascii=False, indent, separators, sort_keys).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <unordered_set>

#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/pystr.h"

namespace starattn::jinja {

namespace {

constexpr const char* kFilters[] = {
    "abs",     "attr",   "capitalize", "count",  "d",          "default", "dictsort",   "first",
    "float",   "format", "indent",     "int",    "items",      "join",    "last",       "length",
    "list",    "lower",  "map",        "max",    "min",        "reject",  "rejectattr", "replace",
    "reverse", "round",  "safe",       "select", "selectattr", "sort",    "string",     "sum",
    "title",   "tojson", "trim",       "unique", "upper"};
// jinja2 built-ins left out: HTML escaping, text layout, randomness, grouping.
constexpr const char* kUnsupportedFilters[] = {
    "batch",     "center", "e",         "escape",   "filesizeformat", "forceescape",
    "groupby",   "pprint", "random",    "slice",    "striptags",      "truncate",
    "urlencode", "urlize", "wordcount", "wordwrap", "xmlattr"};
constexpr const char* kTests[] = {
    "boolean", "callable", "defined",  "divisibleby", "eq",       "equalto",     "escaped",
    "even",    "false",    "filter",   "float",       "ge",       "greaterthan", "gt",
    "in",      "integer",  "iterable", "le",          "lessthan", "lower",       "lt",
    "mapping", "ne",       "none",     "number",      "odd",      "sameas",      "sequence",
    "string",  "test",     "true",     "undefined",   "upper",    "==",          "!=",
    "<",       "<=",       ">",        ">="};

template <size_t N>
bool one_of(const char* const (&list)[N], const std::string& name) {
  return std::find_if(std::begin(list), std::end(list), [&](const char* x) { return name == x; }) !=
         std::end(list);
}

// jinja2's make_attrgetter: "a.b.0" looks up a, then b, then item 0, by subscript.
Value get_path(Interp& in, const Value& item, const Value& attribute, const Value* fallback) {
  if (attribute.is_int_like()) {
    Value v = in.getitem(item, attribute);
    return fallback && v.is_undefined() ? *fallback : v;
  }
  SA_CHECK(attribute.is_string(), "attribute must be a string or an integer, not ",
           type_name(attribute));
  Value v = item;
  for (const std::string& part : pystr::split(attribute.s(), ".", -1, false)) {
    int64_t idx = 0;
    const bool is_index = pystr::is_digit(part) && parse_py_int(part, 10, &idx);
    v = in.getitem(v, is_index ? Value::integer(idx) : in.str(part));
    if (fallback && v.is_undefined()) v = *fallback;
  }
  return v;
}

// Sort/unique key: the attribute's value, lowercased when it is a string and case matters not.
Value sort_key(Interp& in, const Value& item, const Value* attribute, bool case_sensitive) {
  Value v =
      attribute && attribute->kind != Kind::None ? get_path(in, item, *attribute, nullptr) : item;
  if (!case_sensitive && v.is_string()) return in.str(pystr::lower(v.s()));
  return v;
}

size_t py_len(const Value& v) {
  switch (v.kind) {
    case Kind::Undefined:
      return 0;
    case Kind::String:
      return pystr::length(v.s());  // callers charge the scan
    case Kind::List:
      return list_of(v).items.size();
    case Kind::Dict:
      return dict_of(v).entries.size();
    case Kind::Loop:
      return static_cast<const LoopObj*>(v.obj)->items.size();
    default:
      fail("object of type '", type_name(v), "' has no len()");
  }
}

JsonOptions json_options(const Args& a) {
  a.check("tojson", 4, {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonOptions o;
  o.ensure_ascii = truthy(a.get_or(0, "ensure_ascii", Value::boolean(false)));
  const Value indent = a.get_or(1, "indent", Value::none());
  if (indent.kind != Kind::None) {
    o.has_indent = true;
    if (indent.is_string()) {
      o.indent = indent.s();
    } else {
      SA_CHECK(indent.is_int_like(), "tojson: indent must be an int or a string");
      o.indent = std::string(static_cast<size_t>(std::max<int64_t>(indent.as_int(), 0)), ' ');
    }
  }
  const Value sep = a.get_or(2, "separators", Value::none());
  if (sep.kind != Kind::None) {
    SA_CHECK(sep.kind == Kind::List && list_of(sep).items.size() == 2 &&
                 list_of(sep).items[0].is_string() && list_of(sep).items[1].is_string(),
             "tojson: separators must be a pair of strings");
    o.has_separators = true;
    o.item_sep = list_of(sep).items[0].s();
    o.key_sep = list_of(sep).items[1].s();
  }
  o.sort_keys = truthy(a.get_or(3, "sort_keys", Value::boolean(false)));
  return o;
}

// Python's round(x, n) for floats: correctly rounded, ties to even (glibc's printf rounds the
// exact binary value the same way CPython's dtoa does).
double py_round(double x, int64_t n) {
  if (!std::isfinite(x)) return x;
  if (n > 300) return x;
  if (n < 0) {
    const double p = std::pow(10.0, static_cast<double>(-n));
    return std::nearbyint(x / p) * p;
  }
  char buf[512];
  std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(n), x);
  return std::strtod(buf, nullptr);
}

Value do_round(Interp& in, const Value& v, const Args& a) {
  a.check("round", 2, {"precision", "method"});
  const int64_t precision = a.get_or(0, "precision", Value::integer(0)).as_int();
  const Value method = a.get_or(1, "method", in.str("common"));
  SA_CHECK(method.is_string() &&
               (method.s() == "common" || method.s() == "ceil" || method.s() == "floor"),
           "method must be common, ceil or floor");
  if (v.is_undefined()) in.undefined_error(v);
  SA_CHECK(v.is_number(), "type ", type_name(v), " doesn't define __round__ method");
  if (method.s() == "common") {
    if (v.is_int_like() && precision >= 0) return Value::integer(v.as_int());
    return Value::number(py_round(v.as_double(), precision));
  }
  const double p = std::pow(10.0, static_cast<double>(precision));
  const double x = v.as_double() * p;
  return Value::number((method.s() == "ceil" ? std::ceil(x) : std::floor(x)) / p);
}

Value do_int(Interp& in, const Value& v, const Args& a) {
  a.check("int", 2, {"default", "base"});
  const Value fallback = a.get_or(0, "default", Value::integer(0));
  const int64_t base = a.get_or(1, "base", Value::integer(10)).as_int();
  if (v.is_undefined()) in.undefined_error(v);
  int64_t n = 0;
  double f = 0;
  switch (v.kind) {
    case Kind::Int:
    case Kind::Bool:
      return Value::integer(v.as_int());
    case Kind::Float:
      SA_CHECK(!std::isinf(v.f), "cannot convert float infinity to integer");
      if (std::isnan(v.f)) return fallback;
      SA_CHECK(std::fabs(v.f) < 9.2e18, "integer overflow (integers here are 64-bit)");
      return Value::integer(static_cast<int64_t>(std::trunc(v.f)));
    case Kind::String:
      if (parse_py_int(v.s(), static_cast<int>(base), &n)) return Value::integer(n);
      if (parse_py_float(v.s(), &f) && std::isfinite(f) && std::fabs(f) < 9.2e18) {
        return Value::integer(static_cast<int64_t>(std::trunc(f)));
      }
      return fallback;
    default:
      return fallback;
  }
}

Value do_float(Interp& in, const Value& v, const Args& a) {
  a.check("float", 1, {"default"});
  const Value fallback = a.get_or(0, "default", Value::number(0.0));
  if (v.is_undefined()) in.undefined_error(v);
  double f = 0;
  if (v.is_number()) return Value::number(v.as_double());
  if (v.is_string() && parse_py_float(v.s(), &f)) return Value::number(f);
  return fallback;
}

// jinja2's do_indent, with Python's splitlines.
Value do_indent(Interp& in, const Value& v, const Args& a) {
  a.check("indent", 3, {"width", "first", "blank"});
  const Value width = a.get_or(0, "width", Value::integer(4));
  const bool first = truthy(a.get_or(1, "first", Value::boolean(false)));
  const bool blank = truthy(a.get_or(2, "blank", Value::boolean(false)));
  const std::string ind =
      width.is_string()
          ? width.s()
          : std::string(static_cast<size_t>(std::max<int64_t>(width.as_int(), 0)), ' ');
  if (v.is_undefined()) in.undefined_error(v);
  if (!v.is_string()) {  // jinja2 does s += "\n" first: Python's errors for that
    if (v.kind == Kind::List) fail("'list' object has no attribute 'splitlines'");
    fail("unsupported operand type(s) for +=: '", type_name(v), "' and 'str'");
  }
  const std::string s = v.s() + "\n";
  std::vector<std::string> lines = pystr::splitlines(s, false);
  in.check_text(s.size() + (lines.size() + 1) * ind.size());  // before building it
  std::string out;
  if (blank) {
    for (size_t k = 0; k < lines.size(); ++k) out += (k ? "\n" + ind : "") + lines[k];
  } else {
    out = lines.empty() ? "" : lines[0];
    for (size_t k = 1; k < lines.size(); ++k)
      out += "\n" + (lines[k].empty() ? "" : ind) + lines[k];
  }
  if (first) out = ind + out;
  return in.str(std::move(out));
}

// select / reject / selectattr / rejectattr.
Value select_items(Interp& in, const Value& seq, const Args& a, bool with_attr, bool keep) {
  size_t off = 0;
  Value attribute;
  if (with_attr) {
    SA_CHECK(!a.pos.empty(), "missing parameter for attribute name");
    attribute = a.pos[0];
    off = 1;
  }
  const bool has_test = a.pos.size() > off;
  std::string test_name;
  Args test_args;
  if (has_test) {
    SA_CHECK(a.pos[off].is_string(), "the test name must be a string");
    test_name = a.pos[off].s();
    SA_CHECK(test_support(test_name) == Support::Yes, "no test named '", test_name, "'");
    test_args.pos.assign(a.pos.begin() + static_cast<std::ptrdiff_t>(off + 1), a.pos.end());
    test_args.kw = a.kw;
  }
  std::vector<Value> out;
  if (!truthy(seq)) return in.generator({});  // jinja2 skips a falsy value without iterating it
  for (const Value& item : in.iterate(seq)) {
    in.step();
    const Value x = with_attr ? get_path(in, item, attribute, nullptr) : item;
    const bool pass = has_test ? in.test(test_name, x, test_args) : truthy(x);
    if (pass == keep) out.push_back(item);
  }
  return in.generator(std::move(out));
}

Value do_map(Interp& in, const Value& seq, const Args& a) {
  std::vector<Value> out;
  if (!truthy(seq)) return in.generator({});  // jinja2 skips a falsy value without iterating it
  if (a.pos.empty()) {
    const Value* attribute = nullptr;
    const Value* fallback = nullptr;
    for (const auto& [k, v] : a.kw) {
      if (k == "attribute") {
        attribute = &v;
      } else if (k == "default") {
        fallback = &v;
      } else {
        fail("Unexpected keyword argument '", k, "'");
      }
    }
    SA_CHECK(attribute, "map requires a filter argument");
    const bool use_fallback = fallback && fallback->kind != Kind::None;
    for (const Value& item : in.iterate(seq)) {
      in.step();
      out.push_back(get_path(in, item, *attribute, use_fallback ? fallback : nullptr));
    }
    return in.generator(std::move(out));
  }
  SA_CHECK(a.pos[0].is_string(), "map: the filter name must be a string");
  const std::string name = a.pos[0].s();
  SA_CHECK(filter_support(name) == Support::Yes,
           filter_support(name) == Support::Unsupported ? "unsupported Jinja filter '"
                                                        : "no filter named '",
           name, "'");
  Args rest;
  rest.pos.assign(a.pos.begin() + 1, a.pos.end());
  rest.kw = a.kw;
  for (const Value& item : in.iterate(seq)) {
    in.step();
    out.push_back(in.filter(name, item, rest));
  }
  return in.generator(std::move(out));
}

Value do_sort(Interp& in, const Value& seq, const Args& a, bool unique) {
  a.check(unique ? "unique" : "sort", unique ? 2 : 3, {"reverse", "case_sensitive", "attribute"});
  const bool reverse = !unique && truthy(a.get_or(0, "reverse", Value::boolean(false)));
  const bool case_sensitive =
      truthy(a.get_or(unique ? 0 : 1, "case_sensitive", Value::boolean(false)));
  const Value* attribute = a.get(unique ? 1 : 2, "attribute");
  std::vector<Value> items = in.iterate(seq);
  std::vector<Value> keys;
  for (const Value& item : items) keys.push_back(sort_key(in, item, attribute, case_sensitive));
  if (unique) {
    std::vector<Value> out;
    std::unordered_set<std::string> seen;  // jinja2 keeps a set of the keys
    for (size_t k = 0; k < items.size(); ++k) {
      SA_CHECK(hashable(keys[k]), "unhashable type: '", type_name(keys[k]), "'");
      in.step();
      if (seen.insert(hash_key(keys[k])).second) out.push_back(items[k]);
    }
    return in.generator(std::move(out));
  }
  std::vector<size_t> order(items.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  in.step(static_cast<int64_t>(items.size()) * 8);
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) {
    return reverse ? less(keys[y], keys[x]) : less(keys[x], keys[y]);
  });
  std::vector<Value> out;
  for (size_t k : order) out.push_back(items[k]);
  return in.list(std::move(out));
}

Value do_minmax(Interp& in, const Value& seq, const Args& a, bool want_max) {
  a.check(want_max ? "max" : "min", 2, {"case_sensitive", "attribute"});
  const bool case_sensitive = truthy(a.get_or(0, "case_sensitive", Value::boolean(false)));
  const Value* attribute = a.get(1, "attribute");
  std::vector<Value> items = in.iterate(seq);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  size_t best = 0;
  Value best_key = sort_key(in, items[0], attribute, case_sensitive);
  for (size_t k = 1; k < items.size(); ++k) {
    Value key = sort_key(in, items[k], attribute, case_sensitive);
    if (want_max ? less(best_key, key) : less(key, best_key)) {
      best = k;
      best_key = key;
    }
  }
  return items[best];
}

Value do_dictsort(Interp& in, const Value& v, const Args& a) {
  a.check("dictsort", 3, {"case_sensitive", "by", "reverse"});
  SA_CHECK(v.kind == Kind::Dict, "dictsort: expected a dict, got ", type_name(v));
  const bool case_sensitive = truthy(a.get_or(0, "case_sensitive", Value::boolean(false)));
  const Value by = a.get_or(1, "by", in.str("key"));
  const bool reverse = truthy(a.get_or(2, "reverse", Value::boolean(false)));
  SA_CHECK(by.is_string() && (by.s() == "key" || by.s() == "value"),
           "You can only sort by either \"key\" or \"value\"");
  std::vector<Value> pairs, keys;
  for (const auto& [k, x] : dict_of(v).entries) {
    pairs.push_back(in.list({k, x}, Seq::Tuple));
    keys.push_back(sort_key(in, by.s() == "key" ? k : x, nullptr, case_sensitive));
  }
  std::vector<size_t> order(pairs.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) {
    return reverse ? less(keys[y], keys[x]) : less(keys[x], keys[y]);
  });
  std::vector<Value> out;
  for (size_t k : order) out.push_back(pairs[k]);
  return in.list(std::move(out));
}

std::string soft_str(Interp& in, const Value& v) {
  return in.text(v);
}

}  // namespace

Support filter_support(const std::string& name) {
  if (one_of(kFilters, name)) return Support::Yes;
  if (one_of(kUnsupportedFilters, name)) return Support::Unsupported;
  return Support::Unknown;
}

Support test_support(const std::string& name) {
  return one_of(kTests, name) ? Support::Yes : Support::Unknown;
}

Value run_filter(Interp& in, const std::string& name, const Value& v, const Args& a) {
  in.step();
  if (name == "trim") {
    a.check("trim", 1, {"chars"});
    const Value* chars = a.get(0, "chars");
    if (!chars || chars->kind == Kind::None)
      return in.str(pystr::strip(soft_str(in, v), true, true));
    SA_CHECK(chars->is_string(), "trim: chars must be a string");
    return in.str(pystr::strip_chars(soft_str(in, v), chars->s(), true, true));
  }
  if (name == "length" || name == "count") {
    if (v.is_string()) in.step(static_cast<int64_t>(v.s().size() / 64));
    return Value::integer(static_cast<int64_t>(py_len(v)));
  }
  if (name == "tojson") return in.str(to_json(v, json_options(a), in.bytes_left()));
  if (name == "string") return in.str(soft_str(in, v));
  if (name == "safe") return v.is_string() ? v : in.str(soft_str(in, v));
  if (name == "lower") return in.str(pystr::lower(soft_str(in, v)));
  if (name == "upper") return in.str(pystr::upper(soft_str(in, v)));
  if (name == "capitalize") return in.str(pystr::capitalize(soft_str(in, v)));
  if (name == "title") return in.str(pystr::jinja_title(soft_str(in, v)));
  if (name == "int") return do_int(in, v, a);
  if (name == "float") return do_float(in, v, a);
  if (name == "round") return do_round(in, v, a);
  if (name == "abs") {
    if (v.is_int_like()) {
      SA_CHECK(v.as_int() != INT64_MIN, "integer overflow (integers here are 64-bit)");
      return Value::integer(std::llabs(v.as_int()));
    }
    if (v.kind == Kind::Float) return Value::number(std::fabs(v.f));
    fail("bad operand type for abs(): '", type_name(v), "'");
  }
  if (name == "default" || name == "d") {
    a.check(name.c_str(), 2, {"default_value", "boolean"});
    const bool boolean = truthy(a.get_or(1, "boolean", Value::boolean(false)));
    if (v.is_undefined() || (boolean && !truthy(v))) {
      return a.get_or(0, "default_value", Value::string(""));
    }
    return v;
  }
  if (name == "replace") {
    a.check("replace", 3, {"old", "new", "count"});
    const Value* old = a.get(0, "old");
    const Value* repl = a.get(1, "new");
    SA_CHECK(old && repl && old->is_string() && repl->is_string(),
             "replace: old and new must be strings");
    const Value count = a.get_or(2, "count", Value::none());
    const std::string s = soft_str(in, v);
    in.charge_bytes(old->s().empty()
                        ? (pystr::length(s) + 1) * repl->s().size()
                        : static_cast<size_t>(pystr::count(s, old->s())) * repl->s().size());
    return in.str(
        pystr::replace(s, old->s(), repl->s(), count.kind == Kind::None ? -1 : count.as_int()));
  }
  if (name == "join") {
    a.check("join", 2, {"d", "attribute"});
    const Value sep = a.get_or(0, "d", Value::string(""));
    const Value* attribute = a.get(1, "attribute");
    std::string out;
    size_t k = 0;
    for (const Value& item : in.iterate(v)) {
      if (k++) out += soft_str(in, sep);
      in.check_text(out.size());
      out += soft_str(in, attribute && attribute->kind != Kind::None
                              ? get_path(in, item, *attribute, nullptr)
                              : item);
    }
    return in.str(std::move(out));
  }
  if (name == "list") return in.list(in.iterate(v));
  if (name == "first") {
    if (v.kind == Kind::Generator) {
      GeneratorObj& g = generator_of(v);
      if (g.pos < g.items.size()) return g.items[g.pos++];
    } else {
      std::vector<Value> items = in.iterate(v);
      if (!items.empty()) return items.front();
    }
    return Value::undefined("No first item, sequence was empty.");
  }
  if (name == "last") {
    SA_CHECK(v.kind != Kind::Generator, "'generator' object is not reversible");
    std::vector<Value> items = in.iterate(v);
    if (!items.empty()) return items.back();
    return Value::undefined("No last item, sequence was empty.");
  }
  if (name == "reverse") {
    if (v.is_string()) {
      std::vector<std::string> cs = pystr::chars(v.s());
      std::string out;
      for (auto it = cs.rbegin(); it != cs.rend(); ++it) out += *it;
      return in.str(std::move(out));
    }
    SA_CHECK(v.kind != Kind::Generator, "argument to reversed() must be a sequence");
    std::vector<Value> items = in.iterate(v);
    std::reverse(items.begin(), items.end());
    return in.generator(std::move(items));
  }
  if (name == "items") {
    if (v.is_undefined()) return in.generator({});
    SA_CHECK(v.kind == Kind::Dict, "Can only get item pairs from a mapping.");
    std::vector<Value> out;
    for (const auto& [k, x] : dict_of(v).entries) out.push_back(in.list({k, x}, Seq::Tuple));
    return in.generator(std::move(out));
  }
  if (name == "dictsort") return do_dictsort(in, v, a);
  if (name == "map") return do_map(in, v, a);
  if (name == "select") return select_items(in, v, a, false, true);
  if (name == "reject") return select_items(in, v, a, false, false);
  if (name == "selectattr") return select_items(in, v, a, true, true);
  if (name == "rejectattr") return select_items(in, v, a, true, false);
  if (name == "sort") return do_sort(in, v, a, false);
  if (name == "unique") return do_sort(in, v, a, true);
  if (name == "max") return do_minmax(in, v, a, true);
  if (name == "min") return do_minmax(in, v, a, false);
  if (name == "sum") {
    a.check("sum", 2, {"attribute", "start"});
    const Value* attribute = a.get(0, "attribute");
    Value total = a.get_or(1, "start", Value::integer(0));
    for (const Value& item : in.iterate(v)) {
      const Value x = attribute && attribute->kind != Kind::None
                          ? get_path(in, item, *attribute, nullptr)
                          : item;
      SA_CHECK(total.is_number() && x.is_number(), "unsupported operand type(s) for +: '",
               type_name(total), "' and '", type_name(x), "'");
      if (total.is_int_like() && x.is_int_like()) {
        int64_t r = 0;
        SA_CHECK(!__builtin_add_overflow(total.as_int(), x.as_int(), &r),
                 "integer overflow (integers here are 64-bit)");
        total = Value::integer(r);
      } else {
        total = Value::number(total.as_double() + x.as_double());
      }
    }
    return total;
  }
  if (name == "attr") {
    // Python's getattr only: unlike obj.name, no fallback to obj['name'].
    a.check("attr", 1, {});
    SA_CHECK(a.pos.size() == 1 && a.pos[0].is_string(), "attr: expected an attribute name");
    if (v.is_undefined()) in.undefined_error(v);
    if (v.kind == Kind::Namespace) return in.getattr(v, a.pos[0].s());
    return builtin_attr(in, v, a.pos[0].s());
  }
  if (name == "indent") return do_indent(in, v, a);
  if (name == "format") {
    SA_CHECK(a.pos.empty() || a.kw.empty(),
             "can't handle positional and keyword arguments at the "
             "same time");
    SA_CHECK(a.kw.empty(), "format: keyword arguments are not supported");
    return in.str(percent_format(in, soft_str(in, v), in.list(a.pos, Seq::Tuple)));
  }
  fail("no filter named '", name, "'");
}

bool run_test(Interp& in, const std::string& name, const Value& v, const Args& a) {
  in.step();
  auto arg = [&]() -> const Value& {
    SA_CHECK(!a.pos.empty(), "the test '", name, "' needs an argument");
    return a.pos[0];
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.kind == Kind::None;
  if (name == "boolean") return v.kind == Kind::Bool;
  if (name == "true") return v.kind == Kind::Bool && v.b;
  if (name == "false") return v.kind == Kind::Bool && !v.b;
  if (name == "integer") return v.kind == Kind::Int;
  if (name == "float") return v.kind == Kind::Float;
  if (name == "number") return v.is_number();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.kind == Kind::Dict;
  if (name == "sequence") {
    return v.kind == Kind::Undefined || v.kind == Kind::String || v.kind == Kind::Dict ||
           (v.kind == Kind::List && (list_of(v).seq == Seq::List || list_of(v).seq == Seq::Tuple ||
                                     list_of(v).seq == Seq::Range));
  }
  if (name == "iterable") {
    return v.kind == Kind::Undefined || v.kind == Kind::String || v.kind == Kind::List ||
           v.kind == Kind::Dict || v.kind == Kind::Generator || v.kind == Kind::Loop;
  }
  if (name == "callable") return v.kind == Kind::Callable || v.kind == Kind::Undefined;
  if (name == "escaped") return false;
  if (name == "lower") return pystr::is_lower(in.text(v));
  if (name == "upper") return pystr::is_upper(in.text(v));
  if (name == "odd" || name == "even" || name == "divisibleby") {
    const Value d = name == "divisibleby" ? arg() : Value::integer(2);
    if (v.is_undefined()) in.undefined_error(v);
    SA_CHECK(v.is_number() && d.is_number(), "unsupported operand type(s) for %: '", type_name(v),
             "' and '", type_name(d), "'");
    double r = 0;
    if (v.is_int_like() && d.is_int_like()) {
      SA_CHECK(d.as_int() != 0, "integer division or modulo by zero");
      const int64_t m = v.as_int() % d.as_int();
      r = static_cast<double>(m < 0 && d.as_int() > 0 ? m + d.as_int() : m);
    } else {
      SA_CHECK(d.as_double() != 0, "float modulo");
      r = std::fmod(v.as_double(), d.as_double());
      if (r != 0 && ((r < 0) != (d.as_double() < 0))) r += d.as_double();
    }
    if (name == "odd") return r == 1;
    return r == 0;
  }
  if (name == "sameas") {
    const Value& o = arg();
    if (v.kind != o.kind) return false;
    switch (v.kind) {
      case Kind::None:
      case Kind::Undefined:
        return true;
      case Kind::Bool:
        return v.b == o.b;
      case Kind::Int:
        return v.i == o.i;
      case Kind::Float:
        return v.f == o.f;
      case Kind::String:
        return v.str == o.str;
      default:
        return v.obj == o.obj;
    }
  }
  if (name == "in") {
    const Value& seq = arg();
    if (seq.is_string()) {
      SA_CHECK(v.is_string(), "'in <string>' requires string as left operand, not ", type_name(v));
      return pystr::search(seq.s(), v.s(), 0) != std::string::npos;
    }
    for (const Value& x : in.iterate(seq)) {
      if (in.same(x, v)) return true;
    }
    return false;
  }
  if (name == "filter") return v.is_string() && filter_support(v.s()) == Support::Yes;
  if (name == "test") return v.is_string() && test_support(v.s()) == Support::Yes;
  if (name == "eq" || name == "equalto" || name == "==") return in.same(v, arg());
  if (name == "ne" || name == "!=") return !in.same(v, arg());
  if (name == "lt" || name == "lessthan" || name == "<") return less(v, arg());
  if (name == "gt" || name == "greaterthan" || name == ">") return less(arg(), v);
  if (name == "le" || name == "<=") return !less(arg(), v);
  if (name == "ge" || name == ">=") return !less(v, arg());
  fail("no test named '", name, "'");
}

}  // namespace starattn::jinja
