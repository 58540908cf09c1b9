// Tags ({% for %}, {% if %}, {% set %}, {% macro %}, ...) and the targets they assign to.
#include "starattn/error.h"
#include "tokenizer/jinja/parser_impl.h"

namespace starattn::jinja::detail {
namespace {

// Tags jinja2 knows that this interpreter does not run (chat templates do not use them).
constexpr const char* kUnsupportedTags[] = {"block", "extends", "include",   "import",
                                            "from",  "call",    "autoescape"};

}  // namespace

bool Parser::at_end_tag(std::initializer_list<const char*> ends) const {
  if (cur().type != Tok::Name) return false;
  return std::any_of(ends.begin(), ends.end(), [&](const char* e) { return cur().text == e; });
}

// Statements up to a block tag whose name is in `ends` (left as the current token) or Eof.
Body Parser::subparse(std::initializer_list<const char*> ends) {
  Body body;
  while (cur().type != Tok::Eof) {
    const Token& t = cur();
    if (t.type == Tok::Data) {
      auto s = std::make_unique<Stmt>();
      s->type = StmtType::Text;
      s->pos = t.pos;
      s->text = t.text;
      body.push_back(std::move(s));
      next();
    } else if (t.type == Tok::VarBegin) {
      auto s = std::make_unique<Stmt>();
      s->type = StmtType::Print;
      s->pos = t.pos;
      next();
      s->expr = parse_tuple(false, true, {}, false);
      if (cur().type != Tok::VarEnd) {
        error(cur().pos, "expected the end of the expression (}}), got " + describe(cur()));
      }
      next();
      body.push_back(std::move(s));
    } else if (t.type == Tok::BlockBegin) {
      next();
      if (at_end_tag(ends)) return body;
      body.push_back(parse_statement());
      expect_block_end();
    } else {
      error(t.pos, "unexpected " + describe(t));
    }
  }
  return body;
}

// The body of a block statement: after its tag's %}, up to one of `ends`; returns which.
std::string Parser::parse_block_body(Stmt* owner, Body* out, size_t open_pos, const char* tag,
                                     std::initializer_list<const char*> ends) {
  Depth d(*this, open_pos);
  expect_block_end();
  open_.push_back({tag, *ends.begin(), open_pos, owner});
  *out = subparse(ends);
  open_.pop_back();
  if (cur().type == Tok::Eof) {
    error(open_pos,
          std::string("{% ") + tag + " %} is never closed: missing {% " + *ends.begin() + " %}");
  }
  return next().text;
}

std::unique_ptr<Stmt> Parser::parse_statement() {
  const Token& t = cur();
  if (t.type != Tok::Name) error(t.pos, "expected a tag name, got " + describe(t));
  const std::string tag = t.text;
  auto s = std::make_unique<Stmt>();
  s->pos = t.pos;
  next();
  if (tag == "for") return parse_for(std::move(s));
  if (tag == "if") return parse_if(std::move(s));
  if (tag == "set") return parse_set(std::move(s));
  if (tag == "macro") return parse_macro(std::move(s));
  if (tag == "filter") {
    s->type = StmtType::FilterBlock;
    s->expr = parse_filter(nullptr, true);
    parse_block_body(s.get(), &s->body, s->pos, "filter", {"endfilter"});
    return s;
  }
  if (tag == "with") return parse_with(std::move(s));
  if (tag == "generation") {
    s->type = StmtType::Generation;
    parse_block_body(s.get(), &s->body, s->pos, "generation", {"endgeneration"});
    return s;
  }
  if (tag == "print") {
    s->type = StmtType::Print;
    s->expr = parse_tuple(false, true, {}, false);
    return s;
  }
  if (tag == "break" || tag == "continue") {
    if (loop_depth_ == 0) error(s->pos, "'" + tag + "' outside a for loop");
    s->type = tag == "break" ? StmtType::Break : StmtType::Continue;
    return s;
  }
  for (const char* u : kUnsupportedTags) {
    if (tag == u) {
      error(s->pos, "unsupported Jinja tag '" + tag +
                        "' (templates that include or extend others, blocks and call blocks "
                        "are outside the subset this interpreter runs)");
    }
  }
  if (tag.rfind("end", 0) == 0 || tag == "else" || tag == "elif") {
    if (open_.empty()) error(s->pos, "unexpected '" + tag + "' tag: it closes no open block");
    const OpenBlock& b = open_.back();
    error(s->pos, "unexpected '" + tag + "' tag: the innermost open block is the {% " + b.tag +
                      " %} at " + src_.where(b.pos) + ", closed by {% " + b.end + " %}");
  }
  error(s->pos, "unknown tag '" + tag + "'");
}

std::unique_ptr<Stmt> Parser::parse_for(std::unique_ptr<Stmt> s) {
  s->type = StmtType::For;
  s->target = parse_target(false, "in");
  if (!skip_name("in")) error(cur().pos, "expected 'in' in the for loop, got " + describe(cur()));
  s->expr = parse_tuple(false, false, "recursive", false);
  if (skip_name("if")) s->cond = parse_expression(true);
  if (is_name("recursive")) error(cur().pos, "unsupported: recursive for loops");
  ++loop_depth_;
  const std::string end = parse_block_body(s.get(), &s->body, s->pos, "for", {"endfor", "else"});
  --loop_depth_;
  if (end == "else") parse_block_body(s.get(), &s->else_body, s->pos, "for", {"endfor"});
  return s;
}

std::unique_ptr<Stmt> Parser::parse_if(std::unique_ptr<Stmt> s) {
  s->type = StmtType::If;
  while (true) {
    ExprPtr cond = parse_tuple(false, false, {}, false);
    Body body;
    const std::string end =
        parse_block_body(s.get(), &body, s->pos, "if", {"endif", "elif", "else"});
    s->branches.emplace_back(std::move(cond), std::move(body));
    if (end == "elif") continue;
    if (end == "else") parse_block_body(s.get(), &s->else_body, s->pos, "if", {"endif"});
    return s;
  }
}

std::unique_ptr<Stmt> Parser::parse_set(std::unique_ptr<Stmt> s) {
  s->target = parse_target(true, nullptr);
  if (skip_op("=")) {
    s->type = StmtType::Set;
    s->expr = parse_tuple(false, true, {}, false);
    return s;
  }
  s->type = StmtType::SetBlock;
  if (s->target.type == Target::Type::Tuple) {
    error(s->pos, "a block {% set %} assigns one name, not a tuple");
  }
  if (is_op("|")) s->expr = parse_filter(nullptr, false);
  parse_block_body(s.get(), &s->body, s->pos, "set", {"endset"});
  return s;
}

std::unique_ptr<Stmt> Parser::parse_macro(std::unique_ptr<Stmt> s) {
  s->type = StmtType::Macro;
  s->name = expect_name();
  expect_op("(");
  while (!is_op(")")) {
    if (!s->params.empty()) expect_op(",");
    if (is_op(")")) break;
    const size_t at = cur().pos;
    s->params.push_back(expect_name());
    if (skip_op("=")) {
      s->defaults.push_back(parse_expression(true));
    } else if (!s->defaults.empty()) {
      error(at, "non-default argument follows default argument");
    }
  }
  expect_op(")");
  const int saved = loop_depth_;
  loop_depth_ = 0;  // break/continue cannot leave a macro
  // A macro keeps the scope it is defined in: the scopes around it up to the enclosing
  // macro (or the top level) must outlive their block, so they go on the heap.
  for (auto b = open_.rbegin(); b != open_.rend(); ++b) {
    b->stmt->heap_scope = true;
    if (b->stmt->type == StmtType::Macro) break;
  }
  macros_.push_back(s.get());
  parse_block_body(s.get(), &s->body, s->pos, "macro", {"endmacro"});
  macros_.pop_back();
  loop_depth_ = saved;
  return s;
}

std::unique_ptr<Stmt> Parser::parse_with(std::unique_ptr<Stmt> s) {
  s->type = StmtType::With;
  while (cur().type != Tok::BlockEnd) {
    if (!s->with_vars.empty()) expect_op(",");
    std::string name = expect_name();
    expect_op("=");
    s->with_vars.emplace_back(std::move(name), parse_expression(true));
  }
  parse_block_body(s.get(), &s->body, s->pos, "with", {"endwith"});
  return s;
}

// for/set targets: names, (nested) tuples of names, or namespace.attr (set only).
Target Parser::parse_target(bool with_namespace, const char* extra_end) {
  std::vector<Target> items;
  bool is_tuple = false;
  while (true) {
    if (!items.empty()) expect_op(",");
    if (is_tuple_end(extra_end)) break;
    items.push_back(parse_target_item(with_namespace));
    if (is_op(",")) {
      is_tuple = true;
    } else {
      break;
    }
  }
  if (items.empty()) error(cur().pos, "expected a name to assign to, got " + describe(cur()));
  if (!is_tuple) return std::move(items[0]);
  Target t;
  t.type = Target::Type::Tuple;
  t.items = std::move(items);
  return t;
}

Target Parser::parse_target_item(bool with_namespace) {
  const Token& t = cur();
  if (skip_op("(")) {
    Target inner = parse_target(false, nullptr);
    expect_op(")");
    return inner;
  }
  if (t.type != Tok::Name || t.text == "true" || t.text == "false" || t.text == "none" ||
      t.text == "True" || t.text == "False" || t.text == "None") {
    error(t.pos, "cannot assign to " + describe(t));
  }
  Target out;
  out.name = next().text;
  if (with_namespace && skip_op(".")) {
    out.type = Target::Type::NsAttr;
    out.attr = expect_name();
  }
  return out;
}

}  // namespace starattn::jinja::detail
