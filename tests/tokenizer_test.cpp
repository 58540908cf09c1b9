// Tokenizer vs Hugging Face `tokenizers`: fixture ids from tools/make_tokenizer_fixtures.py for
// SmolLM2 (the real GGUF, skipped when absent) and a small Llama-3-style BPE (both load paths).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "error_of.h"
#include "model/gguf.h"
#include "starattn/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace starattn {
namespace {

using nlohmann::json;

const std::string kDir = std::string(STARATTN_SOURCE_DIR) + "/tests/fixtures/tokenizer/";
const std::string kSmolGguf =
    std::string(STARATTN_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";

json load(const std::string& name) {
  std::ifstream in(kDir + name);
  EXPECT_TRUE(in.good()) << kDir + name;
  return json::parse(in);
}

struct Strings {
  std::vector<std::string> valid, invalid;
};

const Strings& strings() {
  static const Strings s = [] {
    Strings r;
    json j = load("strings.json");
    r.valid = j.at("strings").get<std::vector<std::string>>();
    for (const auto& h : j.at("invalid_utf8_hex")) {
      std::string hex = h.get<std::string>(), bytes;
      for (size_t i = 0; i < hex.size(); i += 2) {
        bytes.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
      }
      r.invalid.push_back(bytes);
    }
    return r;
  }();
  return s;
}

std::string show(const std::string& s) {
  return json(s).dump(-1, ' ', true, json::error_handler_t::replace);
}

// Every fixture string encodes to HF's ids, with and without special-token parsing.
void expect_fixture_ids(const Tokenizer& tok, const std::string& fixture) {
  json j = load(fixture);
  const auto& strs = strings().valid;
  const auto& ids = j.at("ids");
  ASSERT_EQ(strs.size(), ids.size());
  int bad = 0;
  for (size_t i = 0; i < strs.size(); ++i) {
    auto want = ids[i].get<std::vector<int>>();
    auto got = tok.encode(strs[i]);
    EXPECT_EQ(got, want) << "string " << i << ": " << show(strs[i]);
    bad += got != want;
  }
  for (const auto& [s, want] : j.at("ids_no_special").items()) {
    EXPECT_EQ(tok.encode(s, false), want.get<std::vector<int>>()) << "no-special: " << show(s);
  }
  EXPECT_EQ(bad, 0) << "of " << strs.size();
}

// s without the bytes that have no token (HF drops those; SmolLM2 lacks 21 of the 256).
std::string representable(const Tokenizer& tok, const std::string& s) {
  std::string out;
  for (char c : s) {
    if (tok.token_id(std::string(1, c)) >= 0) out += c;
  }
  return out;
}

// decode(encode(s)) == s, for valid and invalid UTF-8, up to unrepresentable bytes.
void expect_round_trip(const Tokenizer& tok) {
  std::vector<std::string> all = strings().valid;
  all.insert(all.end(), strings().invalid.begin(), strings().invalid.end());
  for (const auto& s : all) {
    std::string want = representable(tok, s);
    EXPECT_EQ(tok.decode(tok.encode(s)), want) << show(s);
    EXPECT_EQ(tok.decode(tok.encode(s, false)), want) << show(s);
  }
}

void expect_stream_decode(const Tokenizer& tok) {
  std::vector<std::string> all = strings().valid;
  all.insert(all.end(), strings().invalid.begin(), strings().invalid.end());
  for (const auto& s : all) {
    auto ids = tok.encode(s);
    StreamDecoder sd(tok);
    std::string cat;
    for (int id : ids) {
      std::string chunk = sd.push(id);
      if (utf8::is_valid(s)) {
        EXPECT_TRUE(utf8::is_valid(chunk)) << show(s);
      }
      cat += chunk;
    }
    cat += sd.flush();
    EXPECT_EQ(cat, tok.decode(ids)) << show(s);
  }
}

class SmolLM2 : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (std::filesystem::exists(kSmolGguf)) {
      gguf_ = std::make_unique<GgufFile>(kSmolGguf);
      tok_ = std::make_unique<Tokenizer>(Tokenizer::from_gguf(*gguf_));
    }
  }
  static void TearDownTestSuite() {
    tok_.reset();
    gguf_.reset();
  }
  void SetUp() override {
    if (!tok_)
      GTEST_SKIP() << "model file absent: " << kSmolGguf << " (scripts/setup.sh fetches it)";
  }
  static std::unique_ptr<GgufFile> gguf_;
  static std::unique_ptr<Tokenizer> tok_;
};
std::unique_ptr<GgufFile> SmolLM2::gguf_;
std::unique_ptr<Tokenizer> SmolLM2::tok_;

