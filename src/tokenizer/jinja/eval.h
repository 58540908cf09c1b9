// The interpreter: runs a parsed template over its variables, with jinja2's scoping (for loop
// iterations, macros, block set, filter, with and generation bodies get their own scope, `if`
// does not), Python's semantics for every operator, and hard limits so a hostile template fails
// with an error instead of hanging, recursing out of stack or exhausting memory.
#pragma once

#include <cstdint>
#include <ctime>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>
#include <vector>

#include "starattn/error.h"
#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/lexer.h"
#include "tokenizer/jinja/value.h"

namespace starattn::jinja {

struct Limits {
  int64_t max_steps = 10'000'000;       // expressions evaluated + loop iterations + work units
  size_t max_bytes = size_t{64} << 20;  // bytes of all strings made in one render (output too)
  size_t max_elements = 2'000'000;      // list/dict/scope elements built in one render
  int max_depth = 400;                  // nested statements, expressions and macro calls
};

struct RenderOptions {
  Limits limits;
  // The local time strftime_now() formats; the system clock when empty.
  std::function<std::tm()> now;
};

// raise_exception(msg) in a template: what() is the template's message, unchanged.
class RaisedError : public Error {
 public:
  using Error::Error;
};

// A function argument list as a call site gives it.
struct Args {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;

  // Argument i (positional) or `name` (keyword), or nullptr when neither is given.
  const Value* get(size_t i, const char* name) const;
  Value get_or(size_t i, const char* name, Value fallback) const;
  // Throws Error naming `fn` for more than max_pos positional arguments or another keyword.
  void check(const char* fn, size_t max_pos, std::initializer_list<const char*> names) const;
};

// The variables of one scope. Most scopes hold a handful (a loop iteration makes one), so a flat
// list searched in order is fastest; past a few dozen names an index keeps lookups O(1), so a
// template with many top-level names cannot make lookups quadratic.
class Vars {
 public:
  Vars() { items_.reserve(4); }
  Value* find(const std::string& name) {
    if (!index_.empty()) {
      auto it = index_.find(name);
      return it == index_.end() ? nullptr : &items_[it->second].second;
    }
    for (auto& [k, v] : items_) {
      if (k == name) return &v;
    }
    return nullptr;
  }
  const Value* find(const std::string& name) const { return const_cast<Vars*>(this)->find(name); }
  bool count(const std::string& name) const { return find(name) != nullptr; }
  Value& operator[](const std::string& name) {
    if (Value* v = find(name)) return *v;
    items_.emplace_back(name, Value());
    if (!index_.empty()) {
      index_.emplace(name, items_.size() - 1);
    } else if (items_.size() > kIndexFrom) {
      for (size_t k = 0; k < items_.size(); ++k) index_.emplace(items_[k].first, k);
    }
    return items_.back().second;
  }
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }

 private:
  static constexpr size_t kIndexFrom = 32;
  std::vector<std::pair<std::string, Value>> items_;
  std::unordered_map<std::string, size_t> index_;  // name -> position, once there are many
};

// A scope. Loop iterations and macro calls use frames on the C++ stack; the globals, the
// template's top level and macro closures are owned by the Heap (on_heap).
struct Frame : Object {
  Vars vars;
  Frame* parent = nullptr;
  bool on_heap = false;
};

struct CallableObj : Object {
  enum class Type : uint8_t { Global, Method, Macro } type = Type::Global;
  std::string name;
  Value self;                   // Method: the receiver
  const Stmt* macro = nullptr;  // Macro
  Frame* closure = nullptr;     // Macro: the scope it was defined in

  std::string repr() const override {
    return type == Type::Macro ? "<Macro '" + name + "'>" : std::string();
  }
};

struct LoopObj : Object {
  std::vector<Value> items;  // released when the loop ends (the object may outlive it)
  size_t length = 0;
  size_t index0 = 0;
  bool has_changed_state = false;
  Value changed_state;  // the last values given to loop.changed()
};

class Interp {
 public:
  Interp(const Source& src, const RenderOptions& opt);
  // globals: a JSON object of variables (messages, add_generation_prompt, bos_token, ...).
  std::string render(const Body& body, const nlohmann::ordered_json& globals);

  // ---- for the built-in filters, tests and methods
  Heap heap;
  Value str(std::string s);  // a new string, counted against the byte budget
  Value list(std::vector<Value> items, Seq seq = Seq::List) {
    return new_list(heap, std::move(items), seq);
  }
  Value generator(std::vector<Value> items);
  // The items a for loop would visit (a generator is consumed); TypeError for non-iterables.
  std::vector<Value> iterate(const Value& v);
  Value getattr(const Value& obj, const std::string& name);
  Value getitem(const Value& obj, const Value& key);
  Value call(const Value& callee, const Args& args);
  Value filter(const std::string& name, const Value& v, const Args& args);
  bool test(const std::string& name, const Value& v, const Args& args);
  std::tm now() const;
  void step(int64_t n = 1);
  bool same(const Value& a, const Value& b);  // Python ==, its work counted in steps
  void charge_bytes(size_t n);
  size_t bytes_left() const {
    return opt_.limits.max_bytes - std::min(bytes_, opt_.limits.max_bytes);
  }
  // str(v) / repr(v), refused past the bytes the template may still make.
  std::string text(const Value& v) const { return to_str(v, bytes_left()); }
  std::string repr_text(const Value& v) const { return to_repr(v, bytes_left()); }
  // Throws once text being built reaches n bytes more than the template may still make.
  void check_text(size_t n) const;
  // An Undefined value used where a value is needed: throws its reason.
  [[noreturn]] void undefined_error(const Value& u) const;
  Value from_json(const nlohmann::ordered_json& j);

 private:
  enum class Flow : uint8_t { Normal, Break, Continue };

  Flow exec(const Body& body);
  Flow exec(const Stmt& s);
  Flow exec_for(const Stmt& s);
  Flow exec_scoped(const Stmt& s);
  Frame* scope_for(const Stmt& s, Frame& on_stack, Frame* parent);
  void exec_macro_def(const Stmt& s);
  Value eval(const Expr& e);
  Value eval_inner(const Expr& e);
  Value eval_call(const Expr& e);
  Value eval_binary(const std::string& op, const Value& a, const Value& b);
  bool compare(const std::string& op, const Value& a, const Value& b);
  Value eval_slice(const Value& obj, const Expr& slice);
  Args eval_args(const CallArgs& c);
  Value apply_filters(const Expr& f, Value v);  // a {% filter %} / {% set | f %} chain
  Value call_macro(const CallableObj& m, const Args& args);
  void assign(const Target& t, const Value& v);
  Value lookup(const std::string& name) const;
  Frame* heap_frame(Frame* parent);
  void emit(const std::string& s);
  [[noreturn]] void error_at(size_t pos, const std::string& msg) const;

  struct DepthGuard {
    Interp& in;
    explicit DepthGuard(Interp& i);
    ~DepthGuard() { --in.depth_; }
  };

  const Source& src_;
  RenderOptions opt_;
  Frame* globals_ = nullptr;
  Frame* frame_ = nullptr;
  std::string* out_ = nullptr;
  int64_t steps_ = 0;
  size_t bytes_ = 0;
  int depth_ = 0;
};

}  // namespace starattn::jinja
