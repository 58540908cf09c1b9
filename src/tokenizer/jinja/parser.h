// Jinja's grammar (jinja2/parser.py) over the lexer's tokens. Tags, filters and tests outside the
// supported subset are rejected here, at parse time, with their name and position, so a template
// either parses completely or fails before anything is rendered.
#pragma once

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/lexer.h"

namespace starattn::jinja {

// Nesting of blocks and expressions the parser accepts; deeper templates are refused, which also
// bounds the interpreter's recursion.
inline constexpr int kMaxParseDepth = 100;

// Throws Error ("line L, column C: ...") for a syntax error or an unsupported construct.
Body parse(const Source& src);

}  // namespace starattn::jinja
