#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <unordered_map>

#include "starattn/error.h"
#include "tokenizer/utf8.h"

namespace starattn {

namespace {

// Turn-ending tokens of the supported families, recognised by text wherever the vocab has them.
constexpr const char* kEogNames[] = {"<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|endoftext|>",
                                     "<|end_of_text|>"};

bool white_space_before(std::string_view t, size_t pos, size_t* start) {
  size_t p = pos;  // step back to the lead byte of the previous character
  do {
    if (p == 0) return false;
    --p;
  } while (p > 0 && pos - p < 4 && (static_cast<unsigned char>(t[p]) & 0xC0) == 0x80);
  char32_t cp;
  if (p + utf8::next(t, p, &cp) != pos || !utf8::is_white_space(cp)) return false;
  *start = p;
  return true;
}

}  // namespace

Tokenizer Tokenizer::build(Spec&& s) {
  Tokenizer t;
  t.tokens_ = std::move(s.tokens);
  t.bpe_ = BpeModel(s.bpe_vocab, s.merges, s.bpe);
  t.pre_ = std::move(s.pre);
  t.spm_ = s.spm;
  t.prefix_ = s.prefix;
  t.split_at_meta_ = s.split_at_meta;
  t.strip_left_ = s.strip_left;
  int n = t.vocab_size();
  for (auto& a : s.added) {
    SA_CHECK(a.id >= 0 && a.id < n, "added token id ", a.id, " outside the vocab of ", n);
    if (!a.text.empty()) t.added_.push_back(std::move(a));
  }
  // Longest first, so the first candidate that matches at a position is the longest one.
  std::stable_sort(t.added_.begin(), t.added_.end(), [](const AddedToken& a, const AddedToken& b) {
    return a.text.size() > b.text.size();
  });
  for (size_t i = 0; i < t.added_.size(); ++i) {
    t.added_by_first_[static_cast<unsigned char>(t.added_[i].text[0])].push_back(
        static_cast<int>(i));
  }
  SA_CHECK(s.bos >= -1 && s.bos < n, "bos token id ", s.bos, " outside the vocab of ", n);
  SA_CHECK(s.eos >= -1 && s.eos < n, "eos token id ", s.eos, " outside the vocab of ", n);
  t.bos_id_ = s.bos;
  t.eos_id_ = s.eos;
  t.add_bos_ = s.add_bos;
  t.add_eos_ = s.add_eos;
  if (s.eos >= 0) t.eog_ids_.push_back(s.eos);
  for (int id : s.extra_eog) {
    if (id >= 0 && id < n) t.eog_ids_.push_back(id);
  }
  for (const char* name : kEogNames) {
    int id = t.token_id(name);
    if (id >= 0) t.eog_ids_.push_back(id);
  }
  std::sort(t.eog_ids_.begin(), t.eog_ids_.end());
  t.eog_ids_.erase(std::unique(t.eog_ids_.begin(), t.eog_ids_.end()), t.eog_ids_.end());
  t.chat_template_ = std::move(s.chat_template);
  return t;
}

int Tokenizer::token_id(std::string_view text) const {
  for (const auto& a : added_) {  // a few hundred at most
    if (a.text == text) return a.id;
  }
  if (!spm_) return bpe_.find(text);
  std::string piece;
  spm::normalize(text, false, spm::Prefix::kNever, piece);
  int id = bpe_.find(piece);
  if (id < 0 && text.size() == 1) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "<0x%02X>", static_cast<unsigned char>(text[0]));
    id = bpe_.find(hex);
  }
  return id;
}

void Tokenizer::match_group(std::string_view text, size_t begin, size_t end, bool normalized,
                            bool parse_special, std::vector<Piece>& out) const {
  size_t last = begin;
  for (size_t pos = begin; pos < end;) {
    const AddedToken* hit = nullptr;
    for (int i : added_by_first_[static_cast<unsigned char>(text[pos])]) {
      const AddedToken& a = added_[i];
      if (a.normalized != normalized || (a.special && !parse_special)) continue;
      if (a.text.size() <= end - pos &&
          std::memcmp(text.data() + pos, a.text.data(), a.text.size()) == 0) {
        hit = &a;
        break;
      }
    }
    if (!hit) {
      ++pos;
      continue;
    }
    size_t s = pos, e = pos + hit->text.size();
    if (hit->lstrip) {  // the token absorbs the white space before it
      size_t p;
      while (s > last && white_space_before(text, s, &p) && p >= last) s = p;
    }
    while (hit->rstrip && e < end) {  // ... and the white space after it
      char32_t cp;
      size_t n = utf8::next(text, e, &cp);
      if (e + n > end || cp == utf8::kInvalid || !utf8::is_white_space(cp)) break;
      e += n;
    }
    if (s > last) out.push_back({last, s, -1});
    out.push_back({s, e, hit->id});
    last = pos = e;
  }
  if (end > last) out.push_back({last, end, -1});
}

