// Expressions from the loosest operator to the tightest (jinja2's precedence: conditional, or,
// and, not, comparisons, + -, ~, * / // %, **, unary signs), and the literals and names at the
// bottom.
#include "starattn/error.h"
#include "tokenizer/jinja/parser_impl.h"

namespace starattn::jinja::detail {

bool Parser::is_tuple_end(const char* extra_end) const {
  const Token& t = cur();
  if (t.type == Tok::VarEnd || t.type == Tok::BlockEnd || (t.type == Tok::Op && t.text == ")")) {
    return true;
  }
  return extra_end && is_name(extra_end);
}

ExprPtr Parser::parse_tuple(bool simplified, bool with_condexpr, const char* extra_end,
                            bool explicit_parens) {
  const size_t pos = cur().pos;
  std::vector<ExprPtr> items;
  bool is_tuple = false;
  while (true) {
    if (!items.empty()) expect_op(",");
    if (is_tuple_end(extra_end)) break;
    items.push_back(simplified ? parse_primary() : parse_expression(with_condexpr));
    if (is_op(",")) {
      is_tuple = true;
    } else {
      break;
    }
  }
  if (!is_tuple) {
    if (!items.empty()) return std::move(items[0]);
    if (!explicit_parens) error(cur().pos, "expected an expression, got " + describe(cur()));
  }
  ExprPtr e = node(ExprType::Tuple, pos);
  for (auto& item : items) kid(*e, std::move(item));
  return e;
}

ExprPtr Parser::parse_expression(bool with_condexpr) {
  Depth d(*this, cur().pos);
  return with_condexpr ? parse_condexpr() : parse_or();
}

ExprPtr Parser::parse_condexpr() {
  Depth d(*this, cur().pos);
  ExprPtr e = parse_or();
  while (is_name("if")) {
    const size_t pos = next().pos;
    ExprPtr c = node(ExprType::CondExpr, pos);
    kid(*c, parse_or());
    kid(*c, std::move(e));
    kid(*c, skip_name("else") ? parse_condexpr() : nullptr);
    e = std::move(c);
  }
  return e;
}

ExprPtr Parser::binary(ExprType type, ExprPtr a, ExprPtr b, size_t pos, std::string name) {
  ExprPtr e = node(type, pos);
  e->name = std::move(name);
  kid(*e, std::move(a));
  kid(*e, std::move(b));
  return e;
}

ExprPtr Parser::parse_or() {
  ExprPtr e = parse_and();
  while (is_name("or")) {
    const size_t pos = next().pos;
    e = binary(ExprType::Or, std::move(e), parse_and(), pos);
  }
  return e;
}

ExprPtr Parser::parse_and() {
  ExprPtr e = parse_not();
  while (is_name("and")) {
    const size_t pos = next().pos;
    e = binary(ExprType::And, std::move(e), parse_not(), pos);
  }
  return e;
}

ExprPtr Parser::parse_not() {
  if (is_name("not")) {
    Depth d(*this, cur().pos);
    ExprPtr e = node(ExprType::Not, next().pos);
    kid(*e, parse_not());
    return e;
  }
  return parse_compare();
}

ExprPtr Parser::parse_compare() {
  const size_t pos = cur().pos;
  ExprPtr first = parse_math1();
  ExprPtr cmp;
  while (true) {
    std::string op;
    if (cur().type == Tok::Op && (cur().text == "==" || cur().text == "!=" || cur().text == "<" ||
                                  cur().text == "<=" || cur().text == ">" || cur().text == ">=")) {
      op = next().text;
    } else if (skip_name("in")) {
      op = "in";
    } else if (is_name("not") && peek().type == Tok::Name && peek().text == "in") {
      next();
      next();
      op = "notin";
    } else {
      break;
    }
    if (!cmp) {
      cmp = node(ExprType::Compare, pos);
      kid(*cmp, std::move(first));
    }
    cmp->ops.push_back(op);
    kid(*cmp, parse_math1());
  }
  return cmp ? std::move(cmp) : std::move(first);
}

ExprPtr Parser::parse_math1() {
  ExprPtr e = parse_concat();
  while (is_op("+") || is_op("-")) {
    const Token& t = next();
    e = binary(ExprType::Binary, std::move(e), parse_concat(), t.pos, t.text);
  }
  return e;
}

ExprPtr Parser::parse_concat() {
  const size_t pos = cur().pos;
  ExprPtr e = parse_math2();
  if (!is_op("~")) return e;
  ExprPtr c = node(ExprType::Concat, pos);
  kid(*c, std::move(e));
  while (skip_op("~")) kid(*c, parse_math2());
  return c;
}

ExprPtr Parser::parse_math2() {
  ExprPtr e = parse_pow();
  while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
    const Token& t = next();
    e = binary(ExprType::Binary, std::move(e), parse_pow(), t.pos, t.text);
  }
  return e;
}

