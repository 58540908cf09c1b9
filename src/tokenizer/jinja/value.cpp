#include "tokenizer/jinja/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "starattn/error.h"
#include "tokenizer/jinja/pystr.h"
#include "tokenizer/utf8.h"

namespace starattn::jinja {

namespace {

// Printing, comparing and serialising recurse into containers; a template can nest values
// deeper than any real one (or build a cycle through a namespace), so the walk stops here.
constexpr int kMaxNesting = 200;

void check_depth(int depth) {
  SA_CHECK(depth <= kMaxNesting, "a value is nested more than ", kMaxNesting,
           " levels deep (or contains itself)");
}

bool equal_at(const Value& a, const Value& b, int depth, int64_t* budget);

// Counts comparison work against the caller's step budget: two lists holding the same long
// strings many times over can take long to compare.
void spend(int64_t* budget, int64_t units) {
  if (!budget) return;
  *budget -= units;
  SA_CHECK(*budget >= 0, "comparing values takes more steps than the template may still run");
}

bool lists_equal(const ListObj& x, const ListObj& y, int depth, int64_t* budget) {
  // A list never equals a tuple in Python; a range equals only a range.
  if (x.seq != y.seq) return false;
  if (x.items.size() != y.items.size()) return false;
  for (size_t k = 0; k < x.items.size(); ++k) {
    if (!equal_at(x.items[k], y.items[k], depth + 1, budget)) return false;
  }
  return true;
}

bool equal_at(const Value& a, const Value& b, int depth, int64_t* budget) {
  check_depth(depth);
  spend(budget, 1);
  if (a.is_number() && b.is_number()) {
    if (a.is_int_like() && b.is_int_like()) return a.as_int() == b.as_int();
    if (a.kind == Kind::Float && b.kind == Kind::Float) return a.f == b.f;
    // int vs float: exact, as Python compares them.
    const double f = a.kind == Kind::Float ? a.f : b.f;
    const int64_t n = a.kind == Kind::Float ? b.as_int() : a.as_int();
    if (std::isnan(f) || std::trunc(f) != f || std::fabs(f) >= 9.2233720368547758e18) return false;
    return static_cast<int64_t>(f) == n;
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Kind::Undefined:
    case Kind::None:
      return true;
    case Kind::String:
      if (a.str == b.str) return true;  // the same buffer
      spend(budget, static_cast<int64_t>(std::min(a.s().size(), b.s().size()) / 64));
      return a.s() == b.s();
    case Kind::List:
      return lists_equal(list_of(a), list_of(b), depth, budget);
    case Kind::Dict: {
      const DictObj &x = dict_of(a), &y = dict_of(b);
      if (x.entries.size() != y.entries.size()) return false;
      for (const auto& [k, v] : x.entries) {
        const Value* w = y.find(k);
        if (!w || !equal_at(v, *w, depth + 1, budget)) return false;
      }
      return true;
    }
    default:
      return a.obj == b.obj;
  }
}

// Text is built into one buffer that may not grow past `max` bytes, so printing a list that
// holds the same long string a million times fails instead of allocating gigabytes.
struct Printer {
  std::string out;
  size_t max;

