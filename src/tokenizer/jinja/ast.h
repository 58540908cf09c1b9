// The syntax tree of a parsed template: expressions and statements, as jinja2's parser builds
// them (jinja2/nodes.py), reduced to what the interpreter runs.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja/value.h"

namespace starattn::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

enum class ExprType : uint8_t {
  Const,     // constant: a scalar or a string
  Name,      // name
  Getattr,   // kids[0].name
  Getitem,   // kids[0][kids[1]]
  Slice,     // kids[0..2]: start, stop, step (each may be null); only as a Getitem index
  Call,      // kids[0](args)
  Filter,    // kids[0] | name(args); kids[0] is null in {% filter %} and {% set x | f %}
  Test,      // kids[0] is name(args)
  Neg,       // -kids[0]
  Pos,       // +kids[0]
  Not,       // not kids[0]
  And,       // kids[0] and kids[1]
  Or,        // kids[0] or kids[1]
  Binary,    // kids[0] name kids[1], name one of + - * / // % **
  Concat,    // kids joined with ~
  Compare,   // kids[0] ops[0] kids[1] ops[1] kids[2] ... (chained, as in Python)
  CondExpr,  // kids[1] if kids[0] else kids[2] (kids[2] may be null)
  List,      // [kids]
  Tuple,     // (kids)
  Dict,      // {kids[0]: kids[1], kids[2]: kids[3], ...}
};

struct CallArgs {
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  ExprPtr star_args, star_kwargs;  // *args, **kwargs (may be null)
};

struct Expr {
  ExprType type = ExprType::Const;
  size_t pos = 0;  // byte offset in the source, for messages
  int depth = 1;   // height of this subtree (bounded by the parser: evaluation recurses on it)
  Value constant;
  std::string name;
  std::vector<ExprPtr> kids;
  std::vector<std::string> ops;  // Compare: "==", "!=", "<", "<=", ">", ">=", "in", "notin"
  CallArgs call;
};

// Where a for loop or a set stores values: a name, a tuple of targets, or a namespace attribute.
struct Target {
  enum class Type : uint8_t { Name, Tuple, NsAttr } type = Type::Name;
  std::string name, attr;  // NsAttr: name.attr
  std::vector<Target> items;
};

struct Stmt;
using Body = std::vector<std::unique_ptr<Stmt>>;

enum class StmtType : uint8_t {
  Text,         // text
  Print,        // {{ expr }}
  If,           // branches: (condition, body) for if and each elif; else_body
  For,          // for target in expr [if cond]: body [else: else_body]
  Set,          // set target = expr
  SetBlock,     // set target [| filter]: body endset (filter in expr, may be null)
  Macro,        // macro name(params = defaults): body
  Break,        // break (loopcontrols)
  Continue,     // continue
  FilterBlock,  // filter expr: body
  With,         // with name = value, ...: body (its own scope)
  Generation,   // transformers' {% generation %}: body, rendered as it is
};

struct Stmt {
  StmtType type = StmtType::Text;
  size_t pos = 0;
  std::string text;
  ExprPtr expr, cond;
  Target target;
  Body body, else_body;
  std::vector<std::pair<ExprPtr, Body>> branches;
  std::string name;                                // Macro
  std::vector<std::string> params;                 // Macro
  std::vector<ExprPtr> defaults;                   // Macro: for the last params
  bool uses_varargs = false, uses_kwargs = false;  // Macro: its body names them
  bool heap_scope = false;  // a macro is defined in this block's scope: keep the scope alive
  std::vector<std::pair<std::string, ExprPtr>> with_vars;  // With
};

}  // namespace starattn::jinja