TEST_F(SmolLM2, MatchesHfIds) {
  expect_fixture_ids(*tok_, "smollm2_ids.json");
}
TEST_F(SmolLM2, RoundTrip) {
  expect_round_trip(*tok_);
}
TEST_F(SmolLM2, StreamDecode) {
  expect_stream_decode(*tok_);
}

TEST_F(SmolLM2, Metadata) {
  EXPECT_EQ(tok_->vocab_size(), 49152);
  EXPECT_EQ(tok_->bos_id(), 1);
  EXPECT_FALSE(tok_->add_bos());
  EXPECT_EQ(tok_->token_text(2), "<|im_end|>");
  EXPECT_TRUE(tok_->is_eog(2));  // eos <|im_end|>
  EXPECT_TRUE(tok_->is_eog(0));  // <|endoftext|>
  EXPECT_FALSE(tok_->is_eog(1));
  EXPECT_NE(tok_->chat_template().find("<|im_start|>"), std::string::npos);
  EXPECT_EQ(tok_->token_text(tok_->encode(" the")[0]), " the");
}

TEST_F(SmolLM2, EncodeSpeed) {
  // ~1 MB of mixed text; a new document each round so the per-call word cache starts cold.
  std::string doc;
  const auto& v = strings().valid;
  for (size_t i = 0; doc.size() < (1 << 20); ++i) doc += v[(i * 7919) % v.size()] + " ";
  auto t0 = std::chrono::steady_clock::now();
  auto ids = tok_->encode(doc);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf(
      "[ speed    ] SmolLM2 encode: %.2f MB in %.3f s = %.1f MB/s, %zu tokens (%.2f M tok/s)\n",
      doc.size() / 1e6, s, doc.size() / 1e6 / s, ids.size(), ids.size() / 1e6 / s);
  EXPECT_EQ(tok_->decode(ids), representable(*tok_, doc));
}

class Llama3 : public ::testing::Test {
 protected:
  static const Tokenizer& from_json() {
    static const Tokenizer t = Tokenizer::from_hf_json(kDir + "llama3_tokenizer.json",
                                                       kDir + "llama3_tokenizer_config.json");
    return t;
  }
  static const Tokenizer& from_gguf() {
    static const GgufFile f(kDir + "llama3_tokenizer.gguf");
    static const Tokenizer t = Tokenizer::from_gguf(f);
    return t;
  }
};

TEST_F(Llama3, JsonMatchesHfIds) {
  expect_fixture_ids(from_json(), "llama3_ids.json");
}
TEST_F(Llama3, GgufMatchesHfIds) {
  expect_fixture_ids(from_gguf(), "llama3_ids.json");
}
TEST_F(Llama3, RoundTrip) {
  expect_round_trip(from_json());
  expect_round_trip(from_gguf());
}
TEST_F(Llama3, StreamDecode) {
  expect_stream_decode(from_gguf());
}

TEST_F(Llama3, BothPathsAgree) {
  const Tokenizer &a = from_json(), &b = from_gguf();
  ASSERT_EQ(a.vocab_size(), b.vocab_size());
  for (int i = 0; i < a.vocab_size(); ++i) ASSERT_EQ(a.token_text(i), b.token_text(i)) << i;
  for (const Tokenizer* t : {&a, &b}) {
    EXPECT_EQ(t->bos_id(), t->token_id("<|begin_of_text|>"));
    EXPECT_EQ(t->eos_id(), t->token_id("<|eot_id|>"));
    EXPECT_TRUE(t->add_bos());
    EXPECT_TRUE(t->is_eog(t->token_id("<|eot_id|>")));
    EXPECT_TRUE(t->is_eog(t->token_id("<|end_of_text|>")));
    EXPECT_FALSE(t->is_eog(t->token_id("<|start_header_id|>")));
    EXPECT_NE(t->chat_template().find("<|start_header_id|>"), std::string::npos);
  }
  EXPECT_EQ(a.chat_template(), b.chat_template());
}

