// The Jinja interpreter against Python jinja2 as transformers runs it (fixtures from
// tools/make_chat_fixtures.py), its errors for constructs outside the subset, and its limits on
// hostile templates.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "error_of.h"
#include "starattn/error.h"
#include "tokenizer/jinja/template.h"

namespace starattn {
namespace {

using nlohmann::ordered_json;

const std::string kDir = std::string(STARATTN_SOURCE_DIR) + "/tests/fixtures/chat/";

const ordered_json& fixture(const std::string& name) {
  static std::map<std::string, ordered_json> cache;
  auto it = cache.find(name);
  if (it == cache.end()) {
    std::ifstream in(kDir + name);
    EXPECT_TRUE(in.good()) << kDir << name;
    it = cache.emplace(name, ordered_json::parse(in)).first;
  }
  return it->second;
}

// The local time the fixtures were rendered at (strftime_now reads it).
jinja::RenderOptions fixed_clock(const ordered_json& now) {
  std::tm tm{};
  tm.tm_year = now[0].get<int>() - 1900;
  tm.tm_mon = now[1].get<int>() - 1;
  tm.tm_mday = now[2].get<int>();
  tm.tm_hour = now[3].get<int>();
  tm.tm_min = now[4].get<int>();
  tm.tm_sec = now[5].get<int>();
  tm.tm_isdst = -1;
  std::mktime(&tm);  // fills in the weekday and day of the year
  jinja::RenderOptions opt;
  opt.now = [tm] { return tm; };
  return opt;
}

struct Outcome {
  bool ok = false, raised = false;
  std::string text;  // the output, or the error message
};

Outcome run(const std::string& source, const ordered_json& vars, const jinja::RenderOptions& opt) {
  Outcome o;
  try {
    o.text = jinja::Template(source).render(vars, opt);
    o.ok = true;
  } catch (const jinja::RaisedError& e) {
    o.raised = true;
    o.text = e.what();
  } catch (const Error& e) {
    o.text = e.what();
  }
  return o;
}

// A fixture's case against what the interpreter does: the same text, or an error where jinja2
// raised one (with the same message: raise_exception's exactly, Python's own as a substring).
void check_case(const ordered_json& c, const Outcome& o, const std::string& label) {
  if (c.contains("expected")) {
    ASSERT_TRUE(o.ok) << label << ": error " << o.text;
    EXPECT_EQ(o.text, c.at("expected").get<std::string>()) << label;
    return;
  }
  ASSERT_FALSE(o.ok) << label << ": rendered " << o.text << " where jinja2 raised "
                     << c.at("error").get<std::string>();
  const std::string want = c.at("error").get<std::string>();
  const std::string message = want.substr(want.find(": ") + 2);  // "TypeError: ..." -> "..."
  if (c.at("raised").get<bool>()) {
    EXPECT_TRUE(o.raised) << label;
    EXPECT_EQ(o.text, message) << label;
  } else {
    EXPECT_NE(o.text.find(message), std::string::npos) << label << ": " << o.text;
  }
}

TEST(Jinja, ConstructsMatchJinja2) {
  const ordered_json& f = fixture("jinja_cases.json");
  const jinja::RenderOptions opt = fixed_clock(f.at("now"));
  int n = 0, errors = 0;
  for (const auto& c : f.at("cases")) {
    const std::string src = c.at("template").get<std::string>();
    check_case(c, run(src, f.at("vars"), opt), "case " + std::to_string(n) + ": " + src);
    errors += c.contains("error");
    ++n;
  }
  EXPECT_GE(n, 100);
  EXPECT_GE(errors, 20);
}

TEST(Jinja, ChatTemplatesMatchTransformers) {
  const ordered_json& f = fixture("templates.json");
  const jinja::RenderOptions opt = fixed_clock(f.at("now"));
  int n = 0;
  for (const auto& c : f.at("cases")) {
    const ordered_json& t = f.at("templates").at(c.at("template").get<std::string>());
    // What apply_chat_template passes: the messages, tools (None without), documents, the
    // generation flag and the special tokens the tokenizer has.
    const bool tools = c.at("conversation").is_string();
    ordered_json vars;
    vars["messages"] = tools ? f.at("tool_conversation")
                             : f.at("conversations").at(c.at("conversation").get<size_t>());
    vars["tools"] = tools ? f.at("tools") : ordered_json(nullptr);
    vars["documents"] = nullptr;
    vars["add_generation_prompt"] = c.at("add_generation_prompt");
    for (const char* tok : {"bos_token", "eos_token"}) {
      if (!t.at(tok).get<std::string>().empty()) vars[tok] = t.at(tok);
    }
    check_case(c, run(t.at("source").get<std::string>(), vars, opt),
               c.at("template").get<std::string>() + " case " + std::to_string(n));
    ++n;
  }
  EXPECT_GE(n, 200);
}

// The error of rendering `source`, or "" when it renders.
std::string render_error(const std::string& source,
                         const ordered_json& vars = ordered_json::object(),
                         const jinja::RenderOptions& opt = {}) {
  return test::error_of([&] { jinja::Template(source).render(vars, opt); });
}

TEST(Jinja, UnsupportedConstructsNameThemselvesAndTheirPlace) {
  const std::pair<const char*, const char*> cases[] = {
      {"{% include 'other.j2' %}", "line 1, column 4: unsupported Jinja tag 'include'"},
      {"{% extends 'base.j2' %}", "line 1, column 4: unsupported Jinja tag 'extends'"},
      {"{% block body %}{% endblock %}", "unsupported Jinja tag 'block'"},
      {"{% import 'm.j2' as m %}", "unsupported Jinja tag 'import'"},
      {"{% from 'm.j2' import x %}", "unsupported Jinja tag 'from'"},
      {"x\n{% call m() %}{% endcall %}", "line 2, column 4: unsupported Jinja tag 'call'"},
      {"{% autoescape true %}{% endautoescape %}", "unsupported Jinja tag 'autoescape'"},
      {"a\nbc {{ x | wordwrap }}", "line 2, column 11: unsupported Jinja filter 'wordwrap'"},
      {"{{ x | escape }}", "unsupported Jinja filter 'escape'"},
      {"{{ x | no_such_filter }}", "no filter named 'no_such_filter'"},
      {"{% if x is no_such_test %}{% endif %}", "no test named 'no_such_test'"},
      {"{% do x %}", "line 1, column 4: unknown tag 'do'"},
      {"{% for x in y recursive %}{% endfor %}", "unsupported: recursive for loops"},
      {"{% for x in y %}", "line 1, column 4: {% for %} is never closed: missing {% endfor %}"},
      {"{% if x %}{% endfor %}",
       "line 1, column 14: unexpected 'endfor' tag: the innermost open block is the {% if %} at "
       "line 1, column 4, closed by {% endif %}"},
      {"{% if x %}", "{% if %} is never closed: missing {% endif %}"},
      {"{% endif %}", "unexpected 'endif' tag"},
      {"{{ x ", "line 1, column 1: unclosed {{ ... }} tag"},
      {"{% if x ", "unclosed {% ... %} tag"},
      {"ab {# never closed", "line 1, column 4: missing end of comment tag"},
      {"{{ 'abc }}", "unterminated string literal"},
      {"{{ x | }}", "expected a name"},
      {"{{ x ) }}", "unexpected ')'"},
      {"{{ (x] }}", "unexpected ']', expected ')'"},
      {"{% break %}", "'break' outside a for loop"},
      {"{{ '\\N{EM DASH}' }}", "\\N{...} escapes"},
      {"{{ 1 ** }}", "unexpected '}}'"},
      {"{{ x.append(1) }}", "'x' is undefined"},
      {"{% set 1 = x %}", "cannot assign to a number"},
      {"{% macro m(a=1, b) %}{% endmacro %}", "non-default argument follows default argument"},
      {"{{ '{:>5}'.format(1) }}", "format specs"},
      {"{{ 'ab'.casefold() }}", "unsupported string method 'casefold'"},
      {"{{ 'x' % 1.5 }}", "not all arguments converted"},
      {"{{ '%5.2f' % 1.5 }}", "unsupported '%' format"},
  };
  for (const auto& [src, want] : cases) {
    const std::string err = render_error(src);
    EXPECT_NE(err.find(want), std::string::npos) << src << "\n  got: " << err;
    EXPECT_EQ(err.find('\n'), std::string::npos) << "one line: " << err;
  }
}

TEST(Jinja, PrintingWhatPythonPrintsWithAnAddressIsAnError) {
  // jinja2 prints "<generator object ... at 0x7f...>": no output can match it, so refuse.
  EXPECT_NE(
      render_error("{{ messages | map(attribute='role') }}", {{"messages", ordered_json::array()}})
          .find("cannot print a generator"),
      std::string::npos);
  EXPECT_NE(render_error("{{ range }}").find("cannot print a function"), std::string::npos);
}

// Hostile templates (the server renders templates from strangers' model files) must fail with a
// clear error, quickly, without exhausting the stack or memory.
void expect_fails_fast(const std::string& source, const std::string& want,
                       const jinja::RenderOptions& opt = {}) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string err = render_error(source, ordered_json::object(), opt);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(err.find(want), std::string::npos) << source.substr(0, 80) << "\n  got: " << err;
  EXPECT_LT(s, 5.0) << source.substr(0, 80);
}

std::string repeat(const std::string& s, int n) {
  std::string out;
  for (int k = 0; k < n; ++k) out += s;
  return out;
}

TEST(Jinja, HostileTemplatesFailCleanlyAndFast) {
  const std::string nested = "more than 100";
  expect_fails_fast("{{ " + repeat("(", 100000) + "1" + repeat(")", 100000) + " }}", nested);
  expect_fails_fast("{{ " + repeat("-", 100000) + "1 }}", nested);
  expect_fails_fast("{{ " + repeat("not ", 100000) + "1 }}", nested);
  expect_fails_fast("{{ " + repeat("[", 100000) + repeat("]", 100000) + " }}", nested);
  expect_fails_fast("{{ 1" + repeat(" + 1", 100000) + " }}", "nested more than 100");
  expect_fails_fast("{{ x" + repeat(".a", 100000) + " }}", "nested more than 100");
  expect_fails_fast("{{ x" + repeat(" | trim", 100000) + " }}", "nested more than 100");
  expect_fails_fast("{{ 1" + repeat(" if 1 else 1", 100000) + " }}", nested);
  expect_fails_fast(repeat("{% if 1 %}", 100000) + repeat("{% endif %}", 100000), nested);
  expect_fails_fast("{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}",
                    "nests calls and blocks more than 400 deep");
  expect_fails_fast(
      "{% set r = range(100000) %}{% for i in r %}{% for j in r %}{% endfor %}{% endfor %}",
      "steps (a loop that does not end?)");
  expect_fails_fast("{% for i in range(100000) %}{% set x = range(100000) %}{% endfor %}",
                    "more than 2000000 list/dict elements");
  expect_fails_fast(
      "{% set ns = namespace(s='ab') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}"
      "{% endfor %}",
      "bytes of text");
  expect_fails_fast("{{ 'x' * 1000000000000 }}", "bytes of text");
  expect_fails_fast("{{ [1, 2] * 1000000000000 }}", "list elements");
  expect_fails_fast("{% set s = 'a' * 10000000 %}{{ s.replace('a', s) }}", "bytes of text");
  expect_fails_fast("{% set s = 'x' * 1000000 %}{% for i in range(1000) %}{{ s }}{% endfor %}",
                    "bytes of text");
  expect_fails_fast("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}",
                    "nested more than 200 levels deep (or contains itself)");
  const std::string deep =
      "{% set ns = namespace(l=[]) %}{% for i in range(10000) %}{% set ns.l = [ns.l] %}"
      "{% endfor %}";
  expect_fails_fast(deep + "{{ ns.l }}", "nested more than 200 levels deep");
  expect_fails_fast(deep + "{{ ns.l | tojson }}", "nested more than 200 levels deep");
  expect_fails_fast(deep + "{{ ns.l == ns.l }}", "nested more than 200 levels deep");
  expect_fails_fast("{{ 2 ** 64 }}", "integer overflow");
  // Work that grows faster than the input: each is bounded by a budget, not only by time.
  expect_fails_fast(
      "{% set a = 'x' * 30000000 %}{% set b = 'x' * 30000000 %}{{ [a] * 100000 == [b] * 100000 }}",
      "comparing values takes more steps");
  expect_fails_fast("{{ ('\n' * 10000) | indent(100000000) }}", "bytes of text");
  expect_fails_fast("{% set s = 'x' * 1000000 %}{{ ([s] * 100000) | join }}", "bytes of text");
  expect_fails_fast("{% set s = 'x' * 1000000 %}{{ [s] * 100000 }}", "bytes of text");
  expect_fails_fast("{% set s = 'x' * 1000000 %}{{ ([s] * 1000) | tojson }}", "bytes of text");
  expect_fails_fast("{% set s = 'x' * 1000000 %}{{ ('{0}' * 1000).format(s) }}", "bytes of text");
  expect_fails_fast("{% set s = 'x' * 1000000 %}{{ '%s' * 100 % ((s,) * 100) }}", "bytes of text");
  expect_fails_fast("{% set s = 'é' * 4000000 %}{% for i in range(100000) %}{{ s[i] }}{% endfor %}",
                    "steps");
  expect_fails_fast("{{ range(100001) | list }}", "MAX_RANGE");
}

// Inputs that make naive code quadratic (std::string::find, linear key lookups) still render
// quickly.
TEST(Jinja, NoQuadraticBlowUps) {
  auto fast = [](const std::string& src, const std::string& want) {
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(jinja::Template(src).render(ordered_json::object()), want) << src.substr(0, 60);
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0)
        << src.substr(0, 60);
  };
  fast(
      "{% set h = 'a' * 10000000 %}{% set n = 'a' * 1000000 ~ 'b' %}{{ n in h }}{{ h.find(n) }}"
      "{{ h.count(n) }}{{ h.split(n) | length }}{{ h.rfind(n) }}{{ h.rsplit(n) | length }}",
      "False-101-11");
  std::string names, dict = "{% set d = {";
  for (int i = 0; i < 60000; ++i) {
    const std::string n = std::to_string(i);
    names.append("{% set v").append(n).append(" = ").append(n).append(" %}");
    dict.append(i ? "," : "").append(n).append(": ").append(n);
  }
  fast(names + "{{ v59999 }}", "59999");
  fast(dict + "} %}{{ d[59999] }}{{ d[1.0] }}", "599991");
  fast("{{ ('ab' * 3000000).strip('" + repeat("xyz", 30000) + "') | length }}", "6000000");
  fast("{{ range(100000) | list | unique | list | length }}", "100000");
}

TEST(Jinja, LimitsAreConfigurable) {
  jinja::RenderOptions opt;
  opt.limits.max_steps = 1000;
  expect_fails_fast("{% for i in range(2000) %}{% endfor %}", "more than 1000 steps", opt);
  opt = {};
  opt.limits.max_bytes = 100;
  expect_fails_fast("{% for i in range(200) %}x{% endfor %}", "more than 100 bytes", opt);
  opt = {};
  opt.limits.max_depth = 20;
  expect_fails_fast("{% macro m(n) %}{{ m(n) }}{% endmacro %}{{ m(0) }}", "more than 20 deep", opt);
  opt = {};
  opt.limits.max_elements = 50;
  expect_fails_fast("{{ range(100) | list }}", "more than 50 list/dict elements", opt);
  // Inside the limits the same templates render.
  EXPECT_EQ(
      jinja::Template("{% for i in range(3) %}{{ i }}{% endfor %}").render(ordered_json::object()),
      "012");
}

TEST(Jinja, VariablesMustBeAnObject) {
  EXPECT_NE(render_error("{{ x }}", ordered_json::array()).find("JSON object"), std::string::npos);
}

}  // namespace
}  // namespace starattn
