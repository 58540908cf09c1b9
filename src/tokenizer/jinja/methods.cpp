// Attributes and methods of values (str, list, dict, loop), the template globals, and Python's
// number parsing and %-formatting.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/pystr.h"

namespace starattn::jinja {

namespace {

// Every attribute Python's str has, so `s.name is defined` answers as in Python; those not in
// call_method fail with a clear error when called.
constexpr const char* kStrMethods[] = {
    "capitalize",   "casefold",    "center",    "count",      "encode",       "endswith",
    "expandtabs",   "find",        "format",    "format_map", "index",        "isalnum",
    "isalpha",      "isascii",     "isdecimal", "isdigit",    "isidentifier", "islower",
    "isnumeric",    "isprintable", "isspace",   "istitle",    "isupper",      "join",
    "ljust",        "lower",       "lstrip",    "maketrans",  "partition",    "removeprefix",
    "removesuffix", "replace",     "rfind",     "rindex",     "rjust",        "rpartition",
    "rsplit",       "rstrip",      "split",     "splitlines", "startswith",   "strip",
    "swapcase",     "title",       "translate", "upper",      "zfill"};
constexpr const char* kListMethods[] = {"copy", "count", "index"};
constexpr const char* kListMutators[] = {"append", "clear",  "extend",  "insert",
                                         "pop",    "remove", "reverse", "sort"};
constexpr const char* kDictMethods[] = {"copy", "fromkeys", "get", "items", "keys", "values"};
constexpr const char* kDictMutators[] = {"clear", "pop", "popitem", "setdefault", "update"};
constexpr const char* kGlobals[] = {"range", "namespace", "dict", "raise_exception",
                                    "strftime_now"};
constexpr int64_t kMaxRange = 100000;  // jinja2's sandbox MAX_RANGE

template <size_t N>
bool one_of(const char* const (&list)[N], const std::string& name) {
  return std::find_if(std::begin(list), std::end(list), [&](const char* x) { return name == x; }) !=
         std::end(list);
}

Value bound(Interp& in, const Value& self, const std::string& name) {
  CallableObj* c = in.heap.make<CallableObj>();
  c->type = CallableObj::Type::Method;
  c->name = name;
  c->self = self;
  return Value::object(Kind::Callable, c);
}

std::string object_desc(const Value& v) {
  return v.kind == Kind::None ? "None" : type_name(v) + " object";
}

const std::string& str_arg(const Value* v, const char* fn) {
  SA_CHECK(v && v->is_string(), fn, "() argument must be str, not ",
           v ? type_name(*v) : std::string("missing"));
  return v->s();
}

int64_t int_arg(const Value& v, const char* fn) {
  SA_CHECK(v.is_int_like(), "'", type_name(v), "' object cannot be interpreted as an integer (", fn,
           ")");
  return v.as_int();
}

Value str_list(Interp& in, std::vector<std::string> parts) {
  std::vector<Value> items;
  items.reserve(parts.size());
  for (std::string& p : parts) items.push_back(in.str(std::move(p)));
  return in.list(std::move(items));
}

// startswith/endswith: a str or a tuple of them.
bool affix_match(const std::string& s, const Value& arg, bool prefix, const char* fn) {
  auto one = [&](const Value& a) {
    const std::string& x = str_arg(&a, fn);
    if (x.size() > s.size()) return false;
    return prefix ? s.compare(0, x.size(), x) == 0
                  : s.compare(s.size() - x.size(), x.size(), x) == 0;
  };
  if (arg.kind == Kind::List && list_of(arg).seq == Seq::Tuple) {
    return std::any_of(list_of(arg).items.begin(), list_of(arg).items.end(), one);
  }
  return one(arg);
}

// str.format with {}, {0}, {name}, !r/!s and {{ }}; format specs and field attributes are not
// supported (chat templates do not use them).
std::string str_format(Interp& in, const std::string& fmt, const Args& a) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    const char c = fmt[i];
    if (c == '}') {
      SA_CHECK(i + 1 < fmt.size() && fmt[i + 1] == '}', "Single '}' encountered in format string");
      out += '}';
      ++i;
      continue;
    }
    if (c != '{') {
      out += c;
      continue;
    }
    if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out += '{';
      ++i;
      continue;
    }
    const size_t close = fmt.find('}', i);
    SA_CHECK(close != std::string::npos, "Single '{' encountered in format string");
    std::string field = fmt.substr(i + 1, close - i - 1);
    i = close;
    char conv = 's';
    if (field.size() >= 2 && field[field.size() - 2] == '!') {
      conv = field.back();
      field.resize(field.size() - 2);
    }
    SA_CHECK(field.find_first_of(":.[") == std::string::npos,
             "str.format: format specs and field attributes are not supported ('{", field, "}')");
    const Value* v = nullptr;
    if (field.empty()) {
      SA_CHECK(auto_index < a.pos.size(), "Replacement index ", auto_index,
               " out of range for positional args tuple");
      v = &a.pos[auto_index++];
    } else if (std::all_of(field.begin(), field.end(),
                           [](char d) { return d >= '0' && d <= '9'; })) {
      const size_t k = std::stoul(field);
      SA_CHECK(k < a.pos.size(), "Replacement index ", k,
               " out of range for positional args tuple");
      v = &a.pos[k];
    } else {
      for (const auto& [name, val] : a.kw) {
        if (name == field) v = &val;
      }
      SA_CHECK(v, "str.format: no argument named '", field, "'");
    }
    out += conv == 'r' ? in.repr_text(*v) : in.text(*v);
    in.check_text(out.size());
  }
  return out;
}