void Tokenizer::split_added(std::string_view text, bool parse_special,
                            std::vector<Piece>& out) const {
  if (added_.empty()) {
    if (!text.empty()) out.push_back({0, text.size(), -1});
    return;
  }
  // HF cuts non-normalized added tokens out of the whole text first, then normalized ones out of
  // what is left; without a normalizer the two passes differ only in that priority.
  std::vector<Piece> first;
  match_group(text, 0, text.size(), false, parse_special, first);
  for (const Piece& p : first) {
    if (p.id >= 0) {
      out.push_back(p);
    } else {
      match_group(text, p.begin, p.end, true, parse_special, out);
    }
  }
}

void Tokenizer::split_words(std::string_view text, const Piece& p,
                            std::deque<std::string>& normalized,
                            std::vector<std::string_view>& words) const {
  const std::string_view piece = text.substr(p.begin, p.end - p.begin);
  if (!spm_) {
    pre_.split(piece, words);
    return;
  }
  // HF normalizes (or Metaspace-pre-tokenizes) each piece between added tokens on its own; only
  // the piece at byte 0 counts as the start of the input for prepend_scheme "first".
  std::string& norm = normalized.emplace_back();
  spm::normalize(piece, p.begin == 0, prefix_, norm);
  if (split_at_meta_) {
    spm::split_at_meta(norm, words);
  } else if (!norm.empty()) {
    words.push_back(norm);
  }
}

std::vector<int> Tokenizer::encode(std::string_view text, bool parse_special) const {
  std::vector<Piece> pieces;
  split_added(text, parse_special, pieces);
  std::vector<int> out;
  out.reserve(text.size() / 3 + 8);
  // Per-call cache of word -> ids: natural text repeats a small set of words, so most words skip
  // BPE. Per call (not shared) keeps encode const and thread-safe without locks.
  std::unordered_map<std::string_view, std::pair<uint32_t, uint32_t>> cache;
  std::vector<int> cached;
  std::vector<std::string_view> words;
  std::deque<std::string> normalized;  // SentencePiece pieces; a deque keeps the views valid
  for (const Piece& p : pieces) {
    if (p.id >= 0) {
      out.push_back(p.id);
      continue;
    }
    words.clear();
    split_words(text, p, normalized, words);
    for (std::string_view w : words) {
      auto it = cache.find(w);
      if (it == cache.end()) {
        auto begin = static_cast<uint32_t>(cached.size());
        bpe_.encode_word(w, cached);
        it = cache.emplace(w, std::make_pair(begin, static_cast<uint32_t>(cached.size()))).first;
      }
      out.insert(out.end(), cached.begin() + it->second.first, cached.begin() + it->second.second);
    }
  }
  return out;
}

const std::string& Tokenizer::token_text(int id) const {
  SA_CHECK(id >= 0 && id < vocab_size(), "token id ", id, " outside the vocab of ", vocab_size());
  return tokens_[id];
}

std::string Tokenizer::decode(const std::vector<int>& ids) const {
  std::string out;
  for (int id : ids) out += token_text(id);
  size_t strip = 0;
  while (strip < out.size() && strip < static_cast<size_t>(strip_left_) && out[strip] == ' ') {
    ++strip;
  }
  out.erase(0, strip);
  return out;
}

bool Tokenizer::is_eog(int id) const {
  return std::binary_search(eog_ids_.begin(), eog_ids_.end(), id);
}

std::string StreamDecoder::push(int id) {
  std::string_view text = tok_->token_text(id);
  // decode() strips leading spaces of the joined text: drop them here until a non-space arrives.
  while (strip_left_ > 0 && !text.empty()) {
    if (text[0] != ' ') {
      strip_left_ = 0;
    } else {
      text.remove_prefix(1);
      --strip_left_;
    }
  }
  pending_ += text;
  size_t hold = utf8::incomplete_tail(pending_);
  std::string out = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

}  // namespace starattn
