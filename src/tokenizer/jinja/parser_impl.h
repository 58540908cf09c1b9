// The parser's one class, shared by the files that define its methods: parser.cpp (the token
// stream, errors, depth limits, tree nodes and the entry point), parser_statements.cpp (tags and
// assignment targets), parser_expressions.cpp (operators by precedence, literals) and
// parser_calls.cpp (what follows a primary: attributes, subscripts, calls, filters and tests).
// Internal to the parser: everyone else calls parse() (parser.h).
#pragma once

#include <algorithm>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/lexer.h"
#include "tokenizer/jinja/parser.h"

namespace starattn::jinja::detail {

// A recursive-descent parser over one template's tokens, after jinja2/parser.py.
class Parser {
 public:
  Parser(const Source& src, std::vector<Token> toks) : src_(src), t_(std::move(toks)) {}
  Body run();

 private:
  // ---- the token stream, errors, depth limits and tree nodes (parser.cpp)
  const Token& cur() const { return t_[i_]; }
  const Token& peek() const { return t_[std::min(i_ + 1, t_.size() - 1)]; }
  const Token& next();
  bool is_op(const char* op) const { return cur().type == Tok::Op && cur().text == op; }
  bool is_name(const char* n) const { return cur().type == Tok::Name && cur().text == n; }
  bool skip_op(const char* op);
  bool skip_name(const char* n);
  void expect_op(const char* op);
  std::string expect_name();
  void expect_block_end();
  static std::string describe(const Token& t);
  [[noreturn]] void error(size_t pos, const std::string& msg) const;

  struct Depth {
    Parser& p;
    Depth(Parser& parser, size_t pos) : p(parser) {
      if (++p.depth_ > kMaxParseDepth) {
        p.error(pos, "the template nests blocks or expressions more than " +
                         std::to_string(kMaxParseDepth) + " deep");
      }
    }
    ~Depth() { --p.depth_; }
  };

  // Adds a child; refuses trees deeper than the limit. Chains such as 1+1+1+... or a.b.c...
  // parse in a loop but nest in the tree, which the interpreter and destructors recurse on.
  void kid(Expr& e, ExprPtr k);
  void grow(Expr& e, int child_depth);
  void grow(Expr& e, const CallArgs& c);
  ExprPtr node(ExprType type, size_t pos);

  // ---- statements (parser_statements.cpp)
  bool at_end_tag(std::initializer_list<const char*> ends) const;

  // Statements up to a block tag whose name is in `ends` (left as the current token) or Eof.
  Body subparse(std::initializer_list<const char*> ends);

  // The body of a block statement: after its tag's %}, up to one of `ends`; returns which.
  std::string parse_block_body(Stmt* owner, Body* out, size_t open_pos, const char* tag,
                               std::initializer_list<const char*> ends);
  std::unique_ptr<Stmt> parse_statement();
  std::unique_ptr<Stmt> parse_for(std::unique_ptr<Stmt> s);
  std::unique_ptr<Stmt> parse_if(std::unique_ptr<Stmt> s);
  std::unique_ptr<Stmt> parse_set(std::unique_ptr<Stmt> s);
  std::unique_ptr<Stmt> parse_macro(std::unique_ptr<Stmt> s);
  std::unique_ptr<Stmt> parse_with(std::unique_ptr<Stmt> s);

  // for/set targets: names, (nested) tuples of names, or namespace.attr (set only).
  Target parse_target(bool with_namespace, const char* extra_end);
  Target parse_target_item(bool with_namespace);

  // ---- expressions (parser_expressions.cpp)
  bool is_tuple_end(const char* extra_end) const;
  ExprPtr parse_tuple(bool simplified, bool with_condexpr, const char* extra_end,
                      bool explicit_parens);
  ExprPtr parse_expression(bool with_condexpr);
  ExprPtr parse_condexpr();
  ExprPtr binary(ExprType type, ExprPtr a, ExprPtr b, size_t pos, std::string name = "");
  ExprPtr parse_or();
  ExprPtr parse_and();
  ExprPtr parse_not();
  ExprPtr parse_compare();
  ExprPtr parse_math1();
  ExprPtr parse_concat();
  ExprPtr parse_math2();
  ExprPtr parse_pow();
  ExprPtr parse_unary(bool with_filter);
  ExprPtr parse_primary();
  ExprPtr parse_list();
  ExprPtr parse_dict();

  // ---- what follows a primary (parser_calls.cpp)
  ExprPtr parse_postfix(ExprPtr e);
  ExprPtr parse_filter_expr(ExprPtr e);
  ExprPtr parse_subscript(ExprPtr obj);

  // An index or a slice start:stop:step with any part left out.
  ExprPtr parse_subscribed();
  CallArgs parse_call_args();
  ExprPtr parse_call(ExprPtr callee);
  std::string dotted_name();

  // `| name(args) | ...`; with start_inline the first filter has no leading '|'.
  ExprPtr parse_filter(ExprPtr e, bool start_inline);
  ExprPtr parse_test(ExprPtr e);
  void check_supported(const char* what, const std::string& name, Support s, size_t pos) const;

  struct OpenBlock {
    const char* tag;
    const char* end;
    size_t pos;
    Stmt* stmt;
  };

  const Source& src_;
  std::vector<OpenBlock> open_;  // blocks being parsed, innermost last
  std::vector<Stmt*> macros_;    // macros whose bodies are being parsed
  std::vector<Token> t_;
  size_t i_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace starattn::jinja::detail
