// Chat rendering through ChatTemplate vs transformers' apply_chat_template (goldens from
// tools/make_tokenizer_fixtures.py and tools/make_chat_fixtures.py), the built-in templates, the
// --chat-template override, and the cut of a chat prompt into context and query.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "error_of.h"
#include "model/gguf.h"
#include "starattn/error.h"
#include "tokenizer/chat.h"
#include "tokenizer/prompt.h"
#include "tokenizer/tokenizer.h"

namespace starattn {
namespace {

using nlohmann::ordered_json;

const std::string kTokDir = std::string(STARATTN_SOURCE_DIR) + "/tests/fixtures/tokenizer/";
const std::string kChatDir = std::string(STARATTN_SOURCE_DIR) + "/tests/fixtures/chat/";
const std::string kSmolPath =
    std::string(STARATTN_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";

const ordered_json& load(const std::string& path) {
  static std::map<std::string, ordered_json> cache;
  auto it = cache.find(path);
  if (it == cache.end()) {
    std::ifstream in(path);
    EXPECT_TRUE(in.good()) << path;
    it = cache.emplace(path, ordered_json::parse(in)).first;
  }
  return it->second;
}
const ordered_json& golden() {
  return load(kTokDir + "chat_golden.json");
}
const ordered_json& templates() {
  return load(kChatDir + "templates.json");
}

std::vector<ChatMessage> messages(const ordered_json& list) {
  std::vector<ChatMessage> out;
  for (const auto& m : list) {
    out.push_back({m.at("role").get<std::string>(), m.at("content").get<std::string>()});
  }
  return out;
}

ChatTemplate fixture_template(const std::string& name) {
  const ordered_json& t = templates().at("templates").at(name);
  ChatTemplate c =
      ChatTemplate::parse(t.at("source").get<std::string>(), t.at("bos_token").get<std::string>(),
                          t.at("eos_token").get<std::string>());
  const ordered_json& now = templates().at("now");
  std::tm tm{};
  tm.tm_year = now[0].get<int>() - 1900;
  tm.tm_mon = now[1].get<int>() - 1;
  tm.tm_mday = now[2].get<int>();
  tm.tm_hour = now[3].get<int>();
  tm.tm_min = now[4].get<int>();
  tm.tm_sec = now[5].get<int>();
  tm.tm_isdst = -1;
  std::mktime(&tm);
  c.set_clock([tm] { return tm; });
  return c;
}

using test::error_of;

const Tokenizer& llama3_tokenizer() {
  static const Tokenizer t = Tokenizer::from_hf_json(kTokDir + "llama3_tokenizer.json",
                                                     kTokDir + "llama3_tokenizer_config.json");
  return t;
}

TEST(Chat, GoldenStrings) {
  const std::map<std::string, std::pair<std::string, std::string>> tokens = {
      {"smollm2", {"<|im_start|>", "<|im_end|>"}}, {"llama3", {"<|begin_of_text|>", "<|eot_id|>"}}};
  int n = 0;
  for (const auto& c : golden().at("cases")) {
    const std::string name = c.at("template");
    const auto& [bos, eos] = tokens.at(name);
    ChatTemplate t =
        ChatTemplate::parse(golden().at("templates").at(name).get<std::string>(), bos, eos);
    EXPECT_EQ(t.render(messages(c.at("messages")), c.at("add_generation_prompt").get<bool>()),
              c.at("text").get<std::string>())
        << name << " case " << n;
    ++n;
  }
  EXPECT_GE(n, 30);
}

// Every role/content case of templates.json through ChatTemplate (which builds the variables
// transformers passes), including the messages of conversations the template refuses.
TEST(Chat, FixtureTemplatesMatchTransformers) {
  int n = 0, refused = 0;
  for (const auto& c : templates().at("cases")) {
    if (c.at("conversation").is_string()) continue;  // tools: tests/jinja_test.cpp
    const std::string name = c.at("template");
    const ChatTemplate t = fixture_template(name);
    const auto msgs =
        messages(templates().at("conversations").at(c.at("conversation").get<size_t>()));
    const bool gen = c.at("add_generation_prompt").get<bool>();
    if (c.contains("expected")) {
      EXPECT_EQ(t.render(msgs, gen), c.at("expected").get<std::string>()) << name << " case " << n;
    } else {
      ASSERT_TRUE(c.at("raised").get<bool>()) << name << " case " << n;
      const std::string want = c.at("error").get<std::string>();  // "TemplateError: message"
      EXPECT_EQ(error_of([&] { t.render(msgs, gen); }),
                "the chat template refused the conversation: " + want.substr(want.find(": ") + 2))
          << name << " case " << n;
      ++refused;
    }
    ++n;
  }
  EXPECT_GE(n, 190);
  EXPECT_GE(refused, 16);
}

TEST(Chat, BuiltinsAreTheTestedTemplates) {
  const std::vector<std::string> want = {"chatml", "llama2", "llama3", "mistral"};
  EXPECT_EQ(ChatTemplate::builtin_names(), want);
  for (const auto& name : want) {
    EXPECT_EQ(ChatTemplate::builtin_source(name),
              templates().at("templates").at("builtin:" + name).at("source").get<std::string>())
        << name << ": run tools/make_chat_fixtures.py after changing a built-in";
  }
  EXPECT_NE(error_of([] { ChatTemplate::builtin("zephyr", "", ""); })
                .find("no built-in chat template named 'zephyr' (built-ins: chatml, llama2, "
                      "llama3, mistral)"),
            std::string::npos);
}

TEST(Chat, StartsWithBos) {
  EXPECT_TRUE(ChatTemplate::builtin("llama3", "<|begin_of_text|>", "<|eot_id|>").starts_with_bos());
  EXPECT_TRUE(ChatTemplate::builtin("llama2", "<s>", "</s>").starts_with_bos());
  EXPECT_FALSE(ChatTemplate::builtin("chatml", "<s>", "</s>").starts_with_bos());
  EXPECT_FALSE(ChatTemplate::builtin("llama3", "", "").starts_with_bos());
}

TEST(Chat, ForTokenizerAndOverrides) {
  const Tokenizer& tok = llama3_tokenizer();
  // The model's template, with the tokenizer's BOS/EOS texts.
  const ChatTemplate own = ChatTemplate::for_tokenizer(tok);
  EXPECT_EQ(own.source(), tok.chat_template());
  EXPECT_TRUE(own.starts_with_bos());
  // A built-in by name.
  EXPECT_EQ(ChatTemplate::for_tokenizer(tok, "chatml").source(),
            ChatTemplate::builtin_source("chatml"));
  // A file.
  const std::string path = testing::TempDir() + "chat_override.jinja";
  {
    std::ofstream f(path);
    f << "{% for m in messages %}[{{ m.role }}] {{ m.content }}{{ eos_token }}{% endfor %}";
  }
  EXPECT_EQ(ChatTemplate::for_tokenizer(tok, path).render({{"user", "Hi"}}, true),
            "[user] Hi<|eot_id|>");
  {
    std::ofstream f(path);
    f << "{% include 'x' %}";
  }
  const std::string bad = error_of([&] { ChatTemplate::for_tokenizer(tok, path); });
  EXPECT_NE(bad.find(path + ": chat template: line 1, column 4: unsupported Jinja tag 'include'"),
            std::string::npos)
      << bad;
  EXPECT_NE(bad.find("--chat-template NAME|FILE"), std::string::npos) << bad;
  std::filesystem::remove(path);
  const std::string missing = error_of([&] { ChatTemplate::for_tokenizer(tok, path); });
  EXPECT_NE(missing.find("neither a built-in template nor a readable file"), std::string::npos)
      << missing;
  // A tokenizer without a template needs an override.
  const Tokenizer none;
  EXPECT_NE(error_of([&] { ChatTemplate::for_tokenizer(none); }).find("--chat-template NAME|FILE"),
            std::string::npos);
  EXPECT_EQ(ChatTemplate::for_tokenizer(none, "chatml").source(),
            ChatTemplate::builtin_source("chatml"));
}

TEST(Chat, TemplatesFromModelFiles) {
  // The templates the loaders read are the ones the goldens were rendered with.
  const auto& t = golden().at("templates");
  GgufFile f(kTokDir + "llama3_tokenizer.gguf");
  EXPECT_EQ(Tokenizer::from_gguf(f).chat_template(), t.at("llama3").get<std::string>());
  EXPECT_EQ(llama3_tokenizer().chat_template(), t.at("llama3").get<std::string>());
  if (!std::filesystem::exists(kSmolPath)) GTEST_SKIP() << "model file absent: " << kSmolPath;
  GgufFile g(kSmolPath);
  Tokenizer tok = Tokenizer::from_gguf(g);
  EXPECT_EQ(tok.chat_template(), t.at("smollm2").get<std::string>());
  EXPECT_EQ(tok.chat_template(),
            templates().at("templates").at("smollm2").at("source").get<std::string>());
  // for_tokenizer passes the GGUF's BOS/EOS texts, which the fixtures were rendered with.
  const ChatTemplate smol = ChatTemplate::for_tokenizer(tok);
  for (const auto& c : templates().at("cases")) {
    if (c.at("template") != "smollm2" || !c.contains("expected")) continue;
    EXPECT_EQ(smol.render(
                  messages(templates().at("conversations").at(c.at("conversation").get<size_t>())),
                  c.at("add_generation_prompt").get<bool>()),
              c.at("expected").get<std::string>());
  }
  // The rendered prompt tokenizes with the markers as single special tokens.
  auto ids = tok.encode(smol.render({{"user", "Hi"}}, true));
  int start = tok.token_id("<|im_start|>"), end = tok.token_id("<|im_end|>");
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids.front(), start);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), start), 3);  // system, user, assistant
  EXPECT_EQ(std::count(ids.begin(), ids.end(), end), 2);
}