  void check() const {
    SA_CHECK(out.size() <= max, "printing a value makes more than the ", max,
             " bytes of text the template may still make");
  }
  void seq(const ListObj& l, const char* open, const char* close, int depth) {
    out += open;
    for (size_t k = 0; k < l.items.size(); ++k) {
      if (k) out += ", ";
      value(l.items[k], true, depth + 1);
    }
    if (l.seq == Seq::Tuple && l.items.size() == 1) out += ",";
    out += close;
  }
  void dict(const DictObj& d, int depth) {
    out += "{";
    for (size_t k = 0; k < d.entries.size(); ++k) {
      if (k) out += ", ";
      value(d.entries[k].first, true, depth + 1);
      out += ": ";
      value(d.entries[k].second, true, depth + 1);
    }
    out += "}";
  }
  void value(const Value& v, bool repr, int depth) {
    check_depth(depth);
    switch (v.kind) {
      case Kind::Undefined:
        out += repr ? "Undefined" : "";
        break;
      case Kind::None:
        out += "None";
        break;
      case Kind::Bool:
        out += v.b ? "True" : "False";
        break;
      case Kind::Int:
        out += std::to_string(v.i);
        break;
      case Kind::Float:
        out += float_repr(v.f);
        break;
      case Kind::String:
        if (repr) {
          out += pystr::repr(v.s());
        } else {
          out += v.s();
        }
        break;
      case Kind::List: {
        const ListObj& l = list_of(v);
        switch (l.seq) {
          case Seq::List:
            seq(l, "[", "]", depth);
            break;
          case Seq::Tuple:
            seq(l, "(", ")", depth);
            break;
          case Seq::DictKeys:
            seq(l, "dict_keys([", "])", depth);
            break;
          case Seq::DictValues:
            seq(l, "dict_values([", "])", depth);
            break;
          case Seq::DictItems:
            seq(l, "dict_items([", "])", depth);
            break;
          case Seq::Range:
            out += "range(" + std::to_string(l.range_start) + ", " + std::to_string(l.range_stop);
            if (l.range_step != 1) out += ", " + std::to_string(l.range_step);
            out += ")";
            break;
        }
        break;
      }
      case Kind::Dict:
        dict(dict_of(v), depth);
        break;
      case Kind::Namespace:
        out += "<Namespace ";
        dict(dict_of(v), depth);
        out += ">";
        break;
      case Kind::Generator:
        fail("cannot print a generator (the result of map, select, ... filters): add |list");
      case Kind::Callable: {
        std::string r = v.obj->repr();
        SA_CHECK(!r.empty(), "cannot print a function; call it with ()");
        out += r;
        break;
      }
      case Kind::Loop:
        fail("cannot print the loop variable");
    }
    check();
  }
};

// json.dumps's string encoder.
void json_string(std::string& out, const std::string& s, bool ensure_ascii) {
  static const char* kHex = "0123456789abcdef";
  auto u4 = [&](uint32_t c) {
    out += "\\u";
    for (int d = 3; d >= 0; --d) out += kHex[(c >> (4 * d)) & 0xF];
  };
  out += '"';
  for (size_t i = 0; i < s.size();) {
    const unsigned char b = static_cast<unsigned char>(s[i]);
    if (b >= 0x20 && b < 0x80 && b != '"' && b != '\\') {
      out += static_cast<char>(b);  // plain ASCII, the common case
      ++i;
      continue;
    }
    char32_t cp;
    const size_t n = utf8::next(s, i, &cp);
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (cp == '"') {
      out += "\\\"";
    } else if (cp == '\\') {
      out += "\\\\";
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp == '\b') {
      out += "\\b";
    } else if (cp == '\f') {
      out += "\\f";
    } else if (cp < 0x20) {
      u4(cp);
    } else if (ensure_ascii && cp != utf8::kInvalid && cp >= 0x80) {
      if (cp >= 0x10000) {
        const uint32_t v = cp - 0x10000;
        u4(0xD800 + (v >> 10));
        u4(0xDC00 + (v & 0x3FF));
      } else {
        u4(cp);
      }
    } else if (cp == utf8::kInvalid) {
      out += static_cast<char>(c);  // a malformed byte passes through as it is
    } else {
      out.append(s, i, n);
    }
    i += n;
  }
  out += '"';
}

std::string json_float(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  return float_repr(d);
}

std::string json_key(const Value& k) {
  switch (k.kind) {
    case Kind::String:
      return k.s();
    case Kind::Int:
      return std::to_string(k.i);
    case Kind::Bool:
      return k.b ? "true" : "false";
    case Kind::None:
      return "null";
    case Kind::Float:
      return json_float(k.f);
    default:
      fail("keys must be str, int, float, bool or None, not ", type_name(k));
  }
}

void json_at(std::string& out, const Value& v, const JsonOptions& o, int depth, size_t max) {
  check_depth(depth);
  SA_CHECK(out.size() <= max, "tojson makes more than the ", max,
           " bytes of text the template may still make");
  const std::string item_sep = o.has_separators ? o.item_sep : o.has_indent ? "," : ", ";
  const std::string key_sep = o.has_separators ? o.key_sep : ": ";
  auto newline = [&](int level) {
    if (!o.has_indent) return;
    out += '\n';
    for (int k = 0; k < level; ++k) out += o.indent;
  };
  switch (v.kind) {
    case Kind::None:
      out += "null";
      return;
    case Kind::Bool:
      out += v.b ? "true" : "false";
      return;
    case Kind::Int:
      out += std::to_string(v.i);
      return;
    case Kind::Float:
      out += json_float(v.f);
      return;
    case Kind::String:
      json_string(out, v.s(), o.ensure_ascii);
      return;
    case Kind::List: {
      const ListObj& l = list_of(v);
      if (l.seq != Seq::List && l.seq != Seq::Tuple) break;  // views and ranges: not JSON
      if (l.items.empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (size_t k = 0; k < l.items.size(); ++k) {
        if (k) out += item_sep;
        newline(depth + 1);
        json_at(out, l.items[k], o, depth + 1, max);
      }
      newline(depth);
      out += ']';
      return;
    }
    case Kind::Dict: {
      const DictObj& d = dict_of(v);
      if (d.entries.empty()) {
        out += "{}";
        return;
      }
      std::vector<std::pair<std::string, const Value*>> items;
      for (const auto& [k, val] : d.entries) items.emplace_back(json_key(k), &val);
      if (o.sort_keys) {
        for (const auto& [k, val] : d.entries) {
          SA_CHECK(d.entries.front().first.kind == k.kind,
                   "tojson(sort_keys=True): keys of different types cannot be sorted");
        }
        std::vector<size_t> order(d.entries.size());
        for (size_t k = 0; k < order.size(); ++k) order[k] = k;
        std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) {
          return less(d.entries[x].first, d.entries[y].first);
        });
        std::vector<std::pair<std::string, const Value*>> sorted;
        for (size_t k : order) sorted.push_back(items[k]);
        items = std::move(sorted);
      }
      out += '{';
      for (size_t k = 0; k < items.size(); ++k) {
        if (k) out += item_sep;
        newline(depth + 1);
        json_string(out, items[k].first, o.ensure_ascii);
        out += key_sep;
        json_at(out, *items[k].second, o, depth + 1, max);
      }
      newline(depth);
      out += '}';
      return;
    }
    default:
      break;
  }
  fail("Object of type ", type_name(v), " is not JSON serializable");
}

}  // namespace

