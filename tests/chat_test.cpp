// Chat rendering vs transformers' apply_chat_template (goldens from
// tools/make_tokenizer_fixtures.py), for SmolLM2's ChatML template and the Llama-3 instruct one.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "model/gguf.h"
#include "starattn/error.h"
#include "tokenizer/chat.h"
#include "tokenizer/tokenizer.h"

namespace starattn {
namespace {

using nlohmann::json;

const std::string kDir = std::string(STARATTN_SOURCE_DIR) + "/tests/fixtures/tokenizer/";

const json& golden() {
  static const json j = [] {
    std::ifstream in(kDir + "chat_golden.json");
    EXPECT_TRUE(in.good()) << kDir << "chat_golden.json";
    return json::parse(in);
  }();
  return j;
}

std::vector<ChatMessage> messages(const json& case_) {
  std::vector<ChatMessage> out;
  for (const auto& m : case_.at("messages")) {
    out.push_back({m.at("role").get<std::string>(), m.at("content").get<std::string>()});
  }
  return out;
}

TEST(Chat, GoldenStrings) {
  int n = 0;
  for (const auto& c : golden().at("cases")) {
    std::string name = c.at("template");
    ChatTemplate t = parse_chat_template(golden().at("templates").at(name).get<std::string>());
    EXPECT_EQ(render_chat(t, messages(c), c.at("add_generation_prompt").get<bool>()),
              c.at("text").get<std::string>())
        << name << " case " << n;
    ++n;
  }
  EXPECT_GE(n, 30);
}

TEST(Chat, DetectsFormats) {
  const auto& t = golden().at("templates");
  ChatTemplate smol = parse_chat_template(t.at("smollm2").get<std::string>());
  EXPECT_EQ(smol.format, ChatFormat::ChatML);
  EXPECT_EQ(smol.default_system,
            "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
  EXPECT_EQ(detect_chat_format(t.at("llama3").get<std::string>()), ChatFormat::Llama3);
  // Plain ChatML (no built-in system prompt), with escaped newlines as in a JSON-quoted source.
  ChatTemplate plain = parse_chat_template(
      "{% for m in messages %}{{'<|im_start|>' + m['role'] + '\\n' + m['content'] + "
      "'<|im_end|>\\n'}}{% endfor %}");
  EXPECT_EQ(plain.default_system, "");
  EXPECT_EQ(render_chat(plain, {{"user", "hi"}}, true),
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
}

TEST(Chat, TemplatesFromModelFiles) {
  // The templates the loaders read are the ones the goldens were rendered with.
  const auto& t = golden().at("templates");
  GgufFile f(kDir + "llama3_tokenizer.gguf");
  EXPECT_EQ(Tokenizer::from_gguf(f).chat_template(), t.at("llama3").get<std::string>());
  Tokenizer j = Tokenizer::from_hf_json(kDir + "llama3_tokenizer.json",
                                        kDir + "llama3_tokenizer_config.json");
  EXPECT_EQ(j.chat_template(), t.at("llama3").get<std::string>());
  const std::string smol =
      std::string(STARATTN_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!std::filesystem::exists(smol)) GTEST_SKIP() << "model file absent: " << smol;
  GgufFile g(smol);
  Tokenizer tok = Tokenizer::from_gguf(g);
  EXPECT_EQ(tok.chat_template(), t.at("smollm2").get<std::string>());
  // The rendered prompt tokenizes with the markers as single special tokens.
  auto ids =
      tok.encode(render_chat(parse_chat_template(tok.chat_template()), {{"user", "Hi"}}, true));
  int start = tok.token_id("<|im_start|>"), end = tok.token_id("<|im_end|>");
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids.front(), start);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), start), 3);  // system, user, assistant
  EXPECT_EQ(std::count(ids.begin(), ids.end(), end), 2);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Chat, Errors) {
  EXPECT_NE(error_of([] { parse_chat_template(""); }).find("no chat template"), std::string::npos);
  EXPECT_NE(error_of([] {
              parse_chat_template("{{ messages[0]['content'] }}");
            }).find("unrecognised chat template"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              parse_chat_template(
                  "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}"
                  "{{- 'Cutting Knowledge Date: December 2023\\n' }}<|eot_id|>");
            }).find("Llama-3.1+"),
            std::string::npos);
  EXPECT_NE(error_of([] { render_chat(ChatFormat::ChatML, {}, true); }).find("empty conversation"),
            std::string::npos);
}

}  // namespace
}  // namespace starattn
