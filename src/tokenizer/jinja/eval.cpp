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

// Whether jinja2's compiler folds this expression to a constant: literals combined by
// operators (the subset that matters for the ** quirk below).
bool folds_to_constant(const Expr& e) {
  switch (e.type) {
    case ExprType::Const:
      return true;
    case ExprType::Neg:
    case ExprType::Pos:
    case ExprType::Not:
    case ExprType::Binary:
    case ExprType::And:
    case ExprType::Or:
    case ExprType::Concat:
    case ExprType::Compare:
      for (const auto& k : e.kids) {
        if (!k || !folds_to_constant(*k)) return false;
      }
      return true;
    default:
      return false;
  }
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
  for (const auto& kv : kw) {
    // Not a structured binding: clang before 16 cannot capture one in a lambda.
    const std::string& k = kv.first;
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

bool Interp::same(const Value& a, const Value& b) {
  int64_t left = opt_.limits.max_steps - steps_;
  const bool r = equal(a, b, &left);
  steps_ = opt_.limits.max_steps - left;
  return r;
}

void Interp::charge_bytes(size_t n) {
  bytes_ += n;
  SA_CHECK(bytes_ <= opt_.limits.max_bytes, "the template made more than ", opt_.limits.max_bytes,
           " bytes of text");
}

void Interp::check_text(size_t n) const {
  SA_CHECK(n <= bytes_left(), "the template made more than ", opt_.limits.max_bytes,
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
        emit(v.is_string() ? v.s() : text(v));
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
        Flow f = exec_scoped(s);
        out_ = saved;
        Value v = Value::string(std::move(buf));
        if (s.expr) v = apply_filters(*s.expr, v);
        if (s.type == StmtType::SetBlock) {
          assign(s.target, v);
        } else {
          emit(text(v));
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
      case StmtType::With:
      case StmtType::Generation:
        return exec_scoped(s);
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

Frame* Interp::scope_for(const Stmt& s, Frame& on_stack, Frame* parent) {
  if (s.heap_scope) return heap_frame(parent);
  on_stack.parent = parent;
  return &on_stack;
}

// Block set, filter, with and generation bodies get their own scope, as in jinja2: what they
// set stays inside. (with's values are computed outside it.)
Interp::Flow Interp::exec_scoped(const Stmt& s) {
  Frame on_stack;
  Frame* scope = scope_for(s, on_stack, frame_);
  for (const auto& [name, e] : s.with_vars) scope->vars[name] = eval(*e);
  Frame* saved = frame_;
  frame_ = scope;
  struct Restore {
    Interp& in;
    Frame* f;
    ~Restore() { in.frame_ = f; }
  } restore{*this, saved};
  return exec(s.body);
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
    Frame on_stack;
    frame_ = scope_for(s, on_stack, outer);
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
    Frame on_stack;  // each iteration has its own scope, as in jinja2
    frame_ = scope_for(s, on_stack, outer);
    frame_->vars["loop"] = loop_value;
    assign(s.target, loop->items[k]);
    const Flow f = exec(s.body);
    frame_ = outer;
    if (f == Flow::Break) break;
  }
  return Flow::Normal;
}

void Interp::exec_macro_def(const Stmt& s) {
  // The parser put every scope a macro is defined in on the heap (Stmt::heap_scope), so the
  // macro keeps its scope alive as a Python closure does: it sees later assignments there and
  // itself (for recursion), and stays valid if it escapes its block (say into a namespace).
  SA_CHECK(frame_->on_heap, "internal error: macro '", s.name, "' defined in a stack scope");
  CallableObj* m = heap.make<CallableObj>();
  m->type = CallableObj::Type::Macro;
  m->name = s.name;
  m->macro = &s;
  m->closure = frame_;
  frame_->vars[s.name] = Value::object(Kind::Callable, m);
}

Value Interp::call_macro(const CallableObj& m, const Args& args) {
  DepthGuard guard(*this);
  const Stmt& def = *m.macro;
  SA_CHECK(def.uses_varargs || args.pos.size() <= def.params.size(), "macro '", def.name,
           "' takes not more than ", def.params.size(), " argument(s)");
  Frame on_stack;
  Frame& scope = *scope_for(def, on_stack, m.closure);
  std::vector<Value> extra_pos;
  Value extra_kw = new_dict(heap);
  for (size_t k = 0; k < args.pos.size(); ++k) {
    if (k < def.params.size()) {
      scope.vars[def.params[k]] = args.pos[k];
    } else {
      extra_pos.push_back(args.pos[k]);
    }
  }
  for (const auto& [name, v] : args.kw) {
    auto it = std::find(def.params.begin(), def.params.end(), name);
    if (it == def.params.end()) {
      SA_CHECK(def.uses_kwargs, "macro '", def.name, "' has no argument '", name, "'");
      heap.charge(1);
      dict_of(extra_kw).set(str(name), v);
      continue;
    }
    SA_CHECK(!scope.vars.count(name), "macro '", def.name, "' got multiple values for argument '",
             name, "'");
    scope.vars[name] = v;
  }
  if (def.uses_varargs) scope.vars["varargs"] = list(std::move(extra_pos), Seq::Tuple);
  if (def.uses_kwargs) scope.vars["kwargs"] = extra_kw;
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
        if (!neg) return Value::integer(v.as_int());
        SA_CHECK(v.as_int() != INT64_MIN, "integer overflow (integers here are 64-bit)");
        return Value::integer(-v.as_int());
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
      const Expr& left = *e.kids[0];
      if (e.name == "**" && left.type == ExprType::Neg && left.kids[0]->type == ExprType::Const &&
          left.kids[0]->constant.is_number() && !folds_to_constant(*e.kids[1])) {
        // jinja2 writes (-n) ** x as the Python source "-n ** x", which Python reads as
        // -(n ** x); templates rendered by jinja2 get that, so they get it here too. (With a
        // constant x jinja2 folds the whole expression first and gets (-n) ** x.)
        const Value n = left.kids[0]->constant;
        return eval_binary("-", Value::integer(0), eval_binary("**", n, b));
      }
      return eval_binary(e.name, a, b);
    }
    case ExprType::Concat: {
      std::string out;
      for (const auto& k : e.kids) {
        const Value v = eval(*k);
        out += v.is_string() ? v.s() : text(v);
        check_text(out.size());
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

}  // namespace starattn::jinja
