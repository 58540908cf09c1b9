#include "tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "starattn/error.h"

namespace starattn {

namespace {

// HF tokenizers matches with Oniguruma, whose Unicode tables are newer than PCRE2 10.42's
// (Unicode 16 vs 14), and whose \s is exactly White_Space (PCRE2 also takes U+180E). Comparing
// every code point through both libraries (tools/make_tokenizer_fixtures.py's oracle, and a probe
// over U+0001..U+10FFFF) left these differences, which the translation below removes.
constexpr const char* kWhiteSpace =
    "\\x{9}-\\x{d}\\x{20}\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}"
    "\\x{205f}\\x{3000}";
constexpr const char* kExtraLetters =
    "\\x{1c89}-\\x{1c8a}\\x{a7cb}-\\x{a7cd}\\x{a7da}-\\x{a7dc}\\x{105c0}-\\x{105f3}"
    "\\x{10d4a}-\\x{10d65}\\x{10d6f}-\\x{10d85}\\x{10ec2}-\\x{10ec4}\\x{1123f}-\\x{11240}"
    "\\x{11380}-\\x{11389}\\x{1138b}\\x{1138e}\\x{11390}-\\x{113b5}\\x{113b7}\\x{113d1}"
    "\\x{113d3}\\x{11bc0}-\\x{11be0}\\x{11f02}\\x{11f04}-\\x{11f10}\\x{11f12}-\\x{11f33}"
    "\\x{1342f}\\x{13441}-\\x{13446}\\x{13460}-\\x{143fa}\\x{16100}-\\x{1611d}"
    "\\x{16d40}-\\x{16d6c}\\x{18cff}\\x{1b132}\\x{1b155}\\x{1df25}-\\x{1df2a}"
    "\\x{1e030}-\\x{1e06d}\\x{1e4d0}-\\x{1e4eb}\\x{1e5d0}-\\x{1e5ed}\\x{1e5f0}\\x{2b739}"
    "\\x{2ebf0}-\\x{2ee5d}\\x{31350}-\\x{323af}";
constexpr const char* kExtraNumbers =
    "\\x{10d40}-\\x{10d49}\\x{116d0}-\\x{116e3}\\x{11bf0}-\\x{11bf9}\\x{11f50}-\\x{11f59}"
    "\\x{16130}-\\x{16139}\\x{16d70}-\\x{16d79}\\x{1ccf0}-\\x{1ccf9}\\x{1d2c0}-\\x{1d2d3}"
    "\\x{1e4f0}-\\x{1e4f9}\\x{1e5f1}-\\x{1e5fa}";

// Rewrites \s \S \p{L} \p{N} (inside and outside character classes) into explicit classes.
std::string translate(const std::string& pat) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < pat.size(); ++i) {
    char c = pat[i];
    if (c == '\\' && i + 1 < pat.size()) {
      char e = pat[++i];
      std::string item;
      bool negated = false;
      if (e == 's' || e == 'S') {
        item = kWhiteSpace;
        negated = e == 'S';
      } else if ((e == 'p' || e == 'P') && pat.compare(i + 1, 3, "{L}") == 0) {
        item = std::string("\\p{L}") + kExtraLetters;
        negated = e == 'P';
        i += 3;
      } else if ((e == 'p' || e == 'P') && pat.compare(i + 1, 3, "{N}") == 0) {
        item = std::string("\\p{N}") + kExtraNumbers;
        negated = e == 'P';
        i += 3;
      } else {
        out += c;
        out += e;
        continue;
      }
      if (in_class) {
        SA_CHECK(!negated, "tokenizer regex: negated class \\", e,
                 " inside [...] unsupported: ", pat);
        out += item;
      } else {
        out += negated ? "[^" : "[";
        out += item;
        out += "]";
      }
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      if (i + 1 < pat.size() && pat[i + 1] == '^') out += pat[++i];
      if (i + 1 < pat.size() && pat[i + 1] == ']') out += pat[++i];  // literal ] first in class
      continue;
    }
    if (in_class && c == ']') in_class = false;
    out += c;
  }
  return out;
}

}  // namespace

struct PreTokenizer::Step {
  pcre2_code* code = nullptr;
  bool jit = false;
  explicit Step(const std::string& pattern) {
    std::string p = translate(pattern);
    int err = 0;
    PCRE2_SIZE at = 0;
    // MATCH_INVALID_UTF: invalid bytes never match and end up in gap pieces, which BPE turns into
    // byte tokens, so arbitrary bytes survive encode/decode.
    code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(p.data()), p.size(),
                         PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &at, nullptr);
    if (!code) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      fail("tokenizer regex does not compile at offset ", at, ": ", reinterpret_cast<char*>(msg),
           " (pattern ", pattern, ")");
    }
    jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  }
  ~Step() { pcre2_code_free(code); }
  Step(const Step&) = delete;
  Step& operator=(const Step&) = delete;
};

PreTokenizer::PreTokenizer(const std::vector<std::string>& patterns) {
  for (const auto& p : patterns) steps_.push_back(std::make_shared<const Step>(p));
}

const std::string& PreTokenizer::gpt2_pattern() {
  static const std::string p =
      R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
  return p;
}

const std::string& PreTokenizer::llama3_pattern() {
  static const std::string p =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  return p;
}

const std::string& PreTokenizer::qwen2_pattern() {
  static const std::string p =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  return p;
}

PreTokenizer PreTokenizer::from_gguf_name(const std::string& name) {
  // An unknown name is an error, not a fallback to gpt2: a wrong split gives valid-looking but
  // different ids, and the model then degrades without any message.
  if (name == "gpt2" || name == "gpt-2" || name == "default") return PreTokenizer({gpt2_pattern()});
  if (name == "llama-bpe" || name == "llama3") return PreTokenizer({llama3_pattern()});
  if (name == "qwen2") return PreTokenizer({qwen2_pattern()});
  // SmolLM2's tokenizer.json: Digits(individual_digits) then ByteLevel(use_regex).
  if (name == "smollm") return PreTokenizer({R"(\p{N})", gpt2_pattern()});
  fail("unsupported pre-tokenizer tokenizer.ggml.pre = '", name,
       "' (supported: gpt2, gpt-2, default, llama-bpe, llama3, qwen2, smollm)");
}

void PreTokenizer::split(std::string_view text, std::vector<std::string_view>& out) const {
  if (steps_.empty()) {
    if (!text.empty()) out.push_back(text);
    return;
  }
  std::vector<std::string_view> cur{text}, nxt;
  for (const auto& step : steps_) {
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(step->code, nullptr);
    SA_CHECK(md, "pcre2_match_data_create failed");
    nxt.clear();
    for (std::string_view piece : cur) {
      auto subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
      size_t last = 0, pos = 0;
      while (pos < piece.size()) {
        int rc = step->jit ? pcre2_jit_match(step->code, subject, piece.size(), pos, 0, md, nullptr)
                           : pcre2_match(step->code, subject, piece.size(), pos, 0, md, nullptr);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
          pcre2_match_data_free(md);
          fail("tokenizer regex match failed (pcre2 error ", rc, ")");
        }
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        size_t s = ov[0], e = ov[1];
        if (e == s) {  // empty match: never a piece; step past it
          pos = s + 1;
          continue;
        }
        if (s > last) nxt.push_back(piece.substr(last, s - last));
        nxt.push_back(piece.substr(s, e - s));
        last = pos = e;
      }
      if (last < piece.size()) nxt.push_back(piece.substr(last));
    }
    pcre2_match_data_free(md);
    cur.swap(nxt);
  }
  out.insert(out.end(), cur.begin(), cur.end());
}

}  // namespace starattn