Value string_method(Interp& in, const std::string& s, const std::string& name, const Args& a) {
  in.step(static_cast<int64_t>(s.size() / 64));  // most string methods scan the whole string
  const std::string fn = "str." + name;
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    a.check(fn.c_str(), 1, {});
    const bool left = name != "rstrip", right = name != "lstrip";
    const Value* chars = a.get(0, "chars");
    if (!chars || chars->kind == Kind::None) return in.str(pystr::strip(s, left, right));
    return in.str(pystr::strip_chars(s, str_arg(chars, fn.c_str()), left, right));
  }
  if (name == "split" || name == "rsplit") {
    a.check(fn.c_str(), 2, {"sep", "maxsplit"});
    const Value* sep = a.get(0, "sep");
    const int64_t maxsplit = int_arg(a.get_or(1, "maxsplit", Value::integer(-1)), fn.c_str());
    const bool right = name == "rsplit";
    if (!sep || sep->kind == Kind::None) {
      return str_list(in, pystr::split_whitespace(s, maxsplit, right));
    }
    return str_list(in, pystr::split(s, str_arg(sep, fn.c_str()), maxsplit, right));
  }
  if (name == "splitlines") {
    a.check(fn.c_str(), 1, {"keepends"});
    return str_list(in,
                    pystr::splitlines(s, truthy(a.get_or(0, "keepends", Value::boolean(false)))));
  }
  if (name == "startswith" || name == "endswith") {
    a.check(fn.c_str(), 1, {});
    SA_CHECK(a.pos.size() == 1, fn, "() takes one argument (start/end are not supported)");
    return Value::boolean(affix_match(s, a.pos[0], name == "startswith", fn.c_str()));
  }
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize") {
    a.check(fn.c_str(), 0, {});
    if (name == "upper") return in.str(pystr::upper(s));
    if (name == "lower") return in.str(pystr::lower(s));
    if (name == "title") return in.str(pystr::title(s));
    return in.str(pystr::capitalize(s));
  }
  if (name == "replace") {
    a.check(fn.c_str(), 3, {});
    SA_CHECK(a.pos.size() >= 2, "str.replace() takes at least 2 arguments");
    const int64_t count = a.pos.size() > 2 ? int_arg(a.pos[2], "replace") : -1;
    const std::string& old = str_arg(&a.pos[0], "replace");
    const std::string& repl = str_arg(&a.pos[1], "replace");
    in.step(static_cast<int64_t>(s.size() / 64));
    if (!old.empty()) {
      // Bound the result before building it: it may be far larger than the input.
      const int64_t hits = std::min<int64_t>(pystr::count(s, old), count < 0 ? INT64_MAX : count);
      in.charge_bytes(static_cast<size_t>(hits) * repl.size());
    } else {
      in.charge_bytes((pystr::length(s) + 1) * repl.size());
    }
    return in.str(pystr::replace(s, old, repl, count));
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex") {
    a.check(fn.c_str(), 1, {});
    SA_CHECK(a.pos.size() == 1, fn, "() takes one argument (start/end are not supported)");
    const int64_t at = pystr::find(s, str_arg(&a.pos[0], fn.c_str()), name[0] == 'r');
    SA_CHECK(at >= 0 || name == "find" || name == "rfind", "substring not found");
    return Value::integer(at);
  }
  if (name == "count") {
    a.check(fn.c_str(), 1, {});
    SA_CHECK(a.pos.size() == 1, "str.count() takes one argument (start/end are not supported)");
    return Value::integer(pystr::count(s, str_arg(&a.pos[0], "count")));
  }
  if (name == "join") {
    a.check(fn.c_str(), 1, {});
    SA_CHECK(a.pos.size() == 1, "str.join() takes exactly one argument");
    std::string out;
    size_t k = 0;
    for (const Value& v : in.iterate(a.pos[0])) {
      SA_CHECK(v.is_string(), "sequence item ", k, ": expected str instance, ", type_name(v),
               " found");
      if (k++) out += s;
      out += v.s();
    }
    return in.str(std::move(out));
  }
  if (name == "format") return in.str(str_format(in, s, a));
  if (name == "removeprefix" || name == "removesuffix") {
    a.check(fn.c_str(), 1, {});
    SA_CHECK(a.pos.size() == 1, fn, "() takes exactly one argument");
    const std::string& x = str_arg(&a.pos[0], fn.c_str());
    const bool pre = name == "removeprefix";
    if (x.size() <= s.size() &&
        (pre ? s.compare(0, x.size(), x) == 0 : s.compare(s.size() - x.size(), x.size(), x) == 0)) {
      return in.str(pre ? s.substr(x.size()) : s.substr(0, s.size() - x.size()));
    }
    return in.str(s);
  }
  if (name == "isdigit" || name == "isspace" || name == "islower" || name == "isupper") {
    a.check(fn.c_str(), 0, {});
    if (name == "isdigit") return Value::boolean(pystr::is_digit(s));
    if (name == "islower") return Value::boolean(pystr::is_lower(s));
    if (name == "isupper") return Value::boolean(pystr::is_upper(s));
    return Value::boolean(!s.empty() && pystr::strip(s, true, false).empty());
  }
  fail("unsupported string method '", name, "'");
}

