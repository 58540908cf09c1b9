// SentencePiece-style tokenizers (Llama 2, Mistral, Mixtral) vs Hugging Face `tokenizers`: the
// fixtures come from tools/make_sp_fixtures.py, which trains a small SentencePiece BPE model with
// byte fallback and converts it to a tokenizer.json (transformers' LlamaConverter) and to GGUF
// metadata (as llama.cpp's convert_hf_to_gguf.py). Both load paths must give HF's ids, for the
// Llama-2 layout and (tokenizer.json) the Metaspace layouts of newer files; decode must give HF's
// text; and every integer read from a tokenizer file is range-checked.
#include <gtest/gtest.h>

#include <unistd.h>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "error_of.h"
#include "model/gguf.h"
#include "starattn/error.h"
#include "tokenizer/prompt.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace starattn {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

const std::string kDir = std::string(STARATTN_SOURCE_DIR) + "/tests/fixtures/tokenizer/";

json load(const std::string& name) {
  std::ifstream in(kDir + name);
  EXPECT_TRUE(in.good()) << kDir + name;
  return json::parse(in);
}

const json& fixture() {
  static const json j = load("sp_ids.json");
  return j;
}

struct Strings {
  std::vector<std::string> valid, invalid;  // valid: strings.json + the fixture's extra strings
};