Value Value::undefined(std::string why) {
  Value v;
  if (!why.empty()) v.str = std::make_shared<const std::string>(std::move(why));
  return v;
}

Value Value::boolean(bool x) {
  Value v = with_kind(Kind::Bool);
  v.b = x;
  return v;
}

Value Value::integer(int64_t x) {
  Value v = with_kind(Kind::Int);
  v.i = x;
  return v;
}

Value Value::number(double x) {
  Value v = with_kind(Kind::Float);
  v.f = x;
  return v;
}

Value Value::string(std::string s) {
  return string(std::make_shared<const std::string>(std::move(s)));
}

Value Value::string(std::shared_ptr<const std::string> s) {
  Value v = with_kind(Kind::String);
  v.str = std::move(s);
  return v;
}

Value Value::object(Kind k, Object* o) {
  Value v = with_kind(k);
  v.obj = o;
  return v;
}

namespace {

// A text that is the same for keys Python's dict takes as the same (1, 1.0 and True; equal
// tuples), so every key is found by hashing rather than by comparing with each entry.
void key_text(std::string& out, const Value& k, int depth) {
  check_depth(depth);
  switch (k.kind) {
    case Kind::String:
      out += 's';
      out += std::to_string(k.s().size());
      out += ':';
      out += k.s();
      return;
    case Kind::Bool:
    case Kind::Int:
      out += 'i' + std::to_string(k.as_int()) + ';';
      return;
    case Kind::Float:
      if (std::trunc(k.f) == k.f && std::fabs(k.f) < 9.2233720368547758e18) {
        out += 'i' + std::to_string(static_cast<int64_t>(k.f)) + ';';
      } else {
        out += 'f' + float_repr(k.f) + ';';
      }
      return;
    case Kind::None:
      out += 'N';
      return;
    case Kind::Undefined:
      out += 'U';
      return;
    case Kind::List:  // a tuple (only tuples are hashable)
      out += '(';
      for (const Value& x : list_of(k).items) key_text(out, x, depth + 1);
      out += ')';
      return;
    default:  // hashable by identity
      out += 'o' + std::to_string(reinterpret_cast<uintptr_t>(k.obj)) + ';';
      return;
  }
}

}  // namespace

