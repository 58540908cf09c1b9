// Request parsing of the OpenAI endpoints (src/serve/openai_api.cpp): a malformed body is a 400
// naming the field, never another exception (which the server would answer with a 500).
#include "serve/openai_api.h"

#include <gtest/gtest.h>

#include <string>

namespace starattn::serve {
namespace {

// The HttpError a body gets, or a status of 0 when it parses.
HttpError rejection(const std::string& body, bool chat) {
  try {
    parse_completion_request(body, chat);
  } catch (const HttpError& e) {
    return e;
  }
  return HttpError(0, "", "");
}

TEST(OpenAiRequest, TypeFieldsOfTheWrongJsonTypeAreBadRequests) {
  // Found by the request fuzzer: nlohmann's value("type", "") throws type_error for a "type"
  // that is not a string.
  const HttpError part = rejection(
      R"({"messages": [{"role": "user", "content": [{"type": 1, "text": "hi"}]}]})", true);
  EXPECT_EQ(part.status, 400);
  EXPECT_EQ(part.param, "messages[0].content");
  const HttpError format = rejection(R"({"prompt": "hi", "response_format": {"type": []}})", false);
  EXPECT_EQ(format.status, 400);
  EXPECT_EQ(format.param, "response_format");
}

TEST(OpenAiRequest, ANumberBeyondDoublesRangeIsABadRequest) {
  // Found by the request fuzzer: nlohmann throws out_of_range (not parse_error) for 1e999.
  for (const char* body :
       {R"({"prompt": "hi", "max_tokens": 1e999})", R"({"prompt": "hi", "x": -1e400})"}) {
    const HttpError e = rejection(body, false);
    EXPECT_EQ(e.status, 400) << body;
  }
}

TEST(OpenAiRequest, TextPartsAndTextFormatStillParse) {
  const CompletionRequest r = parse_completion_request(
      R"({"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
          "response_format": {"type": "text"}})",
      true);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].content, "hi");
}

}  // namespace
}  // namespace starattn::serve