const Strings& strings() {
  static const Strings s = [] {
    Strings r;
    json j = load("strings.json");
    r.valid = j.at("strings").get<std::vector<std::string>>();
    for (const auto& e : fixture().at("extra_strings")) r.valid.push_back(e.get<std::string>());
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

using test::error_of;

// A scratch directory per test: ctest may run the tests of this file in parallel.
fs::path scratch() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  fs::path d = fs::temp_directory_path() /
               ("starattn_sp_" + std::string(info->name()) + "_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

// ---- what HF says, per layout -------------------------------------------------------------------

// The expected ids of one layout: the legacy ids with the layout's edits applied ([p, s, middle]:
// ids[:p] + middle + ids[len - s:]).
struct Expected {
  std::vector<std::vector<int>> ids;
  std::map<std::string, std::vector<int>> ids_no_special;
  std::map<size_t, std::string> decode_diff;  // HF's decode where it is not the input string
};

std::vector<int> apply_edit(const std::vector<int>& a, const json& e) {
  const auto p = e.at(0).get<size_t>(), s = e.at(1).get<size_t>();
  std::vector<int> out(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(p));
  for (const auto& v : e.at(2)) out.push_back(v.get<int>());
  out.insert(out.end(), a.end() - static_cast<std::ptrdiff_t>(s), a.end());
  return out;
}

Expected expected(const std::string& variant) {
  const json& f = fixture();
  Expected x;
  x.ids = f.at("ids").get<std::vector<std::vector<int>>>();
  x.ids_no_special = f.at("ids_no_special").get<std::map<std::string, std::vector<int>>>();
  const json& diffs = variant == "legacy" ? f : f.at("variants").at(variant);
  if (variant != "legacy") {
    for (const auto& [i, e] : diffs.at("ids_diff").items()) {
      x.ids[std::stoul(i)] = apply_edit(x.ids[std::stoul(i)], e);
    }
    for (const auto& [s, e] : diffs.at("ids_no_special_diff").items()) {
      x.ids_no_special[s] = apply_edit(x.ids_no_special[s], e);
    }
  }
  for (const auto& [i, d] : diffs.at("decode_diff").items()) {
    x.decode_diff[std::stoul(i)] = d.get<std::string>();
  }
  return x;
}

// Ids, ids without special-token parsing, and decode(encode(s)) all as HF gives them.
void expect_hf(const Tokenizer& tok, const std::string& variant) {
  const Expected x = expected(variant);
  const auto& strs = strings().valid;
  ASSERT_EQ(strs.size(), x.ids.size());
  int bad_ids = 0, bad_text = 0;
  for (size_t i = 0; i < strs.size(); ++i) {
    const auto got = tok.encode(strs[i]);
    EXPECT_EQ(got, x.ids[i]) << variant << " string " << i << ": " << show(strs[i]);
    bad_ids += got != x.ids[i];
    const auto it = x.decode_diff.find(i);
    const std::string want = it == x.decode_diff.end() ? strs[i] : it->second;
    EXPECT_EQ(tok.decode(x.ids[i]), want) << variant << " decode of string " << i;
    bad_text += tok.decode(x.ids[i]) != want;
  }
  for (const auto& [s, want] : x.ids_no_special) {
    EXPECT_EQ(tok.encode(s, false), want) << variant << " no-special: " << show(s);
  }
  EXPECT_EQ(bad_ids, 0) << "ids wrong for this many of " << strs.size() << " strings";
  EXPECT_EQ(bad_text, 0) << "decode wrong for this many of " << strs.size() << " strings";
}

// ---- load paths ---------------------------------------------------------------------------------

const Tokenizer& from_json() {
  static const Tokenizer t =
      Tokenizer::from_hf_json(kDir + "sp_tokenizer.json", kDir + "sp_tokenizer_config.json");
  return t;
}

const Tokenizer& from_gguf() {
  static const GgufFile f(kDir + "sp_tokenizer.gguf");
  static const Tokenizer t = Tokenizer::from_gguf(f);
  return t;
}

// sp_tokenizer.json with the normalizer, pre_tokenizer and decoder of a fixture variant, or with
// `edit` applied.
Tokenizer json_variant(const std::function<void(json&)>& edit) {
  std::ifstream in(kDir + "sp_tokenizer.json");
  json j = json::parse(in);
  edit(j);
  const fs::path p = scratch() / "tokenizer.json";
  std::ofstream(p) << j.dump();
  Tokenizer t = Tokenizer::from_hf_json(p.string());
  fs::remove_all(p.parent_path());
  return t;
}

Tokenizer json_layout(const std::string& variant) {
  return json_variant([&](json& j) {
    for (const char* k : {"normalizer", "pre_tokenizer", "decoder"}) {
      j[k] = fixture().at("variants").at(variant).at(k);
    }
  });
}

// GGUF writer for metadata-only files: the fixture's key/values, edited, written back.
using Kv = std::map<std::string, GgufValue>;

template <typename V>
void put(std::string& o, V v) {
  o.append(reinterpret_cast<const char*>(&v), sizeof v);
}

void put_value(std::string& o, const GgufValue& v, bool with_type) {
  using T = GgufValue::Type;
  if (with_type) put<uint32_t>(o, static_cast<uint32_t>(v.type));
  auto as_u64 = [&] {
    if (const auto* u = std::get_if<uint64_t>(&v.value)) return *u;
    return static_cast<uint64_t>(std::get<int64_t>(v.value));
  };
  switch (v.type) {
    case T::U8:
    case T::I8:
    case T::BOOL:
      put<uint8_t>(o, static_cast<uint8_t>(as_u64()));
      break;
    case T::U16:
    case T::I16:
      put<uint16_t>(o, static_cast<uint16_t>(as_u64()));
      break;
    case T::U32:
    case T::I32:
      put<uint32_t>(o, static_cast<uint32_t>(as_u64()));
      break;
    case T::U64:
    case T::I64:
      put<uint64_t>(o, as_u64());
      break;
    case T::F32:
      put<float>(o, static_cast<float>(v.as_float()));
      break;
    case T::F64:
      put<double>(o, v.as_float());
      break;
    case T::STRING:
      put<uint64_t>(o, v.as_string().size());
      o += v.as_string();
      break;
    case T::ARRAY:
      put<uint32_t>(o, static_cast<uint32_t>(v.array_type));
      put<uint64_t>(o, v.as_array().size());
      for (const GgufValue& e : v.as_array()) put_value(o, e, false);
      break;
  }
}

struct F32Tensor {
  std::string name;
  std::vector<int64_t> dims;  // ggml order
  std::vector<float> data;
};

// GGUF v3 with the default alignment of 32; tensors are written as F32.
std::string write_gguf(const Kv& kv, const std::vector<F32Tensor>& tensors = {}) {
  std::string o = "GGUF";
  put<uint32_t>(o, 3);
  put<uint64_t>(o, tensors.size());
  put<uint64_t>(o, kv.size());
  for (const auto& [key, v] : kv) {
    put<uint64_t>(o, key.size());
    o += key;
    put_value(o, v, true);
  }
  uint64_t offset = 0;
  for (const F32Tensor& t : tensors) {
    put<uint64_t>(o, t.name.size());
    o += t.name;
    put<uint32_t>(o, static_cast<uint32_t>(t.dims.size()));
    for (int64_t d : t.dims) put<uint64_t>(o, static_cast<uint64_t>(d));
    put<uint32_t>(o, 0);  // F32
    put<uint64_t>(o, offset);
    offset += (t.data.size() * 4 + 31) / 32 * 32;
  }
  for (const F32Tensor& t : tensors) {
    o.append((32 - o.size() % 32) % 32, '\0');
    o.append(reinterpret_cast<const char*>(t.data.data()), t.data.size() * 4);
  }
  const fs::path p = scratch() / "tokenizer.gguf";
  std::ofstream(p, std::ios::binary) << o;
  return p.string();
}

GgufValue scalar(GgufValue::Type t, int64_t v) {
  return GgufValue{t, v, GgufValue::Type::U8};
}

Kv fixture_kv(const std::string& name = "sp_tokenizer.gguf") {
  const GgufFile f(kDir + name);
  return f.metadata();
}

// Loads a fixture GGUF with `edit` applied; returns the error message ("" if it loaded).
std::string gguf_error(const std::string& fixture, const std::function<void(Kv&)>& edit) {
  Kv kv = fixture_kv(fixture);
  edit(kv);
  const std::string path = write_gguf(kv);
  std::string msg = error_of([&] { Tokenizer::from_gguf(GgufFile(path)); });
  fs::remove_all(fs::path(path).parent_path());
  return msg;
}

std::string gguf_error(const std::function<void(Kv&)>& edit) {
  return gguf_error("sp_tokenizer.gguf", edit);
}

Tokenizer gguf_variant(const std::function<void(Kv&)>& edit) {
  Kv kv = fixture_kv();
  edit(kv);
  const std::string path = write_gguf(kv);
  Tokenizer t = Tokenizer::from_gguf(GgufFile(path));
  fs::remove_all(fs::path(path).parent_path());
  return t;
}

// ---- ids and decode vs HF -----------------------------------------------------------------------

TEST(SentencePiece, JsonMatchesHf) {
  expect_hf(from_json(), "legacy");
}

TEST(SentencePiece, GgufMatchesHf) {
  // llama.cpp's add_space_prefix (absent: true) is the Llama-2 Prepend("▁") layout.
  expect_hf(from_gguf(), "legacy");
}

TEST(SentencePiece, MetaspaceFirstMatchesHf) {
  expect_hf(json_layout("first"), "first");  // Mistral v0.3, transformers 5
}

TEST(SentencePiece, MetaspaceAlwaysMatchesHf) {
  expect_hf(json_layout("always"), "always");
}

TEST(SentencePiece, MetaspaceSplitMatchesHf) {
  expect_hf(json_layout("split"), "split");
}

TEST(SentencePiece, NoPrefixMatchesHf) {
  expect_hf(json_layout("never"), "never");
  // GGUF add_space_prefix=false is the same tokenizer.
  expect_hf(gguf_variant([](Kv& kv) {
              kv["tokenizer.ggml.add_space_prefix"] = scalar(GgufValue::Type::BOOL, 0);
            }),
            "never");
}

TEST(SentencePiece, LayoutsDifferWhereHfSaysSo) {
  // The variants are not all the same tokenizer: each differs from the legacy ids somewhere, so
  // the tests above would catch a loader that ignored the layout.
  for (const char* v : {"first", "always", "never", "split"}) {
    EXPECT_GT(fixture().at("variants").at(v).at("ids_diff").size(), 10u) << v;
  }
  EXPECT_NE(json_layout("first").encode("a<s>b"), from_json().encode("a<s>b"));
}

TEST(SentencePiece, RandomIdsDecodeAsHf) {
  // Byte tokens spelling whole characters between pieces with and without "▁", added tokens.
  const auto& cases = fixture().at("random_decode");
  ASSERT_GE(cases.size(), 100u);
  for (const Tokenizer* t : {&from_json(), &from_gguf()}) {
    for (const auto& c : cases) {
      const auto ids = c.at("ids").get<std::vector<int>>();
      EXPECT_EQ(t->decode(ids), c.at("text").get<std::string>()) << c.at("ids").dump();
    }
  }
}

TEST(SentencePiece, BothPathsAgree) {
  const Tokenizer &a = from_json(), &b = from_gguf();
  ASSERT_EQ(a.vocab_size(), b.vocab_size());
  ASSERT_EQ(a.vocab_size(), 1000);
  for (int i = 0; i < a.vocab_size(); ++i) ASSERT_EQ(a.token_text(i), b.token_text(i)) << i;
  for (const Tokenizer* t : {&a, &b}) {
    EXPECT_TRUE(t->is_sentencepiece());
    EXPECT_EQ(t->bos_id(), 1);
    EXPECT_EQ(t->eos_id(), 2);
    EXPECT_EQ(t->token_id("<s>"), 1);
    EXPECT_EQ(t->token_id("<unk>"), 0);
    EXPECT_TRUE(t->add_bos());
    EXPECT_FALSE(t->add_eos());
    EXPECT_EQ(t->strip_leading_spaces(), 1);
    EXPECT_TRUE(t->is_eog(2));
    EXPECT_FALSE(t->is_eog(1));
    EXPECT_EQ(t->token_text(t->token_id("\n")), "\n");  // the <0x0A> byte token
    const int the = t->token_id(" the");
    ASSERT_GE(the, 0);
    EXPECT_EQ(t->token_text(the), " the");  // "▁the" decodes with a space
    EXPECT_EQ(t->decode({the}), "the");     // ... which a decode starting with it strips
    EXPECT_EQ(t->decode({1, the}), "<s> the");
  }
}

TEST(SentencePiece, BosAsHf) {
  // HF's encode with add_special_tokens=True is BOS + encode(): what add_bos() tells callers.
  for (const Tokenizer* t : {&from_json(), &from_gguf()}) {
    for (const auto& [s, want] : fixture().at("with_bos").items()) {
      std::vector<int> ids = t->encode(s);
      ids.insert(ids.begin(), t->bos_id());
      EXPECT_EQ(ids, want.get<std::vector<int>>()) << show(s);
    }
  }
  // A post-processor with "$A </s>" (add_eos_token) is read as add_eos.
  Tokenizer eos = json_variant([](json& j) {
    j["post_processor"]["single"].push_back({{"SpecialToken", {{"id", "</s>"}, {"type_id", 0}}}});
  });
  EXPECT_TRUE(eos.add_bos());
  EXPECT_TRUE(eos.add_eos());
}

TEST(SentencePiece, PromptPiecesEncodeAsHfStrings) {
  // build_prompt_ids encodes the context and the query as two strings, each as HF's tokenizer
  // does (so the query starts with the dummy prefix), with BOS before the context.
  for (const Tokenizer* t : {&from_json(), &from_gguf()}) {
    for (const auto& p : fixture().at("prompts")) {
      PromptIds ids = build_prompt_ids(*t, p.at("context").get<std::string>(),
                                       p.at("query").get<std::string>(), /*chat=*/false);
      std::vector<int> ctx = p.at("context_ids").get<std::vector<int>>();
      if (ctx.empty() || ctx[0] != t->bos_id()) ctx.insert(ctx.begin(), t->bos_id());
      EXPECT_EQ(ids.context, ctx) << p.dump();
      EXPECT_EQ(ids.query, p.at("query_ids").get<std::vector<int>>()) << p.dump();
    }
  }
}

// ---- round trips and streaming ------------------------------------------------------------------

std::vector<std::string> all_strings() {
  std::vector<std::string> all = strings().valid;
  all.insert(all.end(), strings().invalid.begin(), strings().invalid.end());
  return all;
}

// Text that the Llama-2 layout gives back exactly with special tokens read as text: no "▁" (it
// decodes as a space) and no user-defined token (still matched, and the text after it gets a
// prefix "▁" of its own).
bool plain(const std::string& s) {
  for (const char* t : {"\xE2\x96\x81", "[INST]", "[/INST]"}) {
    if (s.find(t) != std::string::npos) return false;
  }
  return true;
}

TEST(SentencePiece, PlainTextRoundTrips) {
  // The prefix "▁" the encoder adds is the space the decoder strips; bytes without a piece become
  // <0xNN> tokens, so invalid UTF-8 comes back too.
  int n = 0;
  for (const Tokenizer* t : {&from_json(), &from_gguf()}) {
    for (const auto& s : all_strings()) {
      if (!plain(s)) continue;
      EXPECT_EQ(t->decode(t->encode(s, false)), s) << show(s);
      ++n;
    }
  }
  EXPECT_GT(n, 2 * 260);
}

TEST(SentencePiece, RandomBytesRoundTrip) {
  const Tokenizer& t = from_gguf();
  const std::vector<std::string> parts = {
      " ",    "  ",           "\n",      "a",        "Z",    "7",
      "the",  "<s>",          "<0x41>",  "\xE2\x96", "\x81", "\xE4\xB8",
      "\xAD", "\xF0\x9F\x98", "\x80\xC3"};
  std::mt19937 rng(7);
  for (int iter = 0; iter < 2000; ++iter) {
    std::string s;
    for (int n = rng() % 20; n > 0; --n) {
      if (rng() % 3 == 0) {
        s += static_cast<char>(rng() % 256);
      } else {
        s += parts[rng() % parts.size()];
      }
    }
    if (!plain(s)) continue;
    const auto ids = t.encode(s, false);
    ASSERT_EQ(t.decode(ids), s) << show(s);
  }
}

void expect_stream(const Tokenizer& t, const std::vector<int>& ids, bool valid_utf8,
                   const std::string& what) {
  StreamDecoder sd(t);
  std::string cat;
  for (int id : ids) {
    std::string chunk = sd.push(id);
    if (valid_utf8) {
      EXPECT_TRUE(utf8::is_valid(chunk)) << what;
    }
    cat += chunk;
  }
  cat += sd.flush();
  EXPECT_EQ(cat, t.decode(ids)) << what;
}

TEST(SentencePiece, StreamDecodeEqualsDecode) {
  for (const Tokenizer* t : {&from_json(), &from_gguf()}) {
    for (const auto& s : all_strings()) {
      expect_stream(*t, t->encode(s), utf8::is_valid(s), show(s));
    }
    for (const auto& c : fixture().at("random_decode")) {
      expect_stream(*t, c.at("ids").get<std::vector<int>>(), true, c.at("ids").dump());
    }
  }
  // The first pieces of a stream: the dummy-prefix space goes, later spaces stay; a character
  // spelled in byte tokens comes out whole once its last byte arrives.
  const Tokenizer& t = from_gguf();
  StreamDecoder sd(t);
  EXPECT_EQ(sd.push(t.token_id(" the")), "the");
  EXPECT_EQ(sd.push(t.token_id(" the")), " the");
  const std::string cjk = "\xE4\xB8\xAD";  // 中, spelled in byte tokens
  EXPECT_EQ(sd.push(t.token_id(cjk.substr(0, 1))), "");
  EXPECT_EQ(sd.push(t.token_id(cjk.substr(1, 1))), "");
  EXPECT_EQ(sd.push(t.token_id(cjk.substr(2, 1))), cjk);
}

TEST(SentencePiece, LongTextIsFast) {
  // The Llama-2 layout has no pre-tokenizer: a text without added tokens is one BPE word, here
  // of half a million characters.
  std::vector<std::string> v;
  for (const auto& s : strings().valid) {
    if (plain(s) && s.find('<') == std::string::npos) v.push_back(s);
  }
  std::mt19937 rng(3);
  std::string doc;
  while (doc.size() < (1 << 19)) doc += v[rng() % v.size()] + " ";
  const auto t0 = std::chrono::steady_clock::now();
  const auto ids = from_gguf().encode(doc, false);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[ speed    ] SentencePiece encode: %.2f MB in %.3f s, %zu tokens\n",
              doc.size() / 1e6, s, ids.size());
  EXPECT_EQ(from_gguf().decode(ids), doc);
  EXPECT_LT(s, 20.0);
}

// ---- the app -----------------------------------------------------------------------------------

std::string run_capture(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  EXPECT_EQ(pclose(p), 0) << cmd << "\n" << out;
  return out;
}

TEST(SentencePieceCli, GenerateTokenizesWithTheModelsOwnVocab) {
  // A Llama-architecture GGUF carrying this SentencePiece vocab: the tiny random llama_gqa model
  // with its embedding grown to 1000 rows (tied, so also the output) and sp_tokenizer.gguf's
  // tokenizer keys. `starattn generate` must tokenize context and query as HF does.
  const GgufFile model(std::string(STARATTN_SOURCE_DIR) +
                       "/tests/fixtures/tiny/llama_gqa/model-f32.gguf");
  Kv kv = model.metadata();
  for (const auto& [k, v] : fixture_kv()) {
    if (k.rfind("tokenizer.", 0) == 0) kv[k] = v;
  }
  kv["llama.vocab_size"] = scalar(GgufValue::Type::U32, 1000);
  std::vector<F32Tensor> tensors;
  for (const GgufTensorInfo& t : model.tensors()) {
    F32Tensor f{t.name, t.dims, model.read_f32(t)};
    if (t.name == "token_embd.weight") {  // [131 rows of 72] -> [1000 rows], rows repeated
      const size_t row = static_cast<size_t>(t.dims[0]), rows = f.data.size() / row;
      std::vector<float> grown(row * 1000);
      for (size_t r = 0; r < 1000; ++r) {
        std::copy_n(f.data.begin() + static_cast<std::ptrdiff_t>((r % rows) * row), row,
                    grown.begin() + static_cast<std::ptrdiff_t>(r * row));
      }
      f.data = std::move(grown);
      f.dims[1] = 1000;
    }
    tensors.push_back(std::move(f));
  }
  const std::string path = write_gguf(kv, tensors);
  const Tokenizer tok = Tokenizer::from_gguf(GgufFile(path));
  const json& p = fixture().at("prompts").at(0);  // context "The key is 7.", a query
  const fs::path ctx = fs::path(path).parent_path() / "context.txt";
  std::ofstream(ctx) << p.at("context").get<std::string>();
  const std::string out =
      run_capture("timeout 120 " + std::string(STARATTN_BINARY) + " generate -m " + path +
                  " --context-file " + ctx.string() + " --query '" +
                  p.at("query").get<std::string>() + "' -n 6 --json -t 1 --progress off 2>&1");
  fs::remove_all(ctx.parent_path());
  const json r = json::parse(out.substr(out.find('{')));
  EXPECT_EQ(r.at("context_tokens").get<size_t>(), 1 + p.at("context_ids").size()) << out;  // BOS
  EXPECT_EQ(r.at("query_tokens").get<size_t>(), p.at("query_ids").size()) << out;
  // The streamed text is the decode of the generated ids (greedy, so always the same ids).
  const auto ids = r.at("tokens").get<std::vector<int>>();
  ASSERT_EQ(ids.size(), 6u) << out;
  ASSERT_TRUE(utf8::is_valid(tok.decode(ids))) << out;
  EXPECT_EQ(r.at("text").get<std::string>(), tok.decode(ids)) << out;
}

// ---- bad input ----------------------------------------------------------------------------------

// A tokenizer.json of three pieces whose token ids are written verbatim (`vocab_a`, `added_id`),
// SentencePiece style or byte-level.
std::string tiny_json(bool sentencepiece, const std::string& vocab_a, const std::string& added_id) {
  const std::string layout = sentencepiece
                                 ? R"("normalizer": {"type": "Replace", "pattern": {"String": " "},
                                        "content": "\u2581"},
                         "decoder": {"type": "Sequence", "decoders": [{"type": "Replace",
                           "pattern": {"String": "\u2581"}, "content": " "}]},)"
                                 : R"("pre_tokenizer": {"type": "ByteLevel"},)";
  return R"({"model": {"type": "BPE", "byte_fallback": )" +
         std::string(sentencepiece ? "true" : "false") + R"(, "vocab": {"<unk>": 0, "a": )" +
         vocab_a + R"(, "b": 2}, "merges": []}, )" + layout + R"("added_tokens": [{"id": )" +
         added_id + R"(, "content": "<s>", "special": true}]})";
}

