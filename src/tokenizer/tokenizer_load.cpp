// The two ways to get a Tokenizer: GGUF metadata (as llama.cpp's converter writes it) and a
// Hugging Face tokenizer.json (+ tokenizer_config.json). Both fill a Tokenizer::Spec.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "model/gguf.h"
#include "starattn/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace starattn {

namespace {

using nlohmann::json;

// GGUF token types (llama.cpp's llama_token_type).
enum GgufTokenType { kNormal = 1, kControl = 3, kUserDefined = 4 };

std::pair<std::string, std::string> split_merge(const std::string& m, size_t rank) {
  // Byte-level symbols never contain ' ', so the first space past position 0 separates the pair.
  size_t sp = m.find(' ', 1);
  SA_CHECK(sp != std::string::npos, "BPE merge ", rank, " is not 'left right': '", m, "'");
  return {utf8::byte_level_decode(std::string_view(m).substr(0, sp)),
          utf8::byte_level_decode(std::string_view(m).substr(sp + 1))};
}

json read_json(const std::string& path, const char* what) {
  std::ifstream in(path);
  SA_CHECK(in.good(), what, " not found or unreadable: ", path);
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    fail(what, " is not valid JSON: ", path, ": ", e.what());
  }
}

std::string escape_regex(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::strchr("\\^$.|?*+()[]{}", c)) out += '\\';
    out += c;
  }
  return out;
}

// Collects the regex steps of a HF pre_tokenizer; returns whether a ByteLevel step was seen.
bool collect_pre(const json& p, std::vector<std::string>& patterns) {
  if (p.is_null()) return false;
  const std::string type = p.value("type", "");
  if (type == "Sequence") {
    bool byte_level = false;
    for (const auto& sub : p.at("pretokenizers")) byte_level |= collect_pre(sub, patterns);
    return byte_level;
  }
  if (type == "ByteLevel") {
    SA_CHECK(!p.value("add_prefix_space", false),
             "tokenizer.json: ByteLevel add_prefix_space=true is not supported");
    if (p.value("use_regex", true)) patterns.push_back(PreTokenizer::gpt2_pattern());
    return true;
  }
  if (type == "Split") {
    SA_CHECK(p.value("behavior", "") == "Isolated" && !p.value("invert", false),
             "tokenizer.json: Split pre-tokenizer supported only with behavior Isolated, invert "
             "false (got ",
             p.value("behavior", "?"), ")");
    const json& pat = p.at("pattern");
    if (pat.contains("Regex")) {
      patterns.push_back(pat.at("Regex").get<std::string>());
    } else {
      patterns.push_back(escape_regex(pat.at("String").get<std::string>()));
    }
    return false;
  }
  if (type == "Digits") {
    patterns.push_back(p.value("individual_digits", false) ? R"(\p{N})" : R"(\p{N}+)");
    return false;
  }
  fail("tokenizer.json: unsupported pre_tokenizer type '", type, "'");
}

// The token a TemplateProcessing post-processor puts first ("<|begin_of_text|> $A"), if any.
std::string leading_special(const json& pp) {
  if (pp.is_null()) return "";
  const std::string type = pp.value("type", "");
  if (type == "Sequence") {
    for (const auto& sub : pp.at("processors")) {
      std::string s = leading_special(sub);
      if (!s.empty()) return s;
    }
  } else if (type == "TemplateProcessing" && !pp.at("single").empty() &&
             pp.at("single")[0].contains("SpecialToken")) {
    return pp.at("single")[0].at("SpecialToken").at("id").get<std::string>();
  }
  return "";
}

// tokenizer_config.json writes special tokens as a string or as an AddedToken object.
std::string config_token(const json& cfg, const char* key) {
  if (!cfg.contains(key) || cfg.at(key).is_null()) return "";
  const json& v = cfg.at(key);
  return v.is_string() ? v.get<std::string>() : v.value("content", "");
}

