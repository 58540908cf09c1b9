#include "tokenizer/jinja/eval.h"

#include <algorithm>
#include <cmath>

#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/pystr.h"

namespace starattn::jinja {

namespace {

// An error that already carries its template position; outer nodes pass it on unchanged.
class LocatedError : public Error {
 public:
  using Error::Error;
};

constexpr int kMaxJsonDepth = 200;

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

// ---- Args

const Value* Args::get(size_t i, const char* name) const {
  for (const auto& [k, v] : kw) {
    if (k == name) {
      SA_CHECK(i >= pos.size(), "got multiple values for argument '", name, "'");
      return &v;
    }
  }
  return i < pos.size() ? &pos[i] : nullptr;
}

Value Args::get_or(size_t i, const char* name, Value fallback) const {
  const Value* v = get(i, name);
  return v ? *v : fallback;
}

void Args::check(const char* fn, size_t max_pos, std::initializer_list<const char*> names) const {
  SA_CHECK(pos.size() <= max_pos, fn, "() takes at most ", max_pos, " positional argument",
           max_pos == 1 ? "" : "s", ", got ", pos.size());
  for (const auto& [k, v] : kw) {
    const bool known =
        std::any_of(names.begin(), names.end(), [&](const char* n) { return k == n; });
    SA_CHECK(known, fn, "() got an unexpected keyword argument '", k, "'");
  }
}

// ---- Interp

Interp::Interp(const Source& src, const RenderOptions& opt)
    : heap(opt.limits.max_elements), src_(src), opt_(opt) {}

Interp::DepthGuard::DepthGuard(Interp& i) : in(i) {
  if (++in.depth_ > in.opt_.limits.max_depth) {
    --in.depth_;
    fail("the template nests calls and blocks more than ", in.opt_.limits.max_depth,
         " deep (runaway macro recursion?)");
  }
}

std::string Interp::render(const Body& body, const nlohmann::ordered_json& globals) {
  SA_CHECK(globals.is_object(), "template variables must be a JSON object");
  globals_ = heap_frame(nullptr);
  add_globals(*this, *globals_);
  for (const auto& [k, v] : globals.items()) globals_->vars[k] = from_json(v);
  frame_ = heap_frame(globals_);
  std::string out;
  out_ = &out;
  exec(body);
  out_ = nullptr;
  return out;
}

Value Interp::str(std::string s) {
  charge_bytes(s.size());
  return Value::string(std::move(s));
}

Value Interp::generator(std::vector<Value> items) {
  heap.charge(items.size());
  GeneratorObj* g = heap.make<GeneratorObj>();
  g->items = std::move(items);
  return Value::object(Kind::Generator, g);
}

void Interp::step(int64_t n) {
  steps_ += n;
  SA_CHECK(steps_ <= opt_.limits.max_steps, "the template ran more than ", opt_.limits.max_steps,
           " steps (a loop that does not end?)");
}

void Interp::charge_bytes(size_t n) {
  bytes_ += n;
  SA_CHECK(bytes_ <= opt_.limits.max_bytes, "the template made more than ", opt_.limits.max_bytes,
           " bytes of text");
}

void Interp::undefined_error(const Value& u) const {
  fail(u.str ? *u.str : std::string("a value is undefined"));
}

std::tm Interp::now() const {
  if (opt_.now) return opt_.now();
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  return tm;
}

Value Interp::from_json(const nlohmann::ordered_json& j) {
  struct Conv {
    Interp& in;
    Value go(const nlohmann::ordered_json& j, int depth) {
      SA_CHECK(depth <= kMaxJsonDepth, "template variables nest more than ", kMaxJsonDepth,
               " levels deep");
      switch (j.type()) {
        case nlohmann::ordered_json::value_t::null:
          return Value::none();
        case nlohmann::ordered_json::value_t::boolean:
          return Value::boolean(j.get<bool>());
        case nlohmann::ordered_json::value_t::number_integer:
          return Value::integer(j.get<int64_t>());
        case nlohmann::ordered_json::value_t::number_unsigned: {
          const uint64_t u = j.get<uint64_t>();
          SA_CHECK(u <= static_cast<uint64_t>(INT64_MAX), "integer ", u,
                   " does not fit in 64 bits");
          return Value::integer(static_cast<int64_t>(u));
        }
        case nlohmann::ordered_json::value_t::number_float:
          return Value::number(j.get<double>());
        case nlohmann::ordered_json::value_t::string:
          return in.str(j.get<std::string>());
        case nlohmann::ordered_json::value_t::array: {
          std::vector<Value> items;
          for (const auto& x : j) items.push_back(go(x, depth + 1));
          return in.list(std::move(items));
        }
        case nlohmann::ordered_json::value_t::object: {
          Value d = new_dict(in.heap);
          for (const auto& [k, x] : j.items()) {
            in.heap.charge(1);
            dict_of(d).set(in.str(k), go(x, depth + 1));
          }
          return d;
        }
        default:
          fail("unsupported JSON value in template variables");
      }
    }
  };
  return Conv{*this}.go(j, 0);
}

void Interp::emit(const std::string& s) {
  charge_bytes(s.size());
  out_->append(s);
}

void Interp::error_at(size_t pos, const std::string& msg) const {
  throw LocatedError(src_.where(pos) + ": " + msg);
}

Frame* Interp::heap_frame(Frame* parent) {
  Frame* f = heap.make<Frame>();
  f->parent = parent;
  f->on_heap = true;
  return f;
}

Value Interp::lookup(const std::string& name) const {
  for (const Frame* f = frame_; f; f = f->parent) {
    if (const Value* v = f->vars.find(name)) return *v;
  }
  return Value::undefined("'" + name + "' is undefined");
}

// ---- statements

Interp::Flow Interp::exec(const Body& body) {
  for (const auto& s : body) {
    Flow f = exec(*s);
    if (f != Flow::Normal) return f;
  }
  return Flow::Normal;
}

Interp::Flow Interp::exec(const Stmt& s) {
  try {
    DepthGuard guard(*this);
    step();
    switch (s.type) {
      case StmtType::Text:
        emit(s.text);
        return Flow::Normal;
      case StmtType::Print: {
        const Value v = eval(*s.expr);
        emit(v.is_string() ? v.s() : to_str(v));
        return Flow::Normal;
      }
      case StmtType::If:
        for (const auto& [cond, body] : s.branches) {
          if (truthy(eval(*cond))) return exec(body);
        }
        return exec(s.else_body);
      case StmtType::For:
        return exec_for(s);
      case StmtType::Set:
        assign(s.target, eval(*s.expr));
        return Flow::Normal;
      case StmtType::SetBlock:
      case StmtType::FilterBlock: {
        std::string buf;
        std::string* saved = out_;
        out_ = &buf;
        Flow f = exec(s.body);
        out_ = saved;
        Value v = Value::string(std::move(buf));
        if (s.expr) v = apply_filters(*s.expr, v);
        if (s.type == StmtType::SetBlock) {
          assign(s.target, v);
        } else {
          emit(to_str(v));
        }
        return f;
      }
      case StmtType::Macro:
        exec_macro_def(s);
        return Flow::Normal;
      case StmtType::Break:
        return Flow::Break;
      case StmtType::Continue:
        return Flow::Continue;
      case StmtType::With: {
        Frame scope;
        scope.parent = frame_;
        for (const auto& [name, e] : s.with_vars) scope.vars[name] = eval(*e);
        Frame* saved = frame_;
        frame_ = &scope;
        Flow f = exec(s.body);
        frame_ = saved;
        return f;
      }
      case StmtType::Generation:
        return exec(s.body);
    }
    return Flow::Normal;
  } catch (const RaisedError&) {
    throw;
  } catch (const LocatedError&) {
    throw;
  } catch (const Error& e) {
    error_at(s.pos, e.what());
  }
}

Interp::Flow Interp::exec_for(const Stmt& s) {
  std::vector<Value> items = iterate(eval(*s.expr));
  Frame* outer = frame_;
  struct Restore {
    Interp& in;
    Frame* f;
    ~Restore() { in.frame_ = f; }
  } restore{*this, outer};
  if (s.cond) {
    // `for x in xs if cond`: the condition sees the target, and loop.length counts what passed.
    std::vector<Value> kept;
    for (const Value& item : items) {
      step();
      Frame scope;
      scope.parent = outer;
      frame_ = &scope;
      assign(s.target, item);
      if (truthy(eval(*s.cond))) kept.push_back(item);
      frame_ = outer;
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    Frame scope;
    scope.parent = outer;
    frame_ = &scope;
    return exec(s.else_body);  // a break here belongs to an enclosing loop
  }
  LoopObj* loop = heap.make<LoopObj>();
  loop->length = items.size();
  loop->items = std::move(items);
  struct Release {
    LoopObj* l;
    ~Release() { std::vector<Value>().swap(l->items); }
  } release{loop};
  const Value loop_value = Value::object(Kind::Loop, loop);
  for (size_t k = 0; k < loop->length; ++k) {
    step();
    loop->index0 = k;
    Frame scope;  // each iteration has its own scope, as in jinja2
    scope.parent = outer;
    scope.vars["loop"] = loop_value;
    frame_ = &scope;
    assign(s.target, loop->items[k]);
    const Flow f = exec(s.body);
    frame_ = outer;
    if (f == Flow::Break) break;
  }
  return Flow::Normal;
}

void Interp::exec_macro_def(const Stmt& s) {
  CallableObj* m = heap.make<CallableObj>();
  m->type = CallableObj::Type::Macro;
  m->name = s.name;
  m->macro = &s;
  // Loop and macro-call scopes live on the C++ stack; a macro defined in one keeps a copy of
  // what it sees, so it stays valid if it escapes (say into a namespace).
  Frame* f = frame_;
  Frame* closure = nullptr;
  if (f->on_heap) {
    closure = f;
  } else {
    closure = heap_frame(nullptr);
    for (; !f->on_heap; f = f->parent) {
      for (const auto& [k, v] : f->vars) closure->vars.emplace(k, v);  // inner scopes win
    }
    closure->parent = f;
  }
  m->closure = closure;
  frame_->vars[s.name] = Value::object(Kind::Callable, m);
}

Value Interp::call_macro(const CallableObj& m, const Args& args) {
  DepthGuard guard(*this);
  const Stmt& def = *m.macro;
  SA_CHECK(args.pos.size() <= def.params.size(), "macro '", def.name, "' takes not more than ",
           def.params.size(), " argument(s)");
  Frame scope;
  scope.parent = m.closure;
  for (size_t k = 0; k < args.pos.size(); ++k) scope.vars[def.params[k]] = args.pos[k];
  for (const auto& [name, v] : args.kw) {
    auto it = std::find(def.params.begin(), def.params.end(), name);
    SA_CHECK(it != def.params.end(), "macro '", def.name, "' has no argument '", name, "'");
    SA_CHECK(!scope.vars.count(name), "macro '", def.name, "' got multiple values for argument '",
             name, "'");
    scope.vars[name] = v;
  }
  Frame* saved_frame = frame_;
  std::string* saved_out = out_;
  std::string buf;
  struct Restore {
    Interp& in;
    Frame* f;
    std::string* o;
    ~Restore() {
      in.frame_ = f;
      in.out_ = o;
    }
  } restore{*this, saved_frame, saved_out};
  frame_ = &scope;
  const size_t first_default = def.params.size() - def.defaults.size();
  for (size_t k = 0; k < def.params.size(); ++k) {
    if (scope.vars.count(def.params[k])) continue;
    scope.vars[def.params[k]] =
        k >= first_default ? eval(*def.defaults[k - first_default])
                           : Value::undefined("parameter '" + def.params[k] + "' was not provided");
  }
  out_ = &buf;
  exec(def.body);
  return Value::string(std::move(buf));
}

void Interp::assign(const Target& t, const Value& v) {
  switch (t.type) {
    case Target::Type::Name:
      frame_->vars[t.name] = v;
      return;
    case Target::Type::NsAttr: {
      const Value ns = lookup(t.name);
      SA_CHECK(ns.kind == Kind::Namespace, "cannot assign attribute on non-namespace object '",
               t.name, "'");
      SA_CHECK(t.attr.empty() || t.attr[0] != '_',
               "chat templates cannot store underscore-prefixed attributes on a namespace");
      heap.charge(1);
      dict_of(ns).set(str(t.attr), v);
      return;
    }
    case Target::Type::Tuple: {
      std::vector<Value> items = iterate(v);
      SA_CHECK(items.size() >= t.items.size(), "not enough values to unpack (expected ",
               t.items.size(), ", got ", items.size(), ")");
      SA_CHECK(items.size() <= t.items.size(), "too many values to unpack (expected ",
               t.items.size(), ")");
      for (size_t k = 0; k < items.size(); ++k) assign(t.items[k], items[k]);
      return;
    }
  }
}

// ---- expressions

Value Interp::eval(const Expr& e) {
  try {
    DepthGuard guard(*this);
    step();
    return eval_inner(e);
  } catch (const RaisedError&) {
    throw;
  } catch (const LocatedError&) {
    throw;
  } catch (const Error& err) {
    error_at(e.pos, err.what());
  }
}

Value Interp::eval_inner(const Expr& e) {
  switch (e.type) {
    case ExprType::Const:
      return e.constant;
    case ExprType::Name:
      return lookup(e.name);
    case ExprType::Getattr:
      return getattr(eval(*e.kids[0]), e.name);
    case ExprType::Getitem: {
      const Value obj = eval(*e.kids[0]);
      if (e.kids[1]->type == ExprType::Slice) return eval_slice(obj, *e.kids[1]);
      return getitem(obj, eval(*e.kids[1]));
    }
    case ExprType::Slice:
      fail("a slice outside []");
    case ExprType::Call:
      return eval_call(e);
    case ExprType::Filter: {
      SA_CHECK(e.kids[0] != nullptr, "a filter without a value");
      const Value v = eval(*e.kids[0]);
      return filter(e.name, v, eval_args(e.call));
    }
    case ExprType::Test: {
      const Value v = eval(*e.kids[0]);
      return Value::boolean(test(e.name, v, eval_args(e.call)));
    }
    case ExprType::Neg:
    case ExprType::Pos: {
      const Value v = eval(*e.kids[0]);
      if (v.is_undefined()) undefined_error(v);
      const bool neg = e.type == ExprType::Neg;
      if (v.is_int_like()) {
        return Value::integer(neg ? checked_sub(0, v.as_int()) : v.as_int());
      }
      if (v.kind == Kind::Float) return Value::number(neg ? -v.f : v.f);
      fail("bad operand type for unary ", neg ? "-" : "+", ": '", type_name(v), "'");
    }
    case ExprType::Not:
      return Value::boolean(!truthy(eval(*e.kids[0])));
    case ExprType::And: {
      Value a = eval(*e.kids[0]);
      return truthy(a) ? eval(*e.kids[1]) : a;
    }
    case ExprType::Or: {
      Value a = eval(*e.kids[0]);
      return truthy(a) ? a : eval(*e.kids[1]);
    }
    case ExprType::Binary: {
      const Value a = eval(*e.kids[0]);
      const Value b = eval(*e.kids[1]);
      return eval_binary(e.name, a, b);
    }
    case ExprType::Concat: {
      std::string out;
      for (const auto& k : e.kids) {
        const Value v = eval(*k);
        out += v.is_string() ? v.s() : to_str(v);
      }
      return str(std::move(out));
    }
    case ExprType::Compare: {
      Value left = eval(*e.kids[0]);
      for (size_t k = 0; k < e.ops.size(); ++k) {
        Value right = eval(*e.kids[k + 1]);
        if (!compare(e.ops[k], left, right)) return Value::boolean(false);
        left = std::move(right);
      }
      return Value::boolean(true);
    }
    case ExprType::CondExpr:
      if (truthy(eval(*e.kids[0]))) return eval(*e.kids[1]);
      if (e.kids[2]) return eval(*e.kids[2]);
      return Value::undefined(
          "the inline if-expression evaluated to false and no else section was defined");
    case ExprType::List:
    case ExprType::Tuple: {
      std::vector<Value> items;
      for (const auto& k : e.kids) items.push_back(eval(*k));
      return list(std::move(items), e.type == ExprType::Tuple ? Seq::Tuple : Seq::List);
    }
    case ExprType::Dict: {
      Value d = new_dict(heap);
      for (size_t k = 0; k + 1 < e.kids.size(); k += 2) {
        Value key = eval(*e.kids[k]);
        SA_CHECK(hashable(key), "unhashable type: '", type_name(key), "'");
        heap.charge(1);
        dict_of(d).set(key, eval(*e.kids[k + 1]));
      }
      return d;
    }
  }
  fail("unknown expression");
}

Args Interp::eval_args(const CallArgs& c) {
  Args a;
  for (const auto& e : c.args) a.pos.push_back(eval(*e));
  if (c.star_args) {
    for (Value& v : iterate(eval(*c.star_args))) a.pos.push_back(std::move(v));
  }
  for (const auto& [k, e] : c.kwargs) a.kw.emplace_back(k, eval(*e));
  if (c.star_kwargs) {
    const Value d = eval(*c.star_kwargs);
    SA_CHECK(d.kind == Kind::Dict, "argument after ** must be a mapping, not ", type_name(d));
    for (const auto& [k, v] : dict_of(d).entries) {
      SA_CHECK(k.is_string(), "keywords must be strings");
      a.kw.emplace_back(k.s(), v);
    }
  }
  return a;
}

Value Interp::eval_call(const Expr& e) {
  const Value callee = eval(*e.kids[0]);
  return call(callee, eval_args(e.call));
}

Value Interp::call(const Value& callee, const Args& args) {
  if (callee.is_undefined()) undefined_error(callee);
  SA_CHECK(callee.kind == Kind::Callable, "'", type_name(callee), "' object is not callable");
  const CallableObj& c = *static_cast<const CallableObj*>(callee.obj);
  switch (c.type) {
    case CallableObj::Type::Global:
      return call_global(*this, c.name, args);
    case CallableObj::Type::Method:
      return call_method(*this, c.self, c.name, args);
    case CallableObj::Type::Macro:
      return call_macro(c, args);
  }
  fail("unknown callable");
}

Value Interp::apply_filters(const Expr& f, Value v) {
  if (f.kids[0]) v = apply_filters(*f.kids[0], v);
  return filter(f.name, v, eval_args(f.call));
}

Value Interp::filter(const std::string& name, const Value& v, const Args& args) {
  return run_filter(*this, name, v, args);
}

bool Interp::test(const std::string& name, const Value& v, const Args& args) {
  return run_test(*this, name, v, args);
}

Value Interp::eval_binary(const std::string& op, const Value& a, const Value& b) {
  if (a.is_undefined()) undefined_error(a);
  if (b.is_undefined()) undefined_error(b);
  const char o = op[0];
  if (o == '%' && a.is_string()) return str(percent_format(*this, a.s(), b));
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
      return Value::number(std::pow(fx, fy));
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
  if (op == "==") return equal(a, b);
  if (op == "!=") return !equal(a, b);
  if (op == "<") return less(a, b);
  if (op == ">") return less(b, a);
  if (op == "<=") return less(a, b) || (!less(b, a) && equal(a, b));
  if (op == ">=") return less(b, a) || (!less(a, b) && equal(a, b));
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
      return (c.s().find(x.s()) != std::string::npos) == want;
    case Kind::List:
      step(static_cast<int64_t>(list_of(c).items.size()));
      for (const Value& v : list_of(c).items) {
        if (equal(v, x)) return want;
      }
      return !want;
    case Kind::Dict:
      SA_CHECK(hashable(x), "unhashable type: '", type_name(x), "'");
      return (dict_of(c).find(x) != nullptr) == want;
    case Kind::Generator: {
      GeneratorObj& g = generator_of(c);
      while (g.pos < g.items.size()) {
        step();
        if (equal(g.items[g.pos++], x)) return want;
      }
      return !want;
    }
    default:
      fail("argument of type '", type_name(c), "' is not iterable");
  }
}

Value Interp::eval_slice(const Value& obj, const Expr& sl) {
  if (obj.is_undefined()) undefined_error(obj);
  auto part = [&](const ExprPtr& p) -> Value {
    if (!p) return Value::none();
    Value v = eval(*p);
    SA_CHECK(v.kind == Kind::None || v.is_int_like(),
             "slice indices must be integers or None, not ", type_name(v));
    return v;
  };
  const Value vstart = part(sl.kids[0]), vstop = part(sl.kids[1]), vstep = part(sl.kids[2]);
  const int64_t stepv = vstep.kind == Kind::None ? 1 : vstep.as_int();
  SA_CHECK(stepv != 0, "slice step cannot be zero");
  const bool is_str = obj.is_string();
  SA_CHECK(is_str || (obj.kind == Kind::List &&
                      (list_of(obj).seq == Seq::List || list_of(obj).seq == Seq::Tuple ||
                       list_of(obj).seq == Seq::Range)),
           "'", type_name(obj), "' object is not subscriptable");
  std::vector<size_t> offs;
  if (is_str) offs = pystr::offsets(obj.s());
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
    return Value::undefined(why + to_repr(key));
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
        const std::vector<size_t> offs = pystr::offsets(obj.s());
        const int64_t len = static_cast<int64_t>(offs.size()) - 1;
        if (i < 0) i += len;
        if (i < 0 || i >= len) return fallback();
        const size_t k = static_cast<size_t>(i);
        return str(obj.s().substr(offs[k], offs[k + 1] - offs[k]));
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
