// Multi-turn chat rendering: the first turn splits exactly as build_prompt_ids (the one-shot
// --chat path), each turn adds only the text the template renders beyond the turns before it, and
// a template that renders the history differently once a turn is added is a clear error.
#include <gtest/gtest.h>

#include "starattn/error.h"
#include "test_util.h"
#include "tokenizer/conversation.h"
#include "tokenizer/prompt.h"

namespace starattn {
namespace {

const Tokenizer& llama3() {
  static const Tokenizer t =
      Tokenizer::from_hf_json(test::fixture("tokenizer/llama3_tokenizer.json"),
                              test::fixture("tokenizer/llama3_tokenizer_config.json"));
  return t;
}

std::vector<int> cat(std::vector<int> a, const std::vector<int>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST(Conversation, FirstTurnSplitsAsTheOneShotChatPrompt) {
  const Tokenizer& tok = llama3();
  for (const std::string context : {"", "A long document.\nWith two lines."}) {
    for (const std::string system : {"", "Be brief."}) {
      SCOPED_TRACE("context '" + context + "' system '" + system + "'");
      Conversation conv(tok, context, system);
      const std::string q = "What does it say?";
      const PromptIds want = build_prompt_ids(tok, context, q, /*chat=*/true, system);
      EXPECT_EQ(conv.context_ids(), want.context);
      EXPECT_EQ(conv.add_user(q), want.query);
    }
  }
}

TEST(Conversation, EachTurnAppendsOnlyItsOwnText) {
  const Tokenizer& tok = llama3();
  Conversation conv(tok, "The door code is 4711.", "");
  std::vector<int> kv = conv.context_ids();
  kv = cat(kv, conv.add_user("What is the code?"));
  const std::string answer = "The code is 4711.";
  const std::vector<int> answer_ids = tok.encode(answer);
  conv.add_assistant(answer);
  kv = cat(kv, answer_ids);
  const std::vector<int> turn2 = conv.add_user("And backwards?");
  kv = cat(kv, turn2);

  // The runs add up to the whole conversation as the template renders it at once.
  const std::vector<ChatMessage> msgs = {{"user", "The door code is 4711.\n\nWhat is the code?"},
                                         {"assistant", answer},
                                         {"user", "And backwards?"}};
  ASSERT_EQ(conv.messages().size(), msgs.size());
  for (size_t i = 0; i < msgs.size(); ++i) {
    EXPECT_EQ(conv.messages()[i].role, msgs[i].role);
    EXPECT_EQ(conv.messages()[i].content, msgs[i].content);
  }
  const std::string whole =
      ChatTemplate::for_tokenizer(tok).render(msgs, /*add_generation_prompt=*/true);
  EXPECT_EQ(conv.rendered(), whole);
  EXPECT_EQ(tok.decode(kv), whole);
  EXPECT_EQ(kv, tok.encode(whole));  // here the seams tokenize as the whole does
  // The second turn starts with the end of the first answer, ends with the assistant header.
  EXPECT_EQ(tok.decode(turn2),
            "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nAnd backwards?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(Conversation, TemplateThatRewritesTheHistoryIsAnError) {
  // Llama 3's template trims every message, so an answer ending in a space is rendered without
  // it next turn, while the KV holds the space's token.
  Conversation conv(llama3(), "", "");
  conv.add_user("Hi");
  conv.add_assistant("Hello! ");
  try {
    conv.add_user("How are you?");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("renders the earlier turns differently"),
              std::string::npos)
        << e.what();
  }
}

TEST(Conversation, RejectsMisuse) {
  Conversation conv(llama3(), "", "");
  EXPECT_THROW(conv.add_assistant("an answer first"), Error);
  EXPECT_THROW(conv.add_user(""), Error);
  conv.add_user("Hi");
  EXPECT_THROW(conv.add_user("Hi again"), Error);
  Tokenizer no_template;  // no chat template at all
  EXPECT_THROW(Conversation(no_template, "", ""), Error);
}

}  // namespace
}  // namespace starattn