std::string json_error(const std::string& text) {
  const fs::path p = scratch() / "tokenizer.json";
  std::ofstream(p) << text;
  std::string msg = error_of([&] { Tokenizer::from_hf_json(p.string()); });
  fs::remove_all(p.parent_path());
  return msg;
}

TEST(SentencePieceErrors, JsonIdsAreRangeChecked) {
  for (bool sentencepiece : {true, false}) {
    // The control: a valid file loads.
    EXPECT_EQ(json_error(tiny_json(sentencepiece, "1", "3")), "");
    // 2^32 + 93 used to wrap to 93, 77.9 to truncate to 77, and a huge id was undefined behaviour.
    for (const std::string bad :
         {"4294967389", "77.9", "-1", "\"1\"", "1e30", "16777216", "18446744073709551615"}) {
      std::string msg = json_error(tiny_json(sentencepiece, bad, "3"));
      EXPECT_NE(msg.find("tokenizer.json: model.vocab[\"a\"] = "), std::string::npos) << msg;
      msg = json_error(tiny_json(sentencepiece, "1", bad));
      EXPECT_NE(msg.find("tokenizer.json: added_tokens[0].id = "), std::string::npos) << msg;
    }
  }
}

TEST(SentencePieceErrors, JsonLayoutsWeCannotMatchAreRejected) {
  auto msg_of = [](const std::function<void(json&)>& edit) {
    return error_of([&] { json_variant(edit); });
  };
  EXPECT_NE(msg_of([](json& j) {
              j["normalizer"] = {{"type", "NFKC"}};
            }).find("'NFKC'"),
            std::string::npos);
  EXPECT_NE(msg_of([](json& j) {
              j["decoder"] = {{"type", "Metaspace"}};
            }).find("'Metaspace'"),
            std::string::npos);
  EXPECT_NE(msg_of([](json& j) {
              j["pre_tokenizer"] = {{"type", "Whitespace"}};
            }).find("'Whitespace'"),
            std::string::npos);
  EXPECT_NE(
      msg_of([](json& j) { j["added_tokens"][0]["normalized"] = true; }).find("normalized=true"),
      std::string::npos);
}