std::string config_template(const json& cfg) {
  if (!cfg.contains("chat_template")) return "";
  const json& t = cfg.at("chat_template");
  if (t.is_string()) return t.get<std::string>();
  for (const auto& named : t) {  // a list of {name, template}: the default one
    if (named.value("name", "") == "default") return named.value("template", "");
  }
  return "";
}

}  // namespace

Tokenizer Tokenizer::from_gguf(const GgufFile& f) {
  const std::string model = f.get_string_or("tokenizer.ggml.model", "");
  SA_CHECK(model == "gpt2", f.path(), ": tokenizer.ggml.model is '", model,
           "'; only 'gpt2' (byte-level BPE) is supported");
  Spec s;
  const std::string pre = f.get_string_or("tokenizer.ggml.pre", "default");
  s.pre = PreTokenizer::from_gguf_name(pre);
  s.bpe.ignore_merges = pre == "llama-bpe" || pre == "llama3";  // as Llama-3's tokenizer.json

  std::vector<std::string> texts = f.get_string_array("tokenizer.ggml.tokens");
  std::vector<int64_t> types(texts.size(), kNormal);
  if (f.find("tokenizer.ggml.token_type")) types = f.get_int_array("tokenizer.ggml.token_type");
  SA_CHECK(types.size() == texts.size(), f.path(), ": ", types.size(), " token types for ",
           texts.size(), " tokens");
  s.tokens.resize(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    int id = static_cast<int>(i);
    // Control and user-defined tokens are stored as plain text, the others in the byte alphabet.
    if (types[i] == kControl || types[i] == kUserDefined) {
      s.tokens[i] = texts[i];
      s.added.push_back({texts[i], id, types[i] == kControl, false, false, false});
    } else {
      s.tokens[i] = utf8::byte_level_decode(texts[i]);
    }
    s.bpe_vocab.emplace_back(s.tokens[i], id);
  }
  if (f.find("tokenizer.ggml.merges")) {
    std::vector<std::string> merges = f.get_string_array("tokenizer.ggml.merges");
    s.merges.reserve(merges.size());
    for (size_t r = 0; r < merges.size(); ++r) s.merges.push_back(split_merge(merges[r], r));
  }
  s.bos = static_cast<int>(f.get_int_or("tokenizer.ggml.bos_token_id", -1));
  s.eos = static_cast<int>(f.get_int_or("tokenizer.ggml.eos_token_id", -1));
  s.extra_eog = {static_cast<int>(f.get_int_or("tokenizer.ggml.eot_token_id", -1)),
                 static_cast<int>(f.get_int_or("tokenizer.ggml.eom_token_id", -1))};
  s.add_bos = f.get_int_or("tokenizer.ggml.add_bos_token", 0) != 0;
  s.chat_template = f.get_string_or("tokenizer.chat_template", "");
  try {
    return build(std::move(s));
  } catch (const Error& e) {
    fail(f.path(), ": ", e.what());
  }
}

