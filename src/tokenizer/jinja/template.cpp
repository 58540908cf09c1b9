#include "tokenizer/jinja/template.h"

#include "tokenizer/jinja/parser.h"

namespace starattn::jinja {

Template::Template(std::string_view source) : src_(source), body_(parse(src_)) {}

std::string Template::render(const nlohmann::ordered_json& vars, const RenderOptions& opt) const {
  Interp in(src_, opt);
  return in.render(body_, vars);
}

}  // namespace starattn::jinja