TEST(Chat, Errors) {
  EXPECT_NE(error_of([] { ChatTemplate::parse("", "", ""); }).find("the chat template is empty"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              ChatTemplate::parse(std::string(2 << 20, 'x'), "", "");
            }).find("more than the 1048576 a chat template may have"),
            std::string::npos);
  const std::string e = error_of([] { ChatTemplate::parse("ok\n{{ x | wordwrap }}", "", ""); });
  EXPECT_EQ(e,
            "chat template: line 2, column 8: unsupported Jinja filter 'wordwrap'; pass "
            "--chat-template NAME|FILE to use another template (built-ins: chatml, llama2, "
            "llama3, mistral)");
  const ChatTemplate t = ChatTemplate::builtin("chatml", "", "");
  EXPECT_NE(error_of([&] { t.render({}, true); }).find("empty conversation"), std::string::npos);
  const std::string runtime = error_of([] {
    ChatTemplate::parse("{{ messages[0].content.zfill(3) }}", "", "").render({{"user", "x"}}, true);
  });
  EXPECT_NE(runtime.find("chat template: line 1, column"), std::string::npos) << runtime;
  EXPECT_NE(runtime.find("unsupported string method 'zfill'"), std::string::npos) << runtime;
  EXPECT_NE(error_of([] {
              ChatTemplate().render({{"user", "x"}}, true);
            }).find("no template"),
            std::string::npos);
}