Tokenizer Tokenizer::from_hf_json(const std::string& tokenizer_json_path,
                                  const std::string& tokenizer_config_json_path) {
  const json j = read_json(tokenizer_json_path, "tokenizer.json");
  const std::string& path = tokenizer_json_path;
  try {
    const json& m = j.at("model");
    SA_CHECK(m.value("type", "") == "BPE", "model type is '", m.value("type", ""),
             "'; only byte-level BPE is supported");
    SA_CHECK(!m.value("byte_fallback", false),
             "BPE with byte_fallback (SentencePiece style) is "
             "not supported; only byte-level BPE");
    for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      SA_CHECK(!m.contains(k) || m.at(k).is_null() || m.at(k).get<std::string>().empty(), k,
               " is not supported");
    }
    SA_CHECK(!j.contains("normalizer") || j.at("normalizer").is_null(), "normalizer '",
             j.at("normalizer").value("type", "?"), "' is not supported");
    std::vector<std::string> patterns;
    SA_CHECK(collect_pre(j.value("pre_tokenizer", json()), patterns),
             "no ByteLevel pre-tokenizer: not a byte-level BPE tokenizer");

    Spec s;
    s.pre = PreTokenizer(patterns);
    s.bpe.ignore_merges = m.value("ignore_merges", false);
    s.bpe.fuse_unk = m.value("fuse_unk", false);
    int n = 0;
    auto grow = [&n](int id) {
      SA_CHECK(id >= 0 && id < (1 << 24), "token id ", id, " out of range");
      n = std::max(n, id + 1);
    };
    for (const auto& [text, id] : m.at("vocab").items()) grow(id.get<int>());
    for (const auto& a : j.value("added_tokens", json::array())) grow(a.at("id").get<int>());
    s.tokens.resize(n);
    for (const auto& [text, id] : m.at("vocab").items()) {
      s.tokens[id.get<int>()] = utf8::byte_level_decode(text);
      s.bpe_vocab.emplace_back(s.tokens[id.get<int>()], id.get<int>());
    }
    for (const auto& a : j.value("added_tokens", json::array())) {
      SA_CHECK(!a.value("single_word", false), "added token '", a.at("content").get<std::string>(),
               "' has single_word=true, which is not supported");
      AddedToken t{a.at("content").get<std::string>(), a.at("id").get<int>(),
                   a.value("special", false),          a.value("normalized", false),
                   a.value("lstrip", false),           a.value("rstrip", false)};
      s.tokens[t.id] = t.text;
      s.added.push_back(std::move(t));
    }
    const json& merges = m.at("merges");
    s.merges.reserve(merges.size());
    for (size_t r = 0; r < merges.size(); ++r) {
      if (merges[r].is_string()) {  // "left right" (older files) or ["left", "right"]
        s.merges.push_back(split_merge(merges[r].get<std::string>(), r));
      } else {
        s.merges.emplace_back(utf8::byte_level_decode(merges[r].at(0).get<std::string>()),
                              utf8::byte_level_decode(merges[r].at(1).get<std::string>()));
      }
    }
    if (m.contains("unk_token") && m.at("unk_token").is_string()) {
      auto it = m.at("vocab").find(m.at("unk_token").get<std::string>());
      if (it != m.at("vocab").end()) s.bpe.unk_id = it->get<int>();
    }

    // BOS: the post-processor's leading token says whether HF adds one; the config may override.
    std::string bos = leading_special(j.value("post_processor", json()));
    s.add_bos = !bos.empty();
    std::string cfg_path = tokenizer_config_json_path;
    if (cfg_path.empty()) {
      auto sibling = std::filesystem::path(path).parent_path() / "tokenizer_config.json";
      if (std::filesystem::exists(sibling)) cfg_path = sibling.string();
    }
    std::string eos;
    if (!cfg_path.empty()) {
      const json cfg = read_json(cfg_path, "tokenizer_config.json");
      if (!config_token(cfg, "bos_token").empty()) bos = config_token(cfg, "bos_token");
      eos = config_token(cfg, "eos_token");
      if (cfg.contains("add_bos_token") && cfg.at("add_bos_token").is_boolean()) {
        s.add_bos = cfg.at("add_bos_token").get<bool>();
      }
      s.chat_template = config_template(cfg);
    }
    Tokenizer t = build(std::move(s));
    t.bos_id_ = bos.empty() ? -1 : t.token_id(bos);
    SA_CHECK(bos.empty() || t.bos_id_ >= 0, "bos token '", bos, "' is not in the vocab");
    if (!eos.empty()) {
      t.eos_id_ = t.token_id(eos);
      SA_CHECK(t.eos_id_ >= 0, "eos token '", eos, "' is not in the vocab");
      t.eog_ids_.push_back(t.eos_id_);
      std::sort(t.eog_ids_.begin(), t.eog_ids_.end());
      t.eog_ids_.erase(std::unique(t.eog_ids_.begin(), t.eog_ids_.end()), t.eog_ids_.end());
    }
    return t;
  } catch (const json::exception& e) {
    fail(path, ": malformed tokenizer.json: ", e.what());
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
}

}  // namespace starattn
