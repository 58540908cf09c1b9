// Python's operators, subscripts, slices, attribute access and iteration for the interpreter.
#include <algorithm>
#include <cmath>

#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/eval.h"
#include "tokenizer/jinja/pystr.h"
#include "tokenizer/utf8.h"

namespace starattn::jinja {

namespace {

// Python ints are unbounded; these are 64-bit and refuse to wrap.
int64_t checked_add(int64_t a, int64_t b) {
  int64_t r = 0;
  SA_CHECK(!__builtin_add_overflow(a, b, &r), "integer overflow (integers here are 64-bit)");
  return r;
}
int64_t checked_sub(int64_t a, int64_t b) {
  int64_t r = 0;
  SA_CHECK(!__builtin_sub_overflow(a, b, &r), "integer overflow (integers here are 64-bit)");
  return r;
}
int64_t checked_mul(int64_t a, int64_t b) {
  int64_t r = 0;
  SA_CHECK(!__builtin_mul_overflow(a, b, &r), "integer overflow (integers here are 64-bit)");
  return r;
}

// Python's float floor division and modulo (Objects/floatobject.c: float_divmod).
std::pair<double, double> float_divmod(double a, double b, const char* what) {
  SA_CHECK(b != 0, what);
  double mod = std::fmod(a, b);
  double div = (a - mod) / b;
  if (mod != 0) {
    if ((b < 0) != (mod < 0)) {
      mod += b;
      div -= 1.0;
    }
  } else {
    mod = std::copysign(0.0, b);
  }
  double floordiv;
  if (div != 0) {
    floordiv = std::floor(div);
    if (div - floordiv > 0.5) floordiv += 1.0;
  } else {
    floordiv = std::copysign(0.0, a / b);
  }
  return {floordiv, mod};
}

int64_t int_floordiv(int64_t a, int64_t b) {
  SA_CHECK(b != 0, "integer division or modulo by zero");
  SA_CHECK(!(a == INT64_MIN && b == -1), "integer overflow (integers here are 64-bit)");
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

int64_t int_mod(int64_t a, int64_t b) {
  SA_CHECK(b != 0, "integer modulo by zero");
  if (b == -1) return 0;
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

}  // namespace

Value Interp::eval_binary(const std::string& op, const Value& a, const Value& b) {
  if (op == "%" && a.is_string()) return str(percent_format(*this, a.s(), b));
  if (a.is_undefined()) undefined_error(a);
  if (b.is_undefined()) undefined_error(b);
  if (a.is_number() && b.is_number()) {
    const bool ints = a.is_int_like() && b.is_int_like();
    const int64_t x = ints ? a.as_int() : 0, y = ints ? b.as_int() : 0;
    const double fx = a.as_double(), fy = b.as_double();
    if (op == "+") {
      if (ints) return Value::integer(checked_add(x, y));
      return Value::number(fx + fy);
    }
    if (op == "-") {
      if (ints) return Value::integer(checked_sub(x, y));
      return Value::number(fx - fy);
    }
    if (op == "*") {
      if (ints) return Value::integer(checked_mul(x, y));
      return Value::number(fx * fy);
    }
    if (op == "/") {
      SA_CHECK(fy != 0, ints ? "division by zero" : "float division by zero");
      return Value::number(fx / fy);
    }
    if (op == "//") {
      if (ints) return Value::integer(int_floordiv(x, y));
      return Value::number(float_divmod(fx, fy, "float floor division by zero").first);
    }
    if (op == "%") {
      if (ints) return Value::integer(int_mod(x, y));
      return Value::number(float_divmod(fx, fy, "float modulo").second);
    }
    if (op == "**") {
      if (ints && y >= 0) {
        int64_t acc = 1, base = x;
        for (int64_t e = y; e > 0; e >>= 1) {
          step();
          if (e & 1) acc = checked_mul(acc, base);
          if (e > 1) base = checked_mul(base, base);
        }
        return Value::integer(acc);
      }
      SA_CHECK(!(fx == 0 && fy < 0), "0.0 cannot be raised to a negative power");
      SA_CHECK(!(fx < 0 && std::trunc(fy) != fy),
               "a negative number to a fractional power is "
               "complex, which is not supported");
      const double r = std::pow(fx, fy);
      SA_CHECK(!std::isinf(r) || std::isinf(fx) || std::isinf(fy),
               "(34, 'Numerical result out of range')");  // Python's OverflowError
      return Value::number(r);
    }
  }
  if (op == "+") {
    if (a.is_string() && b.is_string()) return str(a.s() + b.s());
    if (a.kind == Kind::List && b.kind == Kind::List && list_of(a).seq == list_of(b).seq &&
        (list_of(a).seq == Seq::List || list_of(a).seq == Seq::Tuple)) {
      std::vector<Value> items = list_of(a).items;
      items.insert(items.end(), list_of(b).items.begin(), list_of(b).items.end());
      return list(std::move(items), list_of(a).seq);
    }
    if (a.is_string() || a.kind == Kind::List) {
      fail("can only concatenate ", type_name(a), " (not \"", type_name(b), "\") to ",
           type_name(a));
    }
  }
  if (op == "*") {
    const bool seq_left = a.is_string() || a.kind == Kind::List;
    const Value& seq = seq_left ? a : b;
    const Value& n = seq_left ? b : a;
    if ((seq.is_string() || (seq.kind == Kind::List &&
                             (list_of(seq).seq == Seq::List || list_of(seq).seq == Seq::Tuple))) &&
        n.is_int_like()) {
      const int64_t times = std::max<int64_t>(n.as_int(), 0);
      if (seq.is_string()) {
        const size_t len = seq.s().size();
        SA_CHECK(len == 0 || static_cast<uint64_t>(times) <= (opt_.limits.max_bytes / len),
                 "the template made more than ", opt_.limits.max_bytes, " bytes of text");
        std::string out;
        out.reserve(len * static_cast<size_t>(times));
        for (int64_t k = 0; k < times; ++k) out += seq.s();
        return str(std::move(out));
      }
      const auto& src = list_of(seq).items;
      SA_CHECK(src.empty() || static_cast<uint64_t>(times) <= opt_.limits.max_elements / src.size(),
               "the template builds more than ", opt_.limits.max_elements, " list elements");
      std::vector<Value> items;
      for (int64_t k = 0; k < times; ++k) items.insert(items.end(), src.begin(), src.end());
      return list(std::move(items), list_of(seq).seq);
    }
  }
  fail("unsupported operand type(s) for ", op, ": '", type_name(a), "' and '", type_name(b), "'");
}

bool Interp::compare(const std::string& op, const Value& a, const Value& b) {
  if (op == "==") return same(a, b);
  if (op == "!=") return !same(a, b);
  if (op == "<") return less(a, b);
  if (op == ">") return less(b, a);
  if (op == "<=") return less(a, b) || (!less(b, a) && same(a, b));
  if (op == ">=") return less(b, a) || (!less(a, b) && same(a, b));
  const bool want = op == "in";
  // `x in c`
  const Value& c = b;
  const Value& x = a;
  switch (c.kind) {
    case Kind::Undefined:
      return !want;
    case Kind::String:
      if (!x.is_string()) {
        fail("'in <string>' requires string as left operand, not ", type_name(x));
      }
      step(static_cast<int64_t>(c.s().size() / 64));
      return (pystr::search(c.s(), x.s(), 0) != std::string::npos) == want;
    case Kind::List:
      step(static_cast<int64_t>(list_of(c).items.size()));
      for (const Value& v : list_of(c).items) {
        if (same(v, x)) return want;
      }
      return !want;
    case Kind::Dict:
      SA_CHECK(hashable(x), "unhashable type: '", type_name(x), "'");
      return (dict_of(c).find(x) != nullptr) == want;
    case Kind::Generator: {
      GeneratorObj& g = generator_of(c);
      while (g.pos < g.items.size()) {
        step();
        if (same(g.items[g.pos++], x)) return want;
      }
      return !want;
    }
    default:
      fail("argument of type '", type_name(c), "' is not iterable");
  }
}

Value Interp::eval_slice(const Value& obj, const Expr& sl) {
  if (obj.is_undefined()) undefined_error(obj);
  auto part = [&](const ExprPtr& p) { return p ? eval(*p) : Value::none(); };
  const Value vstart = part(sl.kids[0]), vstop = part(sl.kids[1]), vstep = part(sl.kids[2]);
  const bool is_str = obj.is_string();
  const bool sliceable = is_str || (obj.kind == Kind::List && (list_of(obj).seq == Seq::List ||
                                                               list_of(obj).seq == Seq::Tuple ||
                                                               list_of(obj).seq == Seq::Range));
  // jinja2 compiles a slice to Python's own obj[a:b:c], so these errors are Python's.
  if (!sliceable) {
    if (obj.kind == Kind::Dict) fail("unhashable type: 'slice'");
    fail("'", type_name(obj), "' object is not subscriptable");
  }
  for (const Value* v : {&vstart, &vstop, &vstep}) {
    SA_CHECK(v->kind == Kind::None || v->is_int_like(),
             "slice indices must be integers or None or have an __index__ method");
  }
  const int64_t stepv = vstep.kind == Kind::None ? 1 : vstep.as_int();
  SA_CHECK(stepv != 0, "slice step cannot be zero");
  std::vector<size_t> offs;
  if (is_str) {
    step(static_cast<int64_t>(obj.s().size() / 16));  // the code point table below
    offs = pystr::offsets(obj.s());
  }
  const int64_t len = is_str ? static_cast<int64_t>(offs.size()) - 1
                             : static_cast<int64_t>(list_of(obj).items.size());
  // PySlice_AdjustIndices
  auto adjust = [&](const Value& v, int64_t dflt) {
    if (v.kind == Kind::None) return dflt;
    int64_t i = v.as_int();
    if (i < 0) {
      i += len;
      if (i < 0) i = stepv < 0 ? -1 : 0;
    } else if (i >= len) {
      i = stepv < 0 ? len - 1 : len;
    }
    return i;
  };
  const int64_t start = adjust(vstart, stepv < 0 ? len - 1 : 0);
  const int64_t stop = adjust(vstop, stepv < 0 ? -1 : len);
  std::vector<int64_t> idx;
  for (int64_t i = start; stepv > 0 ? i < stop : i > stop; i += stepv) {
    step();
    idx.push_back(i);
  }
  if (is_str) {
    std::string out;
    for (int64_t i : idx) {
      out.append(obj.s(), offs[static_cast<size_t>(i)],
                 offs[static_cast<size_t>(i) + 1] - offs[static_cast<size_t>(i)]);
    }
    return str(std::move(out));
  }
  std::vector<Value> items;
  for (int64_t i : idx) items.push_back(list_of(obj).items[static_cast<size_t>(i)]);
  const Seq seq = list_of(obj).seq == Seq::Tuple ? Seq::Tuple : Seq::List;
  return list(std::move(items), seq);
}

std::vector<Value> Interp::iterate(const Value& v) {
  switch (v.kind) {
    case Kind::Undefined:
      return {};
    case Kind::List:
      step(static_cast<int64_t>(list_of(v).items.size()));
      return list_of(v).items;
    case Kind::Dict: {
      std::vector<Value> keys;
      for (const auto& [k, x] : dict_of(v).entries) keys.push_back(k);
      step(static_cast<int64_t>(keys.size()));
      return keys;
    }
    case Kind::String: {
      std::vector<Value> out;
      for (std::string& c : pystr::chars(v.s())) out.push_back(str(std::move(c)));
      step(static_cast<int64_t>(out.size()));
      return out;
    }
    case Kind::Generator: {
      GeneratorObj& g = generator_of(v);
      std::vector<Value> out(g.items.begin() + static_cast<std::ptrdiff_t>(g.pos), g.items.end());
      g.pos = g.items.size();
      step(static_cast<int64_t>(out.size()));
      return out;
    }
    default:
      fail("'", type_name(v), "' object is not iterable");
  }
}

Value Interp::getattr(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) undefined_error(obj);
  if (obj.kind == Kind::Dict || obj.kind == Kind::Namespace) {
    if (obj.kind == Kind::Dict) {
      bool found = false;
      Value m = builtin_attr(*this, obj, name, &found);
      if (found) return m;
    }
    const Value* v = dict_of(obj).find(Value::string(name));
    if (v) return *v;
    std::string why = obj.kind == Kind::Dict ? "'dict object'" : "'Namespace'";
    return Value::undefined(why + " has no attribute '" + name + "'");
  }
  return builtin_attr(*this, obj, name);
}

Value Interp::getitem(const Value& obj, const Value& key) {
  if (obj.is_undefined()) undefined_error(obj);
  auto fallback = [&]() -> Value {
    // jinja2 tries obj[key] first, then (for a string key) the attribute of that name.
    if (key.is_string()) {
      return obj.kind == Kind::Namespace ? getattr(obj, key.s())
                                         : builtin_attr(*this, obj, key.s());
    }
    std::string why = "'";
    why += type_name(obj);
    why += " object' has no element ";
    return Value::undefined(why + repr_for_message(key));
  };
  switch (obj.kind) {
    case Kind::Dict: {
      if (!hashable(key)) return fallback();
      const Value* v = dict_of(obj).find(key);
      return v ? *v : fallback();
    }
    case Kind::List:
    case Kind::String: {
      if (!key.is_int_like()) return fallback();
      int64_t i = key.as_int();
      if (obj.kind == Kind::String) {
        // Indexes count code points: walk to it (a negative one needs the length first).
        const std::string& s = obj.s();
        if (i < 0) {
          step(static_cast<int64_t>(s.size() / 8));
          i += static_cast<int64_t>(pystr::length(s));
          if (i < 0) return fallback();
        }
        size_t at = 0;
        for (int64_t k = 0; k < i && at < s.size(); ++k) {
          char32_t cp;
          at += utf8::next(s, at, &cp);
        }
        step(static_cast<int64_t>(at / 8));
        if (at >= s.size()) return fallback();
        char32_t cp;
        return str(s.substr(at, utf8::next(s, at, &cp)));
      }
      const auto& items = list_of(obj).items;
      const int64_t len = static_cast<int64_t>(items.size());
      if (i < 0) i += len;
      if (i < 0 || i >= len) return fallback();
      return items[static_cast<size_t>(i)];
    }
    default:
      return fallback();
  }
}

}  // namespace starattn::jinja
