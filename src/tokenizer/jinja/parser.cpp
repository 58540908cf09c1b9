#include "tokenizer/jinja/parser.h"

#include "starattn/error.h"
#include "tokenizer/jinja/parser_impl.h"

namespace starattn::jinja {
namespace detail {

Body Parser::run() {
  Body body = subparse({});
  if (cur().type != Tok::Eof) error(cur().pos, "unexpected " + describe(cur()));
  return body;
}

const Token& Parser::next() {
  const Token& t = t_[i_];
  if (i_ + 1 < t_.size()) ++i_;
  return t;
}

bool Parser::skip_op(const char* op) {
  if (!is_op(op)) return false;
  next();
  return true;
}

bool Parser::skip_name(const char* n) {
  if (!is_name(n)) return false;
  next();
  return true;
}

void Parser::expect_op(const char* op) {
  if (!skip_op(op)) error(cur().pos, std::string("expected '") + op + "', got " + describe(cur()));
}

std::string Parser::expect_name() {
  if (cur().type != Tok::Name) error(cur().pos, "expected a name, got " + describe(cur()));
  return next().text;
}

void Parser::expect_block_end() {
  if (cur().type != Tok::BlockEnd) {
    error(cur().pos, "expected the end of the tag (%}), got " + describe(cur()));
  }
  next();
}

std::string Parser::describe(const Token& t) {
  switch (t.type) {
    case Tok::Data:
      return "template text";
    case Tok::VarBegin:
      return "'{{'";
    case Tok::VarEnd:
      return "'}}'";
    case Tok::BlockBegin:
      return "'{%'";
    case Tok::BlockEnd:
      return "'%}'";
    case Tok::Name:
      return "'" + t.text + "'";
    case Tok::String:
      return "a string";
    case Tok::Int:
    case Tok::Float:
      return "a number";
    case Tok::Op:
      return "'" + t.text + "'";
    case Tok::Eof:
      return "the end of the template";
  }
  return "a token";
}

void Parser::error(size_t pos, const std::string& msg) const {
  fail(src_.where(pos), ": ", msg);
}

// Adds a child; refuses trees deeper than the limit. Chains such as 1+1+1+... or a.b.c...
// parse in a loop but nest in the tree, which the interpreter and destructors recurse on.
void Parser::kid(Expr& e, ExprPtr k) {
  if (k) grow(e, k->depth);
  e.kids.push_back(std::move(k));
}

void Parser::grow(Expr& e, int child_depth) {
  e.depth = std::max(e.depth, child_depth + 1);
  if (e.depth > kMaxParseDepth) {
    error(e.pos,
          "an expression is nested more than " + std::to_string(kMaxParseDepth) + " levels deep");
  }
}

void Parser::grow(Expr& e, const CallArgs& c) {
  for (const auto& a : c.args) grow(e, a->depth);
  for (const auto& [k, a] : c.kwargs) grow(e, a->depth);
  if (c.star_args) grow(e, c.star_args->depth);
  if (c.star_kwargs) grow(e, c.star_kwargs->depth);
}

ExprPtr Parser::node(ExprType type, size_t pos) {
  auto e = std::make_unique<Expr>();
  e->type = type;
  e->pos = pos;
  return e;
}

}  // namespace detail

Body parse(const Source& src) {
  return detail::Parser(src, lex(src)).run();
}

}  // namespace starattn::jinja
