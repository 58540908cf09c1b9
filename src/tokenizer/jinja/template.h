// A parsed Jinja template and its rendering: the public face of the interpreter in this folder.
//
// The interpreter covers the subset of Jinja that chat templates use, with the settings
// transformers renders them with (trim_blocks, lstrip_blocks, its sandbox, its tojson and
// globals); its output matches Python jinja2 byte for byte (tests/jinja_test.cpp checks fixtures
// rendered by jinja2 itself). Anything outside the subset fails at parse time with an error that
// names the construct and its line and column.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/eval.h"
#include "tokenizer/jinja/lexer.h"

namespace starattn::jinja {

class Template {
 public:
  // Throws Error ("line L, column C: ...") for a syntax error or an unsupported construct.
  explicit Template(std::string_view source);
  Template(Template&&) = default;
  Template& operator=(Template&&) = default;

  // vars: a JSON object of the template's variables (ordered: Python dicts keep insertion order).
  // Throws RaisedError for the template's own raise_exception(...), Error ("line L, column C: ...")
  // for anything else that goes wrong, including a limit of opt.limits being reached. Each
  // render has its own state, so one Template may render on several threads at once.
  std::string render(const nlohmann::ordered_json& vars, const RenderOptions& opt = {}) const;

 private:
  Source src_;
  Body body_;
};

}  // namespace starattn::jinja
