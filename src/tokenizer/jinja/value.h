// Values of the Jinja interpreter, with Python's semantics: what str(), repr(), truthiness, ==
// and < give for each type is what CPython gives, because chat templates are written against
// Python jinja2 and their output must match it byte for byte.
//
// Scalars live in the Value itself; strings are shared immutable buffers; containers (lists,
// dicts, namespaces, generators, callables, loop states) are objects owned by the Heap of one
// render, so a template can build reference cycles (a namespace holding itself) without leaks
// and nothing is freed recursively. A Value must not outlive the Heap its objects came from.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace starattn::jinja {

enum class Kind : uint8_t {
  Undefined,  // a missing variable, attribute or item; renders as ""
  None,
  Bool,
  Int,    // Python int within int64 (overflow is an error, not a wrap)
  Float,  // Python float (double)
  String,
  List,       // also tuples, dict views and ranges (see ListObj::Seq)
  Dict,       // insertion-ordered, like Python 3 dicts
  Namespace,  // jinja2's namespace(): attributes settable with {% set ns.x = ... %}
  Generator,  // what jinja2's map/select/... filters return: iterable once, no len()
  Callable,   // built-in function, bound method or macro
  Loop,       // the `loop` variable of a for loop
};

struct Object {
  virtual ~Object() = default;
  // Python's repr() where it is the same every run (a macro's "<Macro 'name'>"); "" where it
  // holds a memory address, which no output can match.
  virtual std::string repr() const { return ""; }
};

struct Value {
  Kind kind = Kind::Undefined;
  union {  // the member that `kind` names
    int64_t i = 0;
    bool b;
    double f;
    Object* obj;  // List .. Loop
  };
  // String: the text (UTF-8). Undefined: why it is undefined, for the error if it is used
  // ("'foo' is undefined"); may be null.
  std::shared_ptr<const std::string> str;

  static Value undefined(std::string why = "");
  static Value none() { return with_kind(Kind::None); }
  static Value boolean(bool v);
  static Value integer(int64_t v);
  static Value number(double v);
  static Value string(std::string s);
  static Value string(std::shared_ptr<const std::string> s);
  static Value object(Kind k, Object* o);

  bool is_undefined() const { return kind == Kind::Undefined; }
  bool is_string() const { return kind == Kind::String; }
  bool is_number() const { return kind == Kind::Int || kind == Kind::Float || kind == Kind::Bool; }
  bool is_int_like() const { return kind == Kind::Int || kind == Kind::Bool; }  // Python int
  const std::string& s() const { return *str; }                                 // only for String
  int64_t as_int() const { return kind == Kind::Bool ? (b ? 1 : 0) : i; }       // only for int-like
  double as_double() const { return kind == Kind::Float ? f : static_cast<double>(as_int()); }

 private:
  static Value with_kind(Kind k) {
    Value v;
    v.kind = k;
    return v;
  }
};

// The Python type of a List value; it decides how it prints and compares.
enum class Seq : uint8_t { List, Tuple, DictKeys, DictValues, DictItems, Range };

struct ListObj : Object {
  std::vector<Value> items;
  Seq seq = Seq::List;
  int64_t range_start = 0, range_stop = 0, range_step = 1;  // for Seq::Range (prints range(a, b))
};

struct DictObj : Object {
  std::vector<std::pair<Value, Value>> entries;
  std::unordered_map<std::string, size_t> string_keys;  // string key -> index in entries
  std::unordered_map<std::string, size_t> other_keys;   // key_text(other key) -> index

  const Value* find(const Value& key) const;
  void set(const Value& key, Value v);  // key must be hashable (checked by the caller)
};

struct GeneratorObj : Object {
  std::vector<Value> items;
  size_t pos = 0;  // items before pos are consumed
};

// Owns every object one render creates, and counts them against a budget so a template cannot
// allocate without bound. Freed all at once with the render.
class Heap {
 public:
  explicit Heap(size_t max_elements) : max_elements_(max_elements) {}
  template <typename T>
  T* make() {
    charge(1);
    objects_.push_back(std::make_unique<T>());
    return static_cast<T*>(objects_.back().get());
  }
  // Counts n more list/dict elements; throws Error past the budget.
  void charge(size_t n);

 private:
  std::vector<std::unique_ptr<Object>> objects_;
  size_t elements_ = 0, max_elements_;
};

Value new_list(Heap& heap, std::vector<Value> items, Seq seq = Seq::List);
Value new_dict(Heap& heap);
inline ListObj& list_of(const Value& v) {
  return *static_cast<ListObj*>(v.obj);
}
inline DictObj& dict_of(const Value& v) {
  return *static_cast<DictObj*>(v.obj);
}
inline GeneratorObj& generator_of(const Value& v) {
  return *static_cast<GeneratorObj*>(v.obj);
}

// Python's type name ("int", "str", "list", "NoneType", ...), for error messages.
std::string type_name(const Value& v);
bool truthy(const Value& v);
// Python ==. Throws Error past a nesting depth (values a template built to be absurdly deep)
// and, with a budget, when the comparison takes more than *budget units (which it spends).
bool equal(const Value& a, const Value& b, int64_t* budget = nullptr);
// Python <: numbers, strings (by code point), lists and tuples (lexicographic); TypeError else.
bool less(const Value& a, const Value& b);
// True for the types Python can hash (what a dict key may be).
bool hashable(const Value& v);
// For a hashable value: a text equal for exactly the values Python's dict and set take as one.
std::string hash_key(const Value& v);

// Python str() and repr(); Undefined prints as "" (str) or "Undefined" (repr). Throws Error for
// values whose Python text carries a memory address (functions, generators).
// max_bytes bounds the text (Error past it).
std::string to_str(const Value& v, size_t max_bytes = SIZE_MAX);
std::string to_repr(const Value& v, size_t max_bytes = SIZE_MAX);
std::string float_repr(double d);
std::string repr_for_message(const Value& v);  // repr(), cut short for an error message  // Python
                                               // repr(float): shortest round trip, 1e+16, 1e-05

// json.dumps as transformers' tojson filter calls it (ensure_ascii, indent, separators,
// sort_keys).
struct JsonOptions {
  bool ensure_ascii = false;
  bool has_indent = false;
  std::string indent;  // with has_indent: the text of one level (" " * n or a given string)
  bool has_separators = false;
  std::string item_sep, key_sep;
  bool sort_keys = false;
};
std::string to_json(const Value& v, const JsonOptions& opt, size_t max_bytes = SIZE_MAX);

}  // namespace starattn::jinja