Value loop_attr(Interp& in, const Value& loopv, const std::string& name, bool* found) {
  const LoopObj& l = *static_cast<const LoopObj*>(loopv.obj);
  const int64_t n = static_cast<int64_t>(l.length);
  const int64_t i = static_cast<int64_t>(l.index0);
  // A loop object kept past its loop still answers, without its items.
  auto item = [&](int64_t k) {
    return k >= 0 && k < static_cast<int64_t>(l.items.size()) ? l.items[static_cast<size_t>(k)]
                                                              : Value::undefined("no such item");
  };
  *found = true;
  if (name == "index") return Value::integer(i + 1);
  if (name == "index0") return Value::integer(i);
  if (name == "revindex") return Value::integer(n - i);
  if (name == "revindex0") return Value::integer(n - i - 1);
  if (name == "first") return Value::boolean(i == 0);
  if (name == "last") return Value::boolean(i == n - 1);
  if (name == "length") return Value::integer(n);
  if (name == "depth") return Value::integer(1);
  if (name == "depth0") return Value::integer(0);
  if (name == "previtem")
    return i > 0 ? item(i - 1) : Value::undefined("there is no previous item");
  if (name == "nextitem")
    return i + 1 < n ? item(i + 1) : Value::undefined("there is no next item");
  if (name == "cycle" || name == "changed") return bound(in, loopv, name);
  *found = false;
  return Value::undefined("'LoopContext object' has no attribute '" + name + "'");
}