// ---- the context/query cut

std::string decoded(const Tokenizer& tok, const PromptIds& ids) {
  return tok.decode(ids.context) + "|" + tok.decode(ids.query);
}

int count_of(const std::vector<int>& v, int id) {
  return static_cast<int>(std::count(v.begin(), v.end(), id));
}

TEST(ChatPrompt, CutsTheRenderingWhereTheQueryStarts) {
  const Tokenizer& tok = llama3_tokenizer();  // add_bos; its template writes bos_token itself
  const ChatTemplate tmpl = ChatTemplate::for_tokenizer(tok);
  const PromptIds ids = build_prompt_ids(tok, "The document.", "What is it?", tmpl, "Be brief.");
  const std::string full =
      tmpl.render({{"system", "Be brief."}, {"user", "The document.\n\nWhat is it?"}}, true);
  const std::string ctx = tok.decode(ids.context), q = tok.decode(ids.query);
  EXPECT_EQ(ctx + q, full);
  EXPECT_EQ(ctx.size(), full.find("What is it?"));    // the system prompt and header are context
  EXPECT_EQ(count_of(ids.context, tok.bos_id()), 1);  // the template's BOS, none added
  EXPECT_EQ(ids.context.front(), tok.bos_id());
  EXPECT_EQ(count_of(ids.query, tok.bos_id()), 0);
  // The bool overload uses the model's template.
  EXPECT_EQ(decoded(tok, build_prompt_ids(tok, "The document.", "What is it?", true, "Be brief.")),
            decoded(tok, ids));
}

TEST(ChatPrompt, FollowsTemplatesThatTransformTheMessage) {
  const Tokenizer& tok = llama3_tokenizer();
  const ChatTemplate tmpl = ChatTemplate::for_tokenizer(tok);  // trims the message
  // No context: the query opens the message, and trim removes its leading blanks.
  PromptIds ids = build_prompt_ids(tok, "", "   padded query   ", tmpl);
  EXPECT_EQ(tok.decode(ids.context) + tok.decode(ids.query),
            tmpl.render({{"user", "   padded query   "}}, true));
  EXPECT_EQ(tok.decode(ids.query).rfind("padded query<|eot_id|>", 0), 0u) << tok.decode(ids.query);
  // A context with blanks on both ends: trim takes the leading ones, the inner ones stay.
  ids = build_prompt_ids(tok, "\n  doc  \n", "q  ", tmpl);
  EXPECT_EQ(tok.decode(ids.context) + tok.decode(ids.query),
            tmpl.render({{"user", "\n  doc  \n\n\nq  "}}, true));
  EXPECT_EQ(tok.decode(ids.query).rfind("q<|eot_id|>", 0), 0u);
}

