#include "tokenizer/spm.h"

#include <algorithm>
#include <string>
#include <unordered_map>

#include "tokenizer/utf8.h"

namespace starattn::spm {

void normalize(std::string_view piece, bool at_input_start, Prefix prefix, std::string& out) {
  if (piece.empty()) return;  // HF's Prepend skips an empty string; Metaspace never sees one
  const bool starts_with_space = piece[0] == ' ' || piece.substr(0, kMeta.size()) == kMeta;
  bool add = false;
  switch (prefix) {
    case Prefix::kNever:
      break;
    case Prefix::kAlways:
      add = true;
      break;
    case Prefix::kUnlessSpace:
      add = !starts_with_space;
      break;
    case Prefix::kFirstUnlessSpace:
      add = at_input_start && !starts_with_space;
      break;
  }
  out.reserve(out.size() + piece.size() + 2 * 4);
  if (add) out += kMeta;
  for (char c : piece) {
    if (c == ' ') {
      out += kMeta;
    } else {
      out += c;
    }
  }
}

void split_at_meta(std::string_view text, std::vector<std::string_view>& out) {
  size_t start = 0;
  for (size_t pos = text.find(kMeta, 1); pos != std::string_view::npos;
       pos = text.find(kMeta, pos + kMeta.size())) {
    out.push_back(text.substr(start, pos - start));
    start = pos;
  }
  if (start < text.size()) out.push_back(text.substr(start));
}

int byte_of_token(std::string_view t) {
  if (t.size() != 6 || t.substr(0, 3) != "<0x" || t[5] != '>') return -1;
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  int hi = hex(t[3]), lo = hex(t[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

std::string meta_to_spaces(std::string_view piece) {
  std::string out;
  out.reserve(piece.size());
  for (size_t i = 0; i < piece.size();) {
    if (piece.substr(i, kMeta.size()) == kMeta) {
      out += ' ';
      i += kMeta.size();
    } else {
      out += piece[i++];
    }
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> merges_from_scores(
    const std::vector<std::string>& pieces, const std::vector<float>& scores,
    const std::vector<char>& in_vocab) {
  std::unordered_map<std::string_view, int> id_of;
  id_of.reserve(pieces.size());
  for (size_t i = 0; i < pieces.size(); ++i) {
    if (in_vocab[i]) id_of.emplace(pieces[i], static_cast<int>(i));  // first id wins
  }
  struct Cand {
    float score;
    int len_left, len_right;  // in code points, as Python's len()
    int piece, left, right;   // ids: the tie-breaks
    size_t cut;               // byte offset of the split in the piece
  };
  std::vector<Cand> cands;
  for (size_t i = 0; i < pieces.size(); ++i) {
    const std::string& t = pieces[i];
    auto own = id_of.find(t);
    if (own == id_of.end() || own->second != static_cast<int>(i)) continue;
    int total = 0;
    for (size_t p = 0; p < t.size(); ++total) {
      char32_t cp;
      p += utf8::next(t, p, &cp);
    }
    int left_len = 0;
    for (size_t cut = 0; cut < t.size();) {
      char32_t cp;
      cut += utf8::next(t, cut, &cp);
      ++left_len;
      if (cut >= t.size()) break;
      auto l = id_of.find(std::string_view(t).substr(0, cut));
      auto r = id_of.find(std::string_view(t).substr(cut));
      if (l == id_of.end() || r == id_of.end()) continue;
      cands.push_back(
          {scores[i], left_len, total - left_len, static_cast<int>(i), l->second, r->second, cut});
    }
  }
  std::sort(cands.begin(), cands.end(), [](const Cand& a, const Cand& b) {
    if (a.score != b.score) return a.score > b.score;
    if (a.len_left != b.len_left) return a.len_left > b.len_left;
    if (a.len_right != b.len_right) return a.len_right > b.len_right;
    if (a.piece != b.piece) return a.piece < b.piece;
    if (a.left != b.left) return a.left < b.left;
    return a.right < b.right;
  });
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(cands.size());
  for (const Cand& c : cands) {
    const std::string& t = pieces[c.piece];
    merges.emplace_back(t.substr(0, c.cut), t.substr(c.cut));
  }
  return merges;
}

}  // namespace starattn::spm