Value make_range(Interp& in, const Args& a) {
  a.check("range", 3, {});
  SA_CHECK(!a.pos.empty(), "range expected at least 1 argument, got 0");
  int64_t start = 0, stop = 0, step = 1;
  if (a.pos.size() == 1) {
    stop = int_arg(a.pos[0], "range");
  } else {
    start = int_arg(a.pos[0], "range");
    stop = int_arg(a.pos[1], "range");
    if (a.pos.size() == 3) step = int_arg(a.pos[2], "range");
  }
  SA_CHECK(step != 0, "range() arg 3 must not be zero");
  const double n =
      std::max(0.0, std::ceil((static_cast<double>(stop) - static_cast<double>(start)) /
                              static_cast<double>(step)));
  SA_CHECK(n <= static_cast<double>(kMaxRange),
           "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
  std::vector<Value> items;
  for (int64_t k = 0; k < static_cast<int64_t>(n); ++k)
    items.push_back(Value::integer(start + k * step));
  in.step(static_cast<int64_t>(n));
  Value r = in.list(std::move(items), Seq::Range);
  list_of(r).range_start = start;
  list_of(r).range_stop = stop;
  list_of(r).range_step = step;
  return r;
}

// dict(*args, **kwargs) as Python builds it: a mapping or an iterable of pairs, then keywords.
Value make_dict(Interp& in, const Args& a, const char* fn) {
  SA_CHECK(a.pos.size() <= 1, fn, "() expected at most 1 positional argument, got ", a.pos.size());
  Value d = new_dict(in.heap);
  if (!a.pos.empty()) {
    const Value& src = a.pos[0];
    if (src.kind == Kind::Dict || src.kind == Kind::Namespace) {
      for (const auto& [k, v] : dict_of(src).entries) dict_of(d).set(k, v);
    } else {
      for (const Value& pair : in.iterate(src)) {
        std::vector<Value> kv = in.iterate(pair);
        SA_CHECK(kv.size() == 2, "dictionary update sequence element has length ", kv.size(),
                 "; 2 is required");
        SA_CHECK(hashable(kv[0]), "unhashable type: '", type_name(kv[0]), "'");
        dict_of(d).set(kv[0], kv[1]);
      }
    }
  }
  for (const auto& [k, v] : a.kw) dict_of(d).set(in.str(k), v);
  in.heap.charge(dict_of(d).entries.size());
  return d;
}

std::string strftime_py(const std::string& fmt, const std::tm& tm) {
  // Python's datetime.strftime hands the format to the C library (after %f, which it fills).
  std::string f;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] == '%' && i + 1 < fmt.size() && fmt[i + 1] == 'f') {
      f += "000000";
      ++i;
    } else if (fmt[i] == '%' && i + 1 < fmt.size()) {
      f += fmt.substr(i, 2);
      ++i;
    } else {
      f += fmt[i];
    }
  }
  f += '\x01';  // strftime returns 0 for an empty result too; the marker tells them apart
  std::vector<char> buf(f.size() * 4 + 64);
  for (int tries = 0; tries < 8; ++tries) {
    const size_t n = std::strftime(buf.data(), buf.size(), f.c_str(), &tm);
    if (n > 0) return std::string(buf.data(), n - 1);
    buf.resize(buf.size() * 4);
  }
  fail("strftime_now: the formatted date is too long");
}

}  // namespace

std::string percent_format(Interp& in, const std::string& fmt, const Value& arg) {
  std::vector<Value> vals;
  if (arg.kind == Kind::List && list_of(arg).seq == Seq::Tuple) {
    vals = list_of(arg).items;
  } else {
    vals.push_back(arg);
  }
  // CPython takes any non-tuple argument with __getitem__ (dict, list, Undefined) for a mapping,
  // and then does not complain about arguments left over.
  const bool mapping_like = arg.kind == Kind::Dict || arg.kind == Kind::Undefined ||
                            (arg.kind == Kind::List && list_of(arg).seq != Seq::Tuple);
  std::string out;
  size_t next = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') {
      out += fmt[i];
      continue;
    }
    SA_CHECK(i + 1 < fmt.size(), "incomplete format");
    const char c = fmt[++i];
    if (c == '%') {
      out += '%';
      continue;
    }
    SA_CHECK(c == 's' || c == 'r' || c == 'd' || c == 'i', "unsupported '%' format '%",
             std::string(1, c), "' (only %s, %r, %d and %i are)");
    SA_CHECK(next < vals.size(), "not enough arguments for format string");
    const Value& v = vals[next++];
    if (c == 's') {
      out += in.text(v);
    } else if (c == 'r') {
      out += in.repr_text(v);
    } else {
      SA_CHECK(v.is_number(), "%", std::string(1, c), " format: a real number is required, not ",
               type_name(v));
      SA_CHECK(v.kind != Kind::Float || std::isfinite(v.f), "cannot convert float ",
               float_repr(v.f), " to integer");
      out += std::to_string(v.kind == Kind::Float ? static_cast<int64_t>(std::trunc(v.f))
                                                  : v.as_int());
    }
    in.step();
    in.check_text(out.size());
  }
  SA_CHECK(mapping_like || next == vals.size(),
           "not all arguments converted during string formatting");
  return out;
}