TEST(ChatPrompt, AddsBosOnlyWhenTheTemplateDoesNot) {
  const Tokenizer& tok = llama3_tokenizer();
  ASSERT_TRUE(tok.add_bos());
  const ChatTemplate chatml = ChatTemplate::builtin("chatml", "<|begin_of_text|>", "<|eot_id|>");
  const PromptIds ids = build_prompt_ids(tok, "doc", "q", chatml);
  ASSERT_FALSE(ids.context.empty());
  EXPECT_EQ(ids.context.front(), tok.bos_id());
  EXPECT_EQ(count_of(ids.context, tok.bos_id()), 1);
  EXPECT_EQ(
      tok.decode(ids.context).substr(tok.decode({tok.bos_id()}).size()) + tok.decode(ids.query),
      chatml.render({{"user", "doc\n\nq"}}, true));
  // Plain text (no chat): BOS, then context and query joined by a blank line.
  const PromptIds plain = build_prompt_ids(tok, "doc", "q", false);
  EXPECT_EQ(plain.context.front(), tok.bos_id());
  EXPECT_EQ(tok.decode(plain.context), "<|begin_of_text|>doc\n\n");
  EXPECT_EQ(tok.decode(plain.query), "q");
}

TEST(ChatPrompt, RefusesTemplatesItCannotCut) {
  const Tokenizer& tok = llama3_tokenizer();
  const ChatTemplate drops = ChatTemplate::parse("{{ 'no message here' }}", "", "");
  EXPECT_NE(
      error_of([&] { build_prompt_ids(tok, "doc", "q", drops); }).find("drops the user message"),
      std::string::npos);
  const ChatTemplate twice = ChatTemplate::parse(
      "{% for m in messages %}{{ m.content }}|{{ m.content }}{% endfor %}", "", "");
  EXPECT_NE(error_of([&] { build_prompt_ids(tok, "doc", "q", twice); }).find("repeats"),
            std::string::npos);
  EXPECT_NE(error_of([&] { build_prompt_ids(tok, "doc", "", drops); }).find("the query is empty"),
            std::string::npos);
}

// ---- --chat-template on the command line (the real model; skipped without it)

struct CliResult {
  int code = -1;
  std::string out;
};

CliResult run_cli(const std::string& args) {
  const std::string cmd = "timeout 120 " + std::string(STARATTN_BINARY) + " " + args + " 2>&1";
  CliResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

TEST(ChatCli, ChatTemplateFlag) {
  for (const char* cmd : {"generate --help", "eval --help"}) {
    const CliResult help = run_cli(cmd);
    EXPECT_EQ(help.code, 0) << cmd;
    EXPECT_NE(help.out.find("--chat-template"), std::string::npos) << cmd;
  }
  if (!std::filesystem::exists(kSmolPath)) GTEST_SKIP() << "model file absent: " << kSmolPath;
  // A built-in replaces SmolLM2's template (no default system prompt): the prompt is the
  // built-in's rendering, so the context is just "<|im_start|>user\n".
  const CliResult ok = run_cli("generate -m " + kSmolPath +
                               " --chat-template chatml -p 'Say hi.' -n 1 --json --progress off");
  ASSERT_EQ(ok.code, 0) << ok.out;
  const ordered_json j = ordered_json::parse(ok.out.substr(ok.out.find('{')));
  GgufFile g(kSmolPath);
  const Tokenizer tok = Tokenizer::from_gguf(g);
  const PromptIds want =
      build_prompt_ids(tok, "", "Say hi.", ChatTemplate::for_tokenizer(tok, "chatml"));
  EXPECT_EQ(j.at("context_tokens").get<size_t>(), want.context.size());
  EXPECT_EQ(j.at("query_tokens").get<size_t>(), want.query.size());
  // ... which differs from the model's own (its default system prompt is in the context).
  EXPECT_LT(want.context.size(), build_prompt_ids(tok, "", "Say hi.", true).context.size());
  const CliResult bad = run_cli("generate -m " + kSmolPath +
                                " --chat-template /nonexistent/t.jinja -p hi -n 1 --progress off");
  EXPECT_EQ(bad.code, 1) << bad.out;
  EXPECT_NE(bad.out.find("starattn: error: --chat-template /nonexistent/t.jinja: neither a "
                         "built-in template nor a readable file"),
            std::string::npos)
      << bad.out;
}

}  // namespace
}  // namespace starattn