std::string hash_key(const Value& v) {
  std::string text;
  key_text(text, v, 0);
  return text;
}

const Value* DictObj::find(const Value& key) const {
  if (key.kind == Kind::String) {
    auto it = string_keys.find(key.s());
    return it == string_keys.end() ? nullptr : &entries[it->second].second;
  }
  std::string text;
  key_text(text, key, 0);
  auto it = other_keys.find(text);
  return it == other_keys.end() ? nullptr : &entries[it->second].second;
}

void DictObj::set(const Value& key, Value v) {
  std::pair<std::unordered_map<std::string, size_t>::iterator, bool> slot;
  if (key.kind == Kind::String) {
    slot = string_keys.emplace(key.s(), entries.size());
  } else {
    std::string text;
    key_text(text, key, 0);
    slot = other_keys.emplace(std::move(text), entries.size());
  }
  if (slot.second) {
    entries.emplace_back(key, std::move(v));
  } else {
    entries[slot.first->second].second = std::move(v);
  }
}

void Heap::charge(size_t n) {
  elements_ += n;
  SA_CHECK(elements_ <= max_elements_, "the template builds more than ", max_elements_,
           " list/dict elements");
}

Value new_list(Heap& heap, std::vector<Value> items, Seq seq) {
  heap.charge(items.size());
  ListObj* l = heap.make<ListObj>();
  l->items = std::move(items);
  l->seq = seq;
  return Value::object(Kind::List, l);
}

Value new_dict(Heap& heap) {
  return Value::object(Kind::Dict, heap.make<DictObj>());
}

std::string type_name(const Value& v) {
  switch (v.kind) {
    case Kind::Undefined:
      return "Undefined";
    case Kind::None:
      return "NoneType";
    case Kind::Bool:
      return "bool";
    case Kind::Int:
      return "int";
    case Kind::Float:
      return "float";
    case Kind::String:
      return "str";
    case Kind::List:
      switch (list_of(v).seq) {
        case Seq::List:
          return "list";
        case Seq::Tuple:
          return "tuple";
        case Seq::DictKeys:
          return "dict_keys";
        case Seq::DictValues:
          return "dict_values";
        case Seq::DictItems:
          return "dict_items";
        case Seq::Range:
          return "range";
      }
      return "list";
    case Kind::Dict:
      return "dict";
    case Kind::Namespace:
      return "Namespace";
    case Kind::Generator:
      return "generator";
    case Kind::Callable:
      return "function";
    case Kind::Loop:
      return "LoopContext";
  }
  return "object";
}

bool truthy(const Value& v) {
  switch (v.kind) {
    case Kind::Undefined:
    case Kind::None:
      return false;
    case Kind::Bool:
      return v.b;
    case Kind::Int:
      return v.i != 0;
    case Kind::Float:
      return v.f != 0;
    case Kind::String:
      return !v.s().empty();
    case Kind::List:
      return !list_of(v).items.empty();
    case Kind::Dict:
      return !dict_of(v).entries.empty();
    default:
      return true;
  }
}