TEST_F(Llama3, WithoutConfigBosComesFromPostProcessor) {
  // No tokenizer_config.json beside the fixture: BOS from TemplateProcessing, eos unknown.
  Tokenizer t = Tokenizer::from_hf_json(kDir + "llama3_tokenizer.json");
  EXPECT_TRUE(t.add_bos());
  EXPECT_EQ(t.bos_id(), t.token_id("<|begin_of_text|>"));
  EXPECT_EQ(t.eos_id(), -1);
  EXPECT_TRUE(t.is_eog(t.token_id("<|eot_id|>")));  // by name
  EXPECT_EQ(t.chat_template(), "");
}

TEST_F(Llama3, AddedTokenOptions) {
  // lstrip/rstrip, a non-special token (still matched with parse_special off) and HF's priority of
  // non-normalized added tokens, on the fixture tokenizer with extra added tokens.
  json v = load("llama3_variant.json");
  std::ifstream in(kDir + "llama3_tokenizer.json");
  json tj = json::parse(in);
  tj["added_tokens"] = v.at("added_tokens");
  auto dir = std::filesystem::temp_directory_path() / "starattn_tok_variant";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "tokenizer.json") << tj.dump();
  Tokenizer t = Tokenizer::from_hf_json((dir / "tokenizer.json").string());
  std::filesystem::remove_all(dir);
  const auto& strs = v.at("strings");
  for (size_t i = 0; i < strs.size(); ++i) {
    std::string s = strs[i].get<std::string>();
    EXPECT_EQ(t.encode(s), v.at("ids")[i].get<std::vector<int>>()) << show(s);
    EXPECT_EQ(t.encode(s, false), v.at("ids_no_special").at(s).get<std::vector<int>>()) << show(s);
  }
}

TEST_F(Llama3, ParseSpecialOff) {
  const Tokenizer& t = from_gguf();
  int eot = t.token_id("<|eot_id|>");
  EXPECT_EQ(t.encode("a<|eot_id|>b"), (std::vector<int>{t.encode("a")[0], eot, t.encode("b")[0]}));
  for (int id : t.encode("a<|eot_id|>b", false)) EXPECT_NE(id, eot);
}

TEST_F(Llama3, RandomBytesRoundTrip) {
  // Arbitrary bytes, biased towards UTF-8 fragments, spaces and special-token pieces: this
  // vocab has all 256 byte tokens, so every string must come back exactly.
  const Tokenizer& t = from_gguf();
  const std::vector<std::string> parts = {" ",    "  ",           "\n",         "a",   "Z",
                                          "7",    "'s",           "<|eot_id|>", "<|",  "\xE4\xB8",
                                          "\xAD", "\xF0\x9F\x98", "\x80",       "\xC3"};
  std::mt19937 rng(42);
  for (int iter = 0; iter < 3000; ++iter) {
    std::string s;
    for (int n = rng() % 24; n > 0; --n) {
      if (rng() % 3 == 0) {
        s += static_cast<char>(rng() % 256);
      } else {
        s += parts[rng() % parts.size()];
      }
    }
    auto ids = t.encode(s);
    ASSERT_EQ(t.decode(ids), s) << show(s);
    StreamDecoder sd(t);
    std::string cat;
    for (int id : ids) cat += sd.push(id);
    ASSERT_EQ(cat + sd.flush(), s) << show(s);
  }
}