Value builtin_attr(Interp& in, const Value& obj, const std::string& name, bool* found) {
  bool dummy = false;
  if (!found) found = &dummy;
  *found = true;
  switch (obj.kind) {
    case Kind::String:
      if (one_of(kStrMethods, name)) return bound(in, obj, name);
      break;
    case Kind::List:
      if (list_of(obj).seq == Seq::List || list_of(obj).seq == Seq::Tuple) {
        if (one_of(kListMethods, name) && (list_of(obj).seq == Seq::List || name != "copy")) {
          return bound(in, obj, name);
        }
        if (list_of(obj).seq == Seq::List && one_of(kListMutators, name)) {
          return Value::undefined("access to attribute '" + name + "' of 'list' object is unsafe.");
        }
      }
      break;
    case Kind::Dict:
      if (one_of(kDictMethods, name)) return bound(in, obj, name);
      if (one_of(kDictMutators, name)) {
        return Value::undefined("access to attribute '" + name + "' of 'dict' object is unsafe.");
      }
      break;
    case Kind::Loop:
      return loop_attr(in, obj, name, found);
    default:
      break;
  }
  *found = false;
  return Value::undefined("'" + object_desc(obj) + "' has no attribute '" + name + "'");
}

Value call_method(Interp& in, const Value& self, const std::string& name, const Args& a) {
  switch (self.kind) {
    case Kind::String:
      return string_method(in, self.s(), name, a);
    case Kind::List: {
      const auto& items = list_of(self).items;
      if (name == "copy") return in.list(items);
      SA_CHECK(a.pos.size() == 1 && a.kw.empty(), "list.", name, "() takes exactly one argument");
      in.step(static_cast<int64_t>(items.size()));
      if (name == "count") {
        return Value::integer(std::count_if(items.begin(), items.end(),
                                            [&](const Value& v) { return in.same(v, a.pos[0]); }));
      }
      for (size_t k = 0; k < items.size(); ++k) {
        if (in.same(items[k], a.pos[0])) return Value::integer(static_cast<int64_t>(k));
      }
      fail(repr_for_message(a.pos[0]), " is not in list");
    }
    case Kind::Dict: {
      const DictObj& d = dict_of(self);
      if (name == "get") {
        a.check("dict.get", 2, {});
        SA_CHECK(!a.pos.empty(), "dict.get() takes at least 1 argument");
        SA_CHECK(hashable(a.pos[0]), "unhashable type: '", type_name(a.pos[0]), "'");
        const Value* v = d.find(a.pos[0]);
        return v ? *v : a.pos.size() > 1 ? a.pos[1] : Value::none();
      }
      a.check(("dict." + name).c_str(), name == "fromkeys" ? 2 : 0, {});
      std::vector<Value> out;
      in.step(static_cast<int64_t>(d.entries.size()));
      if (name == "keys" || name == "values" || name == "items") {
        for (const auto& [k, v] : d.entries) {
          out.push_back(name == "keys" ? k : name == "values" ? v : in.list({k, v}, Seq::Tuple));
        }
        return in.list(std::move(out), name == "keys"     ? Seq::DictKeys
                                       : name == "values" ? Seq::DictValues
                                                          : Seq::DictItems);
      }
      if (name == "copy") {
        Value c = new_dict(in.heap);
        for (const auto& [k, v] : d.entries) dict_of(c).set(k, v);
        in.heap.charge(d.entries.size());
        return c;
      }
      fail("unsupported dict method '", name, "'");
    }
    case Kind::Loop: {
      LoopObj& l = *static_cast<LoopObj*>(self.obj);
      SA_CHECK(a.kw.empty(), "loop.", name, "() takes no keyword arguments");
      if (name == "cycle") {
        SA_CHECK(!a.pos.empty(), "no items for cycling given");
        return a.pos[l.index0 % a.pos.size()];
      }
      Value now = in.list(a.pos, Seq::Tuple);
      const bool changed = !l.has_changed_state || !in.same(now, l.changed_state);
      l.has_changed_state = true;
      l.changed_state = now;
      return Value::boolean(changed);
    }
    default:
      break;
  }
  fail("'", type_name(self), "' object has no method '", name, "'");
}

