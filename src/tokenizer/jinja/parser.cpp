#include "tokenizer/jinja/parser.h"

#include <algorithm>
#include <initializer_list>

#include "starattn/error.h"
#include "tokenizer/jinja/builtins.h"

namespace starattn::jinja {

namespace {

// Tags jinja2 knows that this interpreter does not run (chat templates do not use them).
constexpr const char* kUnsupportedTags[] = {"block", "extends", "include",   "import",
                                            "from",  "call",    "autoescape"};

class Parser {
 public:
  Parser(const Source& src, std::vector<Token> toks) : src_(src), t_(std::move(toks)) {}

  Body run() {
    Body body = subparse({});
    if (cur().type != Tok::Eof) error(cur().pos, "unexpected " + describe(cur()));
    return body;
  }

 private:
  // ---- token stream
  const Token& cur() const { return t_[i_]; }
  const Token& peek() const { return t_[std::min(i_ + 1, t_.size() - 1)]; }
  const Token& next() {
    const Token& t = t_[i_];
    if (i_ + 1 < t_.size()) ++i_;
    return t;
  }
  bool is_op(const char* op) const { return cur().type == Tok::Op && cur().text == op; }
  bool is_name(const char* n) const { return cur().type == Tok::Name && cur().text == n; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(const char* n) {
    if (!is_name(n)) return false;
    next();
    return true;
  }
  void expect_op(const char* op) {
    if (!skip_op(op))
      error(cur().pos, std::string("expected '") + op + "', got " + describe(cur()));
  }
  std::string expect_name() {
    if (cur().type != Tok::Name) error(cur().pos, "expected a name, got " + describe(cur()));
    return next().text;
  }
  void expect_block_end() {
    if (cur().type != Tok::BlockEnd) {
      error(cur().pos, "expected the end of the tag (%}), got " + describe(cur()));
    }
    next();
  }

  static std::string describe(const Token& t) {
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

  [[noreturn]] void error(size_t pos, const std::string& msg) const {
    fail(src_.where(pos), ": ", msg);
  }

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
  void kid(Expr& e, ExprPtr k) {
    if (k) grow(e, k->depth);
    e.kids.push_back(std::move(k));
  }
  void grow(Expr& e, int child_depth) {
    e.depth = std::max(e.depth, child_depth + 1);
    if (e.depth > kMaxParseDepth) {
      error(e.pos,
            "an expression is nested more than " + std::to_string(kMaxParseDepth) + " levels deep");
    }
  }
  void grow(Expr& e, const CallArgs& c) {
    for (const auto& a : c.args) grow(e, a->depth);
    for (const auto& [k, a] : c.kwargs) grow(e, a->depth);
    if (c.star_args) grow(e, c.star_args->depth);
    if (c.star_kwargs) grow(e, c.star_kwargs->depth);
  }

  ExprPtr node(ExprType type, size_t pos) {
    auto e = std::make_unique<Expr>();
    e->type = type;
    e->pos = pos;
    return e;
  }

  // ---- statements
  bool at_end_tag(std::initializer_list<const char*> ends) const {
    if (cur().type != Tok::Name) return false;
    return std::any_of(ends.begin(), ends.end(), [&](const char* e) { return cur().text == e; });
  }

  // Statements up to a block tag whose name is in `ends` (left as the current token) or Eof.
  Body subparse(std::initializer_list<const char*> ends) {
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
  std::string parse_block_body(Stmt* owner, Body* out, size_t open_pos, const char* tag,
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

  std::unique_ptr<Stmt> parse_statement() {
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

  std::unique_ptr<Stmt> parse_for(std::unique_ptr<Stmt> s) {
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

  std::unique_ptr<Stmt> parse_if(std::unique_ptr<Stmt> s) {
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

  std::unique_ptr<Stmt> parse_set(std::unique_ptr<Stmt> s) {
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

  std::unique_ptr<Stmt> parse_macro(std::unique_ptr<Stmt> s) {
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

  std::unique_ptr<Stmt> parse_with(std::unique_ptr<Stmt> s) {
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
  Target parse_target(bool with_namespace, const char* extra_end) {
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

  Target parse_target_item(bool with_namespace) {
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

  // ---- expressions
  bool is_tuple_end(const char* extra_end) const {
    const Token& t = cur();
    if (t.type == Tok::VarEnd || t.type == Tok::BlockEnd || (t.type == Tok::Op && t.text == ")")) {
      return true;
    }
    return extra_end && is_name(extra_end);
  }

  ExprPtr parse_tuple(bool simplified, bool with_condexpr, const char* extra_end,
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

  ExprPtr parse_expression(bool with_condexpr) {
    Depth d(*this, cur().pos);
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  ExprPtr parse_condexpr() {
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

  ExprPtr binary(ExprType type, ExprPtr a, ExprPtr b, size_t pos, std::string name = "") {
    ExprPtr e = node(type, pos);
    e->name = std::move(name);
    kid(*e, std::move(a));
    kid(*e, std::move(b));
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr e = parse_and();
    while (is_name("or")) {
      const size_t pos = next().pos;
      e = binary(ExprType::Or, std::move(e), parse_and(), pos);
    }
    return e;
  }

  ExprPtr parse_and() {
    ExprPtr e = parse_not();
    while (is_name("and")) {
      const size_t pos = next().pos;
      e = binary(ExprType::And, std::move(e), parse_not(), pos);
    }
    return e;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      Depth d(*this, cur().pos);
      ExprPtr e = node(ExprType::Not, next().pos);
      kid(*e, parse_not());
      return e;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const size_t pos = cur().pos;
    ExprPtr first = parse_math1();
    ExprPtr cmp;
    while (true) {
      std::string op;
      if (cur().type == Tok::Op &&
          (cur().text == "==" || cur().text == "!=" || cur().text == "<" || cur().text == "<=" ||
           cur().text == ">" || cur().text == ">=")) {
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

  ExprPtr parse_math1() {
    ExprPtr e = parse_concat();
    while (is_op("+") || is_op("-")) {
      const Token& t = next();
      e = binary(ExprType::Binary, std::move(e), parse_concat(), t.pos, t.text);
    }
    return e;
  }

  ExprPtr parse_concat() {
    const size_t pos = cur().pos;
    ExprPtr e = parse_math2();
    if (!is_op("~")) return e;
    ExprPtr c = node(ExprType::Concat, pos);
    kid(*c, std::move(e));
    while (skip_op("~")) kid(*c, parse_math2());
    return c;
  }

  ExprPtr parse_math2() {
    ExprPtr e = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Token& t = next();
      e = binary(ExprType::Binary, std::move(e), parse_pow(), t.pos, t.text);
    }
    return e;
  }

  ExprPtr parse_pow() {
    ExprPtr e = parse_unary(true);
    while (is_op("**")) {
      const Token& t = next();
      e = binary(ExprType::Binary, std::move(e), parse_unary(true), t.pos, t.text);
    }
    return e;
  }

  ExprPtr parse_unary(bool with_filter) {
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

  ExprPtr parse_primary() {
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

  ExprPtr parse_list() {
    ExprPtr e = node(ExprType::List, next().pos);
    while (!is_op("]")) {
      if (!e->kids.empty()) expect_op(",");
      if (is_op("]")) break;
      kid(*e, parse_expression(true));
    }
    expect_op("]");
    return e;
  }

  ExprPtr parse_dict() {
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

  ExprPtr parse_postfix(ExprPtr e) {
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

  ExprPtr parse_filter_expr(ExprPtr e) {
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

  ExprPtr parse_subscript(ExprPtr obj) {
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
  ExprPtr parse_subscribed() {
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

  CallArgs parse_call_args() {
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

  ExprPtr parse_call(ExprPtr callee) {
    ExprPtr e = node(ExprType::Call, cur().pos);
    e->call = parse_call_args();
    grow(*e, e->call);
    kid(*e, std::move(callee));
    return e;
  }

  std::string dotted_name() {
    std::string name = expect_name();
    while (skip_op(".")) name += "." + expect_name();
    return name;
  }

  // `| name(args) | ...`; with start_inline the first filter has no leading '|'.
  ExprPtr parse_filter(ExprPtr e, bool start_inline) {
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

  ExprPtr parse_test(ExprPtr e) {
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

  void check_supported(const char* what, const std::string& name, Support s, size_t pos) const {
    if (s == Support::Yes) return;
    if (s == Support::Unsupported) {
      error(pos, std::string("unsupported Jinja ") + what + " '" + name + "'");
    }
    error(pos, std::string("no ") + what + " named '" + name + "'");
  }

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

}  // namespace

Body parse(const Source& src) {
  return Parser(src, lex(src)).run();
}

}  // namespace starattn::jinja