TEST_F(Llama3, ConcurrentEncode) {
  const Tokenizer& t = from_gguf();
  const auto& v = strings().valid;
  std::vector<std::vector<int>> want;
  for (const auto& s : v) want.push_back(t.encode(s));
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&] {
      for (int r = 0; r < 5; ++r) {
        for (size_t i = 0; i < v.size(); ++i) bad += t.encode(v[i]) != want[i];
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST_F(Llama3, InvalidIdThrows) {
  EXPECT_THROW(from_gguf().decode({from_gguf().vocab_size()}), Error);
  EXPECT_THROW(from_gguf().token_text(-1), Error);
}

using test::error_of;

TEST(TokenizerErrors, SentencePieceGgufWithoutScores) {
  // bad_model.gguf claims a SentencePiece ("llama") vocab but has no piece scores to merge by.
  // (Unknown tokenizer.ggml.model values: tokenizer_sp_test.cpp.)
  GgufFile f(kDir + "bad_model.gguf");
  std::string msg = error_of([&] { Tokenizer::from_gguf(f); });
  EXPECT_NE(msg.find("tokenizer.ggml.scores is missing"), std::string::npos) << msg;
}

TEST(TokenizerErrors, UnknownPreTokenizer) {
  GgufFile f(kDir + "bad_pre.gguf");
  std::string msg = error_of([&] { Tokenizer::from_gguf(f); });
  EXPECT_NE(msg.find("'no-such-pre'"), std::string::npos) << msg;
}

TEST(TokenizerErrors, MissingTokenizerJson) {
  std::string msg = error_of([] { Tokenizer::from_hf_json(kDir + "does_not_exist.json"); });
  EXPECT_NE(msg.find("tokenizer.json not found"), std::string::npos) << msg;
  EXPECT_NE(msg.find("does_not_exist.json"), std::string::npos) << msg;
}

TEST(TokenizerErrors, NonBpeJsonModel) {
  auto dir = std::filesystem::temp_directory_path() / "starattn_tok_test";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "tokenizer.json") << R"({"model": {"type": "Unigram", "vocab": []}})";
  std::string msg = error_of([&] { Tokenizer::from_hf_json((dir / "tokenizer.json").string()); });
  EXPECT_NE(msg.find("model type is 'Unigram'"), std::string::npos) << msg;
  std::ofstream(dir / "tokenizer.json") << "{ not json";
  msg = error_of([&] { Tokenizer::from_hf_json((dir / "tokenizer.json").string()); });
  EXPECT_NE(msg.find("not valid JSON"), std::string::npos) << msg;
  std::filesystem::remove_all(dir);
}

// Found by the tokenizer.json fuzzer: one vocab entry with id 2^24-1 sized the vocab at 16M
// tokens (512 MB of empty strings) from a 100-byte file.
TEST(TokenizerErrors, IdFarPastTheEntriesIsRefusedBeforeAllocating) {
  auto dir = std::filesystem::temp_directory_path() / "starattn_tok_lying_id";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "tokenizer.json")
      << R"({"model": {"type": "BPE", "vocab": {"a": 16777215}, "merges": []},)"
      << R"( "pre_tokenizer": {"type": "ByteLevel"}})";
  const std::string msg =
      error_of([&] { Tokenizer::from_hf_json((dir / "tokenizer.json").string()); });
  EXPECT_NE(msg.find("token id 16777215 is far past the vocab's 1 entries"), std::string::npos)
      << msg;
  std::filesystem::remove_all(dir);
}

TEST(Utf8, IncompleteTail) {
  EXPECT_EQ(utf8::incomplete_tail("abc"), 0u);
  EXPECT_EQ(utf8::incomplete_tail("a\xE4\xB8"), 2u);  // 中 cut after 2 of 3 bytes
  EXPECT_EQ(utf8::incomplete_tail("a\xF0\x9F"), 2u);  // emoji cut
  EXPECT_EQ(utf8::incomplete_tail("a\xE4\xB8\xAD"), 0u);
  EXPECT_EQ(utf8::incomplete_tail("a\xFF"), 0u);      // never valid: not held
  EXPECT_EQ(utf8::incomplete_tail("a\xED\xA0"), 0u);  // surrogate: never valid
  EXPECT_EQ(utf8::incomplete_tail("\x80\x80"), 0u);
}

}  // namespace
}  // namespace starattn