TEST(SentencePieceErrors, GgufIdsAreRangeChecked) {
  using T = GgufValue::Type;
  // This vocab and the byte-level one of tokenizer_test.cpp, each edited and written back.
  for (const std::string fixture : {"llama3_tokenizer.gguf", "sp_tokenizer.gguf"}) {
    const int n = Tokenizer::from_gguf(GgufFile(kDir + fixture)).vocab_size();
    const std::string outside = " is outside the vocab of " + std::to_string(n);
    EXPECT_EQ(gguf_error(fixture, [](Kv&) {}), "");  // the control: the file as written loads
    // 4294967298 used to become token 2 through static_cast<int>.
    for (const std::string key : {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                                  "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
      std::string msg = gguf_error(fixture, [&](Kv& kv) { kv[key] = scalar(T::U64, 4294967298); });
      EXPECT_NE(msg.find("tokenizer.gguf: " + key + " = 4294967298" + outside), std::string::npos)
          << msg;
      msg = gguf_error(fixture, [&](Kv& kv) { kv[key] = scalar(T::U32, n); });
      EXPECT_NE(msg.find(key + " = " + std::to_string(n) + outside), std::string::npos) << msg;
      msg = gguf_error(fixture, [&](Kv& kv) { kv[key] = scalar(T::I32, -1); });
      EXPECT_NE(msg.find(key + " = -1" + outside), std::string::npos) << msg;
      msg = gguf_error(fixture, [&](Kv& kv) { kv[key] = GgufValue{T::F32, 2.5, T::U8}; });
      EXPECT_NE(msg.find(key + " is not an integer token id"), std::string::npos) << msg;
    }
  }
  const std::string msg = gguf_error(
      [](Kv& kv) { kv["tokenizer.ggml.unknown_token_id"] = scalar(T::U64, 4294967298); });
  EXPECT_NE(msg.find("tokenizer.ggml.unknown_token_id = 4294967298 is outside"), std::string::npos)
      << msg;
}

TEST(SentencePieceErrors, GgufVocabIsChecked) {
  using T = GgufValue::Type;
  auto edit_array = [](const char* key, size_t i, GgufValue v) {
    return [=](Kv& kv) {
      auto& arr = std::get<std::vector<GgufValue>>(kv.at(key).value);
      arr.at(i) = v;
    };
  };
  std::string msg = gguf_error([](Kv& kv) { kv.erase("tokenizer.ggml.scores"); });
  EXPECT_NE(msg.find("tokenizer.ggml.scores is missing"), std::string::npos) << msg;
  msg = gguf_error(edit_array("tokenizer.ggml.scores", 500, GgufValue{T::F32, NAN, T::U8}));
  EXPECT_NE(msg.find("tokenizer.ggml.scores[500] = nan is not a finite float"), std::string::npos)
      << msg;
  msg = gguf_error([](Kv& kv) {
    std::get<std::vector<GgufValue>>(kv.at("tokenizer.ggml.scores").value).pop_back();
  });
  EXPECT_NE(msg.find("999 scores and 1000 token types for 1000 tokens"), std::string::npos) << msg;
  msg = gguf_error(edit_array("tokenizer.ggml.token_type", 9, scalar(T::I32, 9)));
  EXPECT_NE(msg.find("tokenizer.ggml.token_type[9] = 9 is not a llama.cpp token type"),
            std::string::npos)
      << msg;
  // Token 300 is a normal piece; calling it a byte token needs a <0xNN> text.
  msg = gguf_error(edit_array("tokenizer.ggml.token_type", 300, scalar(T::I32, 6)));
  EXPECT_NE(msg.find("token 300 has type BYTE"), std::string::npos) << msg;
  msg = gguf_error([](Kv& kv) {
    kv["tokenizer.ggml.model"] = GgufValue{T::STRING, std::string("t5"), T::U8};
  });
  EXPECT_NE(msg.find("tokenizer.ggml.model is 't5'"), std::string::npos) << msg;
}

TEST(SentencePieceErrors, GgufDefaultsAreLlamaCpps) {
  // Without the keys: BOS 1, EOS 2, add BOS, add the space prefix.
  Tokenizer t = gguf_variant([](Kv& kv) {
    for (const char* k : {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                          "tokenizer.ggml.add_bos_token", "tokenizer.ggml.unknown_token_id",
                          "tokenizer.ggml.token_type"}) {
      kv.erase(k);
    }
  });
  EXPECT_EQ(t.bos_id(), 1);
  EXPECT_EQ(t.eos_id(), 2);
  EXPECT_TRUE(t.add_bos());
  EXPECT_EQ(t.strip_leading_spaces(), 1);
}

}  // namespace
}  // namespace starattn
