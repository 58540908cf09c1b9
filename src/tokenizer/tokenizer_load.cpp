// The two ways to get a Tokenizer: GGUF metadata (as llama.cpp's converter writes it) and a
// Hugging Face tokenizer.json (+ tokenizer_config.json). Both fill a Tokenizer::Spec, for a
// byte-level or a SentencePiece-style (spm.h) BPE.
//
// Every integer read from a file is range-checked here: a token id must be an integer in
// [0, vocab) (JSON floats such as 77.9 and values past 32 bits are rejected, not truncated), with
// an error naming the file and the key.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>

#include "model/gguf.h"
#include "starattn/error.h"
#include "tokenizer/spm.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace starattn {

namespace {

using nlohmann::json;

constexpr int64_t kMaxVocab = int64_t{1} << 24;  // far above any real vocab; ids stay small ints

// GGUF token types (llama.cpp's llama_token_type; 0 is "undefined", read as normal).
enum GgufTokenType {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6
};

// ---- range-checked integers ---------------------------------------------------------------------

// A token id in a tokenizer.json: an integer (not a float, not a string) in [0, kMaxVocab).
int json_id(const json& v, const std::string& key) {
  SA_CHECK(v.is_number_integer(), key, " = ", v.dump(), " is not an integer token id");
  const bool ok = v.is_number_unsigned() ? v.get<uint64_t>() < static_cast<uint64_t>(kMaxVocab)
                                         : v.get<int64_t>() >= 0 && v.get<int64_t>() < kMaxVocab;
  SA_CHECK(ok, key, " = ", v.dump(), " is not a token id in [0, ", kMaxVocab, ")");
  return static_cast<int>(v.get<int64_t>());
}

std::string vocab_key(const std::string& piece) {
  return "model.vocab[" + json(piece).dump(-1, ' ', true, json::error_handler_t::replace) + "]";
}

// An optional GGUF token id: `def` when absent, else an integer in [0, n_vocab).
int gguf_id(const GgufFile& f, const std::string& key, int64_t n_vocab, int def) {
  const GgufValue* v = f.find(key);
  if (!v) return def;
  SA_CHECK(v->is_integer() && v->type != GgufValue::Type::BOOL, f.path(), ": ", key,
           " is not an integer token id");
  const int64_t id = f.get_int(key);  // throws, naming the key, past int64
  SA_CHECK(id >= 0 && id < n_vocab, f.path(), ": ", key, " = ", id, " is outside the vocab of ",
           n_vocab, " tokens");
  return static_cast<int>(id);
}

bool gguf_flag(const GgufFile& f, const std::string& key, bool def) {
  return f.get_int_or(key, def ? 1 : 0) != 0;
}

// ---- merges -------------------------------------------------------------------------------------

std::pair<std::string, std::string> split_merge(
    const std::string& m, size_t rank, const std::function<std::string(std::string_view)>& dec) {
  // Neither byte-level nor SentencePiece symbols contain ' ', so the first space past position 0
  // separates the pair.
  size_t sp = m.find(' ', 1);
  SA_CHECK(sp != std::string::npos, "BPE merge ", rank, " is not 'left right': '", m, "'");
  return {dec(std::string_view(m).substr(0, sp)), dec(std::string_view(m).substr(sp + 1))};
}

// ---- tokenizer.json pieces ----------------------------------------------------------------------

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

// A SentencePiece-style tokenizer.json: how it places "▁" and how its decoder undoes it.
struct SpmLayout {
  spm::Prefix prefix = spm::Prefix::kNever;
  bool split_at_meta = false;  // Metaspace split=true
  bool has_normalizer = false;
  bool byte_tokens = false;  // decoder has ByteFallback: <0xNN> decode to their byte
  int strip_left = 0;        // decoder Strip(" ", start, 0) after Fuse
};

const json& steps_of(const json& node, const char* list_key, json& single) {
  if (node.value("type", "") == "Sequence") return node.at(list_key);
  single = json::array({node});
  return single;
}

// Whether a normalizer / pre_tokenizer / decoder is, or is a Sequence holding, a step of `type`.
bool has_step(const json& node, const char* list_key, const std::string& type) {
  if (node.is_null()) return false;
  json single;
  for (const json& step : steps_of(node, list_key, single)) {
    if (step.value("type", "") == type) return true;
  }
  return false;
}

bool is_string_pattern(const json& step, const std::string& s) {
  const json& pat = step.at("pattern");
  return pat.is_object() && pat.contains("String") && pat.at("String") == s;
}

SpmLayout read_spm_layout(const json& j) {
  SpmLayout l;
  const std::string meta(spm::kMeta);
  // Llama 2 / Mistral v0.1: normalizer Sequence[Prepend("▁"), Replace(" ", "▁")] (either order).
  bool prepend = false, replace = false;
  const json normalizer = j.value("normalizer", json());
  if (!normalizer.is_null()) {
    json single;
    for (const json& step : steps_of(normalizer, "normalizers", single)) {
      const std::string type = step.value("type", "");
      if (type == "Prepend" && step.value("prepend", "") == meta && !prepend) {
        prepend = true;
      } else if (type == "Replace" && is_string_pattern(step, " ") &&
                 step.value("content", "") == meta && !replace) {
        replace = true;
      } else {
        fail("normalizer step '", type,
             "' is not supported (a SentencePiece-style tokenizer.json may only Prepend \"▁\" and "
             "Replace \" \" with \"▁\", once each)");
      }
    }
    SA_CHECK(replace, "the normalizer prepends \"▁\" but does not Replace \" \" with \"▁\"");
    l.has_normalizer = true;
    l.prefix = prepend ? spm::Prefix::kAlways : spm::Prefix::kNever;
  }
  // Mistral v0.3 and transformers 5: a Metaspace pre-tokenizer instead.
  const json pre = j.value("pre_tokenizer", json());
  if (!pre.is_null()) {
    json single;
    const json& steps = steps_of(pre, "pretokenizers", single);
    const std::string type = steps.size() == 1 ? steps[0].value("type", "") : "Sequence";
    SA_CHECK(type == "Metaspace", "pre_tokenizer '", type,
             "' is not supported with a SentencePiece-style (byte_fallback) BPE; only Metaspace");
    SA_CHECK(!replace, "both a \"▁\" normalizer and a Metaspace pre-tokenizer");
    const json& m = steps[0];
    SA_CHECK(m.value("replacement", meta) == meta, "Metaspace replacement other than \"▁\"");
    std::string scheme = m.value("add_prefix_space", true) ? "always" : "never";  // older files
    scheme = m.value("prepend_scheme", scheme);
    if (scheme == "always") {
      l.prefix = spm::Prefix::kUnlessSpace;
    } else if (scheme == "first") {
      l.prefix = spm::Prefix::kFirstUnlessSpace;
    } else {
      SA_CHECK(scheme == "never", "Metaspace prepend_scheme '", scheme, "' is not known");
      l.prefix = spm::Prefix::kNever;
    }
    l.split_at_meta = m.value("split", true);
    replace = true;
  }
  SA_CHECK(replace, "a byte_fallback BPE without a \"▁\" normalizer or Metaspace pre-tokenizer");

  // Decoder: Sequence[Replace("▁", " "), ByteFallback, Fuse, Strip(" ", 1, 0)], the last three
  // optional; Strip must come after Fuse, where it strips the start of the whole text.
  const json dec = j.value("decoder", json());
  SA_CHECK(!dec.is_null(), "no decoder (SentencePiece style needs Replace(\"▁\", \" \"))");
  json single;
  bool fused = false, replaced = false, stripped = false;
  for (const json& step : steps_of(dec, "decoders", single)) {
    const std::string type = step.value("type", "");
    if (type == "Replace" && !fused && is_string_pattern(step, meta) &&
        step.value("content", "") == " ") {
      replaced = true;
    } else if (type == "ByteFallback" && !fused) {
      l.byte_tokens = true;
    } else if (type == "Fuse" && !fused) {
      fused = true;
    } else if (type == "Strip" && fused && !stripped && step.value("content", "") == " " &&
               step.value("stop", 0) == 0) {
      const json& start = step.at("start");
      SA_CHECK(start.is_number_integer() && start.get<int64_t>() >= 0 && start.get<int64_t>() <= 16,
               "decoder Strip start = ", start.dump(), " is not an integer in [0, 16]");
      l.strip_left = static_cast<int>(start.get<int64_t>());
      stripped = true;
    } else {
      fail("decoder step '", type,
           "' is not supported here (expected Replace(\"▁\", \" \"), ByteFallback, Fuse, "
           "Strip(\" \", n, 0), in that order)");
    }
  }
  SA_CHECK(replaced, "the decoder does not Replace \"▁\" with \" \"");
  return l;
}

// The token a TemplateProcessing post-processor puts first ("<|begin_of_text|> $A") or last
// ("$A </s>"), if any.
std::string template_special(const json& pp, bool last) {
  if (pp.is_null()) return "";
  const std::string type = pp.value("type", "");
  if (type == "Sequence") {
    for (const auto& sub : pp.at("processors")) {
      std::string s = template_special(sub, last);
      if (!s.empty()) return s;
    }
  } else if (type == "TemplateProcessing" && !pp.at("single").empty()) {
    const json& end = last ? pp.at("single").back() : pp.at("single").front();
    if (end.contains("SpecialToken")) return end.at("SpecialToken").at("id").get<std::string>();
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

// ---- GGUF ---------------------------------------------------------------------------------------

void Tokenizer::gguf_byte_level_vocab(const GgufFile& f, Spec& s) {
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
    for (size_t r = 0; r < merges.size(); ++r) {
      s.merges.push_back(split_merge(merges[r], r, utf8::byte_level_decode));
    }
  }
}

void Tokenizer::gguf_sentencepiece_vocab(const GgufFile& f, Spec& s) {
  std::vector<std::string> texts = f.get_string_array("tokenizer.ggml.tokens");
  const size_t n = texts.size();
  SA_CHECK(f.find("tokenizer.ggml.scores"), f.path(),
           ": tokenizer.ggml.scores is missing; a SentencePiece ('llama') vocab needs the piece "
           "scores to rank its merges");
  const std::vector<double> raw_scores = f.get_float_array("tokenizer.ggml.scores");
  std::vector<int64_t> types(n, kNormal);
  if (f.find("tokenizer.ggml.token_type")) types = f.get_int_array("tokenizer.ggml.token_type");
  SA_CHECK(raw_scores.size() == n && types.size() == n, f.path(), ": ", raw_scores.size(),
           " scores and ", types.size(), " token types for ", n, " tokens");
  std::vector<float> scores(n);
  for (size_t i = 0; i < n; ++i) {
    SA_CHECK(std::isfinite(raw_scores[i]) &&
                 std::fabs(raw_scores[i]) <= std::numeric_limits<float>::max(),
             f.path(), ": tokenizer.ggml.scores[", i, "] = ", raw_scores[i],
             " is not a finite float");
    scores[i] = static_cast<float>(raw_scores[i]);
  }
  s.tokens.resize(n);
  std::vector<char> in_vocab(n, 1);
  int first_unknown = -1;
  for (size_t i = 0; i < n; ++i) {
    const int id = static_cast<int>(i);
    const std::string& t = texts[i];
    s.tokens[i] = spm::meta_to_spaces(t);  // HF's decoder replaces "▁" in every token
    switch (types[i]) {
      case 0:  // undefined
      case kNormal:
        break;
      case kUnknown:
        if (first_unknown < 0) first_unknown = id;
        s.added.push_back({t, id, true, false, false, false});
        break;
      case kControl:
      case kUserDefined:
        s.added.push_back({t, id, types[i] == kControl, false, false, false});
        break;
      case kUnused:  // padding: decodes as its text, never produced by encode
        in_vocab[i] = 0;
        break;
      case kByte: {
        const int b = spm::byte_of_token(t);
        SA_CHECK(b >= 0, f.path(), ": token ", i, " has type BYTE but its text is not <0xNN>");
        s.tokens[i] = std::string(1, static_cast<char>(b));
        break;
      }
      default:
        fail(f.path(), ": tokenizer.ggml.token_type[", i, "] = ", types[i],
             " is not a llama.cpp token type (0..6)");
    }
    if (in_vocab[i]) s.bpe_vocab.emplace_back(t, id);
  }
  s.merges = spm::merges_from_scores(texts, scores, in_vocab);
  s.spm = true;
  s.bpe.char_symbols = true;
  s.bpe.byte_fallback = true;
  s.bpe.fuse_unk = true;  // as transformers' LlamaConverter
  s.bpe.unk_id =
      gguf_id(f, "tokenizer.ggml.unknown_token_id", static_cast<int64_t>(n), first_unknown);
  // llama.cpp: a " " before the text and after every added token, which its decoder strips at
  // the start; this is HF's Prepend("▁") normalizer with Strip(" ", 1, 0).
  const bool prefix = gguf_flag(f, "tokenizer.ggml.add_space_prefix", true);
  s.prefix = prefix ? spm::Prefix::kAlways : spm::Prefix::kNever;
  s.strip_left = prefix ? 1 : 0;
}

Tokenizer Tokenizer::from_gguf(const GgufFile& f) {
  const std::string model = f.get_string_or("tokenizer.ggml.model", "");
  Spec s;
  if (model == "gpt2") {
    gguf_byte_level_vocab(f, s);
  } else if (model == "llama") {
    gguf_sentencepiece_vocab(f, s);
  } else {
    fail(f.path(), ": tokenizer.ggml.model is '", model,
         "'; supported: 'gpt2' (byte-level BPE), 'llama' (SentencePiece BPE)");
  }
  SA_CHECK(static_cast<int64_t>(s.tokens.size()) <= kMaxVocab, f.path(), ": ", s.tokens.size(),
           " tokens is more than the ", kMaxVocab, " supported");
  const auto n = static_cast<int64_t>(s.tokens.size());
  // llama.cpp's defaults for a SentencePiece vocab without the keys: BOS 1, EOS 2, add BOS.
  const bool spm = model == "llama";
  s.bos = gguf_id(f, "tokenizer.ggml.bos_token_id", n, spm && n > 1 ? 1 : -1);
  s.eos = gguf_id(f, "tokenizer.ggml.eos_token_id", n, spm && n > 2 ? 2 : -1);
  s.extra_eog = {gguf_id(f, "tokenizer.ggml.eot_token_id", n, -1),
                 gguf_id(f, "tokenizer.ggml.eom_token_id", n, -1)};
  s.add_bos = gguf_flag(f, "tokenizer.ggml.add_bos_token", spm);
  s.add_eos = gguf_flag(f, "tokenizer.ggml.add_eos_token", false);
  s.chat_template = f.get_string_or("tokenizer.chat_template", "");
  try {
    return build(std::move(s));
  } catch (const Error& e) {
    fail(f.path(), ": ", e.what());
  }
}

// ---- tokenizer.json -----------------------------------------------------------------------------

Tokenizer Tokenizer::from_hf_json(const std::string& tokenizer_json_path,
                                  const std::string& tokenizer_config_json_path) {
  const json j = read_json(tokenizer_json_path, "tokenizer.json");
  const std::string& path = tokenizer_json_path;
  try {
    const json& m = j.at("model");
    SA_CHECK(m.value("type", "") == "BPE", "model type is '", m.value("type", ""),
             "'; only BPE (byte-level or SentencePiece style) is supported");
    for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      SA_CHECK(!m.contains(k) || m.at(k).is_null() || m.at(k).get<std::string>().empty(), k,
               " is not supported");
    }
    // SentencePiece style: byte fallback, a Metaspace pre-tokenizer, or a decoder that turns "▁"
    // back into spaces (byte-level files decode with ByteLevel).
    const bool spm = m.value("byte_fallback", false) ||
                     has_step(j.value("pre_tokenizer", json()), "pretokenizers", "Metaspace") ||
                     has_step(j.value("decoder", json()), "decoders", "Replace") ||
                     has_step(j.value("decoder", json()), "decoders", "ByteFallback");
    Spec s;
    SpmLayout layout;
    if (spm) {
      layout = read_spm_layout(j);
      s.spm = true;
      s.prefix = layout.prefix;
      s.split_at_meta = layout.split_at_meta;
      s.strip_left = layout.strip_left;
      s.bpe.char_symbols = true;
      s.bpe.byte_fallback = m.value("byte_fallback", false);
    } else {
      SA_CHECK(!j.contains("normalizer") || j.at("normalizer").is_null(), "normalizer '",
               j.at("normalizer").value("type", "?"), "' is not supported");
      std::vector<std::string> patterns;
      SA_CHECK(collect_pre(j.value("pre_tokenizer", json()), patterns),
               "no ByteLevel pre-tokenizer: not a byte-level BPE tokenizer");
      s.pre = PreTokenizer(patterns);
    }
    // Byte-level symbols are raw bytes once decoded; SentencePiece pieces stay as the file has
    // them, and decode with "▁" as a space and <0xNN> as a byte.
    auto model_text = [&](std::string_view t) {
      return spm ? std::string(t) : utf8::byte_level_decode(t);
    };
    auto output_text = [&](const std::string& t) {
      if (!spm) return utf8::byte_level_decode(t);
      const int b = layout.byte_tokens ? spm::byte_of_token(t) : -1;
      return b >= 0 ? std::string(1, static_cast<char>(b)) : spm::meta_to_spaces(t);
    };
    s.bpe.ignore_merges = m.value("ignore_merges", false);
    s.bpe.fuse_unk = m.value("fuse_unk", false);

    const json& vocab = m.at("vocab");
    const json added = j.value("added_tokens", json::array());
    SA_CHECK(vocab.is_object() && added.is_array(),
             "model.vocab is not an object or added_tokens "
             "not an array");
    int n = 0;
    std::vector<int> vocab_ids, added_ids;
    for (const auto& [text, id] : vocab.items()) {
      vocab_ids.push_back(json_id(id, vocab_key(text)));
      n = std::max(n, vocab_ids.back() + 1);
    }
    for (size_t i = 0; i < added.size(); ++i) {
      added_ids.push_back(json_id(added[i].at("id"), "added_tokens[" + std::to_string(i) + "].id"));
      n = std::max(n, added_ids.back() + 1);
    }
    // The vocab is sized by its largest id: ids far past the number of entries would make a
    // file of a few bytes cost gigabytes of empty tokens. Real vocabs are dense; some leave a
    // few gaps (padding), far fewer than their entries.
    const size_t entries = vocab.size() + added.size();
    SA_CHECK(static_cast<size_t>(n) <= 2 * entries + 1024, "token id ", n - 1,
             " is far past the vocab's ", entries, " entries (ids must be nearly dense)");
    s.tokens.resize(n);
    size_t k = 0;
    for (const auto& [text, id] : vocab.items()) {
      const int v = vocab_ids[k++];
      s.tokens[v] = output_text(text);
      s.bpe_vocab.emplace_back(model_text(text), v);
    }
    for (size_t i = 0; i < added.size(); ++i) {
      const json& a = added[i];
      SA_CHECK(!a.value("single_word", false), "added token '", a.at("content").get<std::string>(),
               "' has single_word=true, which is not supported");
      AddedToken t{a.at("content").get<std::string>(), added_ids[i],
                   a.value("special", false),          a.value("normalized", false),
                   a.value("lstrip", false),           a.value("rstrip", false)};
      SA_CHECK(!(t.normalized && layout.has_normalizer), "added token '", t.text,
               "' has normalized=true, which is not supported with a normalizer");
      s.tokens[t.id] = output_text(t.text);
      s.added.push_back(std::move(t));
    }
    const json& merges = m.at("merges");
    s.merges.reserve(merges.size());
    for (size_t r = 0; r < merges.size(); ++r) {
      if (merges[r].is_string()) {  // "left right" (older files) or ["left", "right"]
        s.merges.push_back(split_merge(merges[r].get<std::string>(), r, model_text));
      } else {
        s.merges.emplace_back(model_text(merges[r].at(0).get<std::string>()),
                              model_text(merges[r].at(1).get<std::string>()));
      }
    }
    if (m.contains("unk_token") && m.at("unk_token").is_string()) {
      auto it = vocab.find(m.at("unk_token").get<std::string>());
      if (it != vocab.end()) s.bpe.unk_id = json_id(*it, vocab_key(it.key()));
    }

    // BOS/EOS: the post-processor's first/last token says whether HF adds one; the config may
    // override.
    const json post = j.value("post_processor", json());
    std::string bos = template_special(post, false), eos_added = template_special(post, true);
    s.add_bos = !bos.empty();
    s.add_eos = !eos_added.empty();
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
      if (cfg.contains("add_eos_token") && cfg.at("add_eos_token").is_boolean()) {
        s.add_eos = cfg.at("add_eos_token").get<bool>();
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
