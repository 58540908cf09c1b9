// What may follow a primary expression: .attr, [index] and [a:b:c], (call args), | filters and
// `is` tests, the last two checked against the builtins this interpreter supports.
#include "starattn/error.h"
#include "tokenizer/jinja/parser_impl.h"

namespace starattn::jinja::detail {

ExprPtr Parser::parse_postfix(ExprPtr e) {
  while (true) {
    if (is_op(".") || is_op("[")) {
      e = parse_subscript(std::move(e));
    } else if (is_op("(")) {
      e = parse_call(std::move(e));
    } else {
      return e;
    }
  }
}

ExprPtr Parser::parse_filter_expr(ExprPtr e) {
  while (true) {
    if (is_op("|")) {
      e = parse_filter(std::move(e), false);
    } else if (is_name("is")) {
      e = parse_test(std::move(e));
    } else if (is_op("(")) {
      e = parse_call(std::move(e));
    } else {
      return e;
    }
  }
}

ExprPtr Parser::parse_subscript(ExprPtr obj) {
  const Token& t = next();
  if (t.text == ".") {
    const Token& a = cur();
    if (a.type == Tok::Name) {
      ExprPtr e = node(ExprType::Getattr, t.pos);
      e->name = next().text;
      kid(*e, std::move(obj));
      return e;
    }
    if (a.type != Tok::Int) error(a.pos, "expected a name or a number after '.'");
    ExprPtr idx = node(ExprType::Const, a.pos);
    idx->constant = Value::integer(next().ival);
    ExprPtr e = node(ExprType::Getitem, t.pos);
    kid(*e, std::move(obj));
    kid(*e, std::move(idx));
    return e;
  }
  std::vector<ExprPtr> args;
  while (!is_op("]")) {
    if (!args.empty()) expect_op(",");
    args.push_back(parse_subscribed());
  }
  expect_op("]");
  if (args.empty()) error(t.pos, "expected a subscript expression");
  ExprPtr e = node(ExprType::Getitem, t.pos);
  kid(*e, std::move(obj));
  if (args.size() == 1) {
    kid(*e, std::move(args[0]));
  } else {
    ExprPtr tup = node(ExprType::Tuple, t.pos);
    for (auto& a : args) kid(*tup, std::move(a));
    kid(*e, std::move(tup));
  }
  return e;
}

// An index or a slice start:stop:step with any part left out.
ExprPtr Parser::parse_subscribed() {
  const size_t pos = cur().pos;
  ExprPtr start;
  if (!is_op(":")) {
    start = parse_expression(true);
    if (!is_op(":")) return start;
  }
  next();  // ':'
  ExprPtr e = node(ExprType::Slice, pos);
  kid(*e, std::move(start));
  kid(*e, is_op(":") || is_op("]") || is_op(",") ? nullptr : parse_expression(true));
  if (skip_op(":")) {
    kid(*e, is_op("]") || is_op(",") ? nullptr : parse_expression(true));
  } else {
    kid(*e, nullptr);
  }
  return e;
}

CallArgs Parser::parse_call_args() {
  const size_t pos = cur().pos;
  expect_op("(");
  CallArgs c;
  bool need_comma = false;
  auto ensure = [&](bool ok) {
    if (!ok) error(pos, "invalid syntax for a function call");
  };
  while (!is_op(")")) {
    if (need_comma) {
      expect_op(",");
      if (is_op(")")) break;
    }
    if (skip_op("*")) {
      ensure(!c.star_args && !c.star_kwargs);
      c.star_args = parse_expression(true);
    } else if (skip_op("**")) {
      ensure(!c.star_kwargs);
      c.star_kwargs = parse_expression(true);
    } else if (cur().type == Tok::Name && peek().type == Tok::Op && peek().text == "=") {
      ensure(!c.star_kwargs);
      std::string key = next().text;
      next();
      c.kwargs.emplace_back(std::move(key), parse_expression(true));
    } else {
      ensure(!c.star_args && !c.star_kwargs && c.kwargs.empty());
      c.args.push_back(parse_expression(true));
    }
    need_comma = true;
  }
  expect_op(")");
  return c;
}

ExprPtr Parser::parse_call(ExprPtr callee) {
  ExprPtr e = node(ExprType::Call, cur().pos);
  e->call = parse_call_args();
  grow(*e, e->call);
  kid(*e, std::move(callee));
  return e;
}

std::string Parser::dotted_name() {
  std::string name = expect_name();
  while (skip_op(".")) {
    name += '.';
    name += expect_name();
  }
  return name;
}

// `| name(args) | ...`; with start_inline the first filter has no leading '|'.
ExprPtr Parser::parse_filter(ExprPtr e, bool start_inline) {
  while (is_op("|") || start_inline) {
    if (!start_inline) next();
    start_inline = false;
    const size_t pos = cur().pos;
    ExprPtr f = node(ExprType::Filter, pos);
    f->name = dotted_name();
    check_supported("filter", f->name, filter_support(f->name), pos);
    if (is_op("(")) f->call = parse_call_args();
    grow(*f, f->call);
    kid(*f, std::move(e));
    e = std::move(f);
  }
  return e;
}

ExprPtr Parser::parse_test(ExprPtr e) {
  const size_t pos = next().pos;  // 'is'
  const bool negated = skip_name("not");
  ExprPtr t = node(ExprType::Test, pos);
  const size_t name_pos = cur().pos;
  t->name = dotted_name();
  check_supported("test", t->name, test_support(t->name), name_pos);
  const Token& c = cur();
  if (is_op("(")) {
    t->call = parse_call_args();
  } else if ((c.type == Tok::Name || c.type == Tok::String || c.type == Tok::Int ||
              c.type == Tok::Float || is_op("[") || is_op("{")) &&
             !is_name("else") && !is_name("or") && !is_name("and")) {
    if (is_name("is")) error(c.pos, "tests cannot be chained with 'is'");
    t->call.args.push_back(parse_postfix(parse_primary()));
  }
  grow(*t, t->call);
  kid(*t, std::move(e));
  if (!negated) return t;
  ExprPtr n = node(ExprType::Not, pos);
  kid(*n, std::move(t));
  return n;
}

void Parser::check_supported(const char* what, const std::string& name, Support s,
                             size_t pos) const {
  if (s == Support::Yes) return;
  if (s == Support::Unsupported) {
    error(pos, std::string("unsupported Jinja ") + what + " '" + name + "'");
  }
  error(pos, std::string("no ") + what + " named '" + name + "'");
}

}  // namespace starattn::jinja::detail