void add_globals(Interp& in, Frame& globals) {
  for (const char* name : kGlobals) {
    CallableObj* c = in.heap.make<CallableObj>();
    c->type = CallableObj::Type::Global;
    c->name = name;
    globals.vars[name] = Value::object(Kind::Callable, c);
  }
}

Value call_global(Interp& in, const std::string& name, const Args& a) {
  if (name == "range") return make_range(in, a);
  if (name == "dict") return make_dict(in, a, "dict");
  if (name == "namespace") {
    Value d = make_dict(in, a, "namespace");
    for (const auto& [k, v] : dict_of(d).entries) {
      SA_CHECK(!k.is_string() || k.s().empty() || k.s()[0] != '_',
               "chat templates cannot store underscore-prefixed attributes on a namespace");
    }
    d.kind = Kind::Namespace;
    return d;
  }
  if (name == "raise_exception") {
    a.check("raise_exception", 1, {});
    throw RaisedError(a.pos.empty() ? std::string("None") : in.text(a.pos[0]));
  }
  if (name == "strftime_now") {
    a.check("strftime_now", 1, {"format"});
    const Value* f = a.get(0, "format");
    SA_CHECK(f && f->is_string(), "strftime_now() argument must be str");
    return in.str(strftime_py(f->s(), in.now()));
  }
  fail("unknown global function '", name, "'");
}

bool parse_py_int(const std::string& text, int base, int64_t* out) {
  std::string s = pystr::strip(text, true, true);
  size_t i = 0;
  bool neg = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
  if (i + 1 < s.size() && s[i] == '0') {
    const char p = static_cast<char>(s[i + 1] | 0x20);
    if ((p == 'x' && base == 16) || (p == 'o' && base == 8) || (p == 'b' && base == 2)) {
      i += 2;
      if (i < s.size() && s[i] == '_') ++i;
    }
  }
  std::string digits;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '_' && !digits.empty() && i + 1 < s.size() && s[i + 1] != '_') continue;
    int d = c >= '0' && c <= '9'                     ? c - '0'
            : (c | 0x20) >= 'a' && (c | 0x20) <= 'z' ? (c | 0x20) - 'a' + 10
                                                     : 99;
    if (d >= base) return false;
    digits += c;
  }
  if (digits.empty()) return false;
  errno = 0;
  const long long v = std::strtoll((neg ? "-" + digits : digits).c_str(), nullptr, base);
  if (errno == ERANGE) return false;
  *out = v;
  return true;
}

bool parse_py_float(const std::string& text, double* out) {
  const std::string s = pystr::strip(text, true, true);
  size_t i = 0;
  std::string clean;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) clean += s[i++];
  const std::string rest = pystr::lower(s.substr(i));
  if (rest == "inf" || rest == "infinity" || rest == "nan") {
    *out = rest == "nan" ? std::nan("") : HUGE_VAL;
    if (clean == "-") *out = -*out;
    return true;
  }
  // Digits with single underscores between them; true when there was at least one digit.
  auto digit_run = [&]() {
    bool any = false;
    while (i < s.size()) {
      if (s[i] >= '0' && s[i] <= '9') {
        clean += s[i++];
        any = true;
      } else if (s[i] == '_' && any && i + 1 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '9') {
        ++i;
      } else {
        break;
      }
    }
    return any;
  };
  const bool int_part = digit_run();
  bool frac_part = false;
  if (i < s.size() && s[i] == '.') {
    clean += s[i++];
    frac_part = digit_run();
  }
  if (!int_part && !frac_part) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    clean += s[i++];
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) clean += s[i++];
    if (!digit_run()) return false;
  }
  if (i != s.size()) return false;
  *out = std::strtod(clean.c_str(), nullptr);
  return true;
}

}  // namespace starattn::jinja