ExprPtr Parser::parse_pow() {
  ExprPtr e = parse_unary(true);
  while (is_op("**")) {
    const Token& t = next();
    e = binary(ExprType::Binary, std::move(e), parse_unary(true), t.pos, t.text);
  }
  return e;
}

ExprPtr Parser::parse_unary(bool with_filter) {
  Depth d(*this, cur().pos);
  ExprPtr e;
  if (is_op("-") || is_op("+")) {
    const Token& t = next();
    e = node(t.text == "-" ? ExprType::Neg : ExprType::Pos, t.pos);
    kid(*e, parse_unary(false));
  } else {
    e = parse_primary();
  }
  e = parse_postfix(std::move(e));
  if (with_filter) e = parse_filter_expr(std::move(e));
  return e;
}

ExprPtr Parser::parse_primary() {
  const Token& t = cur();
  const size_t pos = t.pos;
  switch (t.type) {
    case Tok::Name: {
      next();
      ExprPtr e = node(ExprType::Const, pos);
      if (t.text == "true" || t.text == "True") {
        e->constant = Value::boolean(true);
      } else if (t.text == "false" || t.text == "False") {
        e->constant = Value::boolean(false);
      } else if (t.text == "none" || t.text == "None") {
        e->constant = Value::none();
      } else {
        e->type = ExprType::Name;
        e->name = t.text;
        // A macro takes extra arguments only when its body names varargs / kwargs.
        for (Stmt* m : macros_) {
          m->uses_varargs |= t.text == "varargs";
          m->uses_kwargs |= t.text == "kwargs";
        }
      }
      return e;
    }
    case Tok::String: {
      std::string s;
      while (cur().type == Tok::String) s += next().text;  // adjacent literals join
      ExprPtr e = node(ExprType::Const, pos);
      e->constant = Value::string(std::move(s));
      return e;
    }
    case Tok::Int:
    case Tok::Float: {
      next();
      ExprPtr e = node(ExprType::Const, pos);
      e->constant = t.type == Tok::Int ? Value::integer(t.ival) : Value::number(t.fval);
      return e;
    }
    case Tok::Op:
      if (t.text == "(") {
        next();
        ExprPtr e = parse_tuple(false, true, {}, true);
        expect_op(")");
        return e;
      }
      if (t.text == "[") return parse_list();
      if (t.text == "{") return parse_dict();
      break;
    default:
      break;
  }
  error(pos, "unexpected " + describe(t));
}

ExprPtr Parser::parse_list() {
  ExprPtr e = node(ExprType::List, next().pos);
  while (!is_op("]")) {
    if (!e->kids.empty()) expect_op(",");
    if (is_op("]")) break;
    kid(*e, parse_expression(true));
  }
  expect_op("]");
  return e;
}

ExprPtr Parser::parse_dict() {
  ExprPtr e = node(ExprType::Dict, next().pos);
  while (!is_op("}")) {
    if (!e->kids.empty()) expect_op(",");
    if (is_op("}")) break;
    kid(*e, parse_expression(true));
    expect_op(":");
    kid(*e, parse_expression(true));
  }
  expect_op("}");
  return e;
}

}  // namespace starattn::jinja::detail
