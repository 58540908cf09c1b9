// The server's request parsing: one body as POST /v1/chat/completions, as /v1/completions and as
// /v1/contexts. Bad requests must be an HttpError (a 400 naming the field); anything else that
// escapes would be a 500 or a dead server. A request that parses is answered through the reply
// builders, which must turn any bytes it carried into valid JSON text.
#include <cstdint>
#include <string>

#include "serve/openai_api.h"
#include "starattn/error.h"

namespace {

using namespace starattn::serve;

void reply(const CompletionRequest& r) {
  std::string text = r.prompt;
  for (const auto& m : r.messages) text += m.role + m.content;
  for (const auto& s : r.stop) text += s;
  const Usage u{static_cast<int64_t>(text.size()), r.max_tokens.value_or(0), 0};
  dump(completion_json(r, "cmpl-1", 0, r.model, text, "stop", u));
  const std::string role = "assistant";
  dump(chunk_json(r, "cmpl-1", 0, r.model, &role, text, ""));
  dump(usage_chunk_json(r, "cmpl-1", 0, r.model, u));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  for (bool chat : {true, false}) {
    try {
      reply(parse_completion_request(body, chat));
    } catch (const HttpError& e) {
      dump(error_json(e));
    }
  }
  try {
    parse_context_request(body);
  } catch (const HttpError& e) {
    dump(error_json(e));
  }
  return 0;
}