bool equal(const Value& a, const Value& b, int64_t* budget) {
  return equal_at(a, b, 0, budget);
}

bool less(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_int_like() && b.is_int_like()) return a.as_int() < b.as_int();
    return a.as_double() < b.as_double();
  }
  if (a.kind == Kind::String && b.kind == Kind::String) return a.s() < b.s();  // UTF-8 order
  if (a.kind == Kind::List && b.kind == Kind::List && list_of(a).seq == list_of(b).seq &&
      (list_of(a).seq == Seq::List || list_of(a).seq == Seq::Tuple)) {
    const auto &x = list_of(a).items, &y = list_of(b).items;
    for (size_t k = 0; k < x.size() && k < y.size(); ++k) {
      if (!equal(x[k], y[k])) return less(x[k], y[k]);
    }
    return x.size() < y.size();
  }
  if (a.is_undefined() || b.is_undefined()) {
    const Value& u = a.is_undefined() ? a : b;
    fail(u.str ? *u.str : "an undefined value cannot be compared");
  }
  fail("'<' not supported between instances of '", type_name(a), "' and '", type_name(b), "'");
}

bool hashable(const Value& v) {
  switch (v.kind) {
    case Kind::List:
      if (list_of(v).seq != Seq::Tuple) return false;
      return std::all_of(list_of(v).items.begin(), list_of(v).items.end(), hashable);
    case Kind::Dict:
      return false;
    default:
      return true;
  }
}

std::string to_str(const Value& v, size_t max_bytes) {
  if (v.kind == Kind::String) {
    SA_CHECK(v.s().size() <= max_bytes, "printing a value makes more than the ", max_bytes,
             " bytes of text the template may still make");
    return v.s();
  }
  Printer p{"", max_bytes};
  p.value(v, false, 0);
  return std::move(p.out);
}

std::string to_repr(const Value& v, size_t max_bytes) {
  Printer p{"", max_bytes};
  p.value(v, true, 0);
  return std::move(p.out);
}

std::string repr_for_message(const Value& v) {
  Printer p{"", 200};
  try {
    p.value(v, true, 0);
  } catch (const Error&) {
    return p.out.substr(0, 200) + "...";
  }
  return std::move(p.out);
}

std::string float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  if (d == 0) return std::signbit(d) ? "-0.0" : "0.0";
  // Shortest round-trip digits, then Python's layout: fixed for 1e-4 <= |d| < 1e16.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  const bool neg = sci[0] == '-';
  if (neg) sci.erase(0, 1);
  const size_t e_at = sci.find('e');
  std::string digits = sci.substr(0, e_at);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  const int exp = std::atoi(sci.c_str() + e_at + 1);
  std::string out = neg ? "-" : "";
  if (exp >= -4 && exp < 16) {
    if (exp < 0) {
      out += "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
    } else if (static_cast<size_t>(exp) + 1 >= digits.size()) {
      out += digits + std::string(static_cast<size_t>(exp) + 1 - digits.size(), '0') + ".0";
    } else {
      out += digits.substr(0, static_cast<size_t>(exp) + 1) + "." +
             digits.substr(static_cast<size_t>(exp) + 1);
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) {
    out += '.';
    out += digits.substr(1);
  }
  out += exp < 0 ? "e-" : "e+";
  const int a = std::abs(exp);
  if (a < 10) out += '0';
  out += std::to_string(a);
  return out;
}

std::string to_json(const Value& v, const JsonOptions& opt, size_t max_bytes) {
  std::string out;
  json_at(out, v, opt, 0, max_bytes);
  SA_CHECK(out.size() <= max_bytes, "tojson makes more than the ", max_bytes,
           " bytes of text the template may still make");
  return out;
}

}  // namespace starattn::jinja
