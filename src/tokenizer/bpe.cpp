#include "tokenizer/bpe.h"

#include <algorithm>
#include <cstdio>
#include <queue>

#include "starattn/error.h"
#include "tokenizer/utf8.h"

namespace starattn {

BpeModel::BpeModel(const std::vector<std::pair<std::string, int>>& vocab,
                   const std::vector<std::pair<std::string, std::string>>& merges, Options opt)
    : opt_(opt) {
  vocab_.reserve(vocab.size());
  for (const auto& [text, id] : vocab) vocab_.emplace(text, id);  // first id wins on duplicates
  byte_id_.fill(-1);
  for (int b = 0; b < 256; ++b) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "<0x%02X>", b);  // HF's format!("<{b:#04X}>")
    auto it =
        vocab_.find(opt_.char_symbols ? std::string_view(hex)
                                      : std::string_view(std::string(1, static_cast<char>(b))));
    if (it != vocab_.end()) byte_id_[b] = it->second;
  }
  merges_.reserve(merges.size());
  auto id_of = [&](const std::string& t, size_t rank) {
    auto it = vocab_.find(t);
    SA_CHECK(it != vocab_.end(), "BPE merge ", rank, " uses a token missing from the vocab (",
             t.size(), " bytes)");
    return it->second;
  };
  for (size_t r = 0; r < merges.size(); ++r) {
    const auto& [l, rt] = merges[r];
    int a = id_of(l, r), b = id_of(rt, r), m = id_of(l + rt, r);
    // A repeated pair keeps its last rank, as HF's HashMap::collect does.
    merges_[key(a, b)] = Merge{static_cast<int>(r), m};
  }
}

namespace {

template <typename Sym>
void push_sym(std::vector<Sym>& sym, int id) {
  int n = static_cast<int>(sym.size());
  sym.push_back({id, n - 1, -1});
  if (n > 0) sym[n - 1].next = n;
}

}  // namespace

void BpeModel::start_bytes(std::string_view word, std::vector<Sym>& sym) const {
  for (unsigned char c : word) {
    int id = byte_id_[c];
    if (id < 0) {
      if (opt_.unk_id < 0) continue;
      if (opt_.fuse_unk && !sym.empty() && sym.back().id == opt_.unk_id) continue;
      id = opt_.unk_id;
    }
    push_sym(sym, id);
  }
}

void BpeModel::start_chars(std::string_view word, std::vector<Sym>& sym) const {
  // HF's merge_word: an unknown character is held as a pending unk, fused with the next unknown
  // ones (fuse_unk) and written when a character of the vocab follows or the word ends. Byte
  // tokens do not write it first, so they can come before it; HF does the same.
  bool pending_unk = false;
  for (size_t i = 0; i < word.size();) {
    char32_t cp;
    const size_t n = utf8::next(word, i, &cp);
    const std::string_view ch = word.substr(i, n);
    i += n;
    if (auto it = vocab_.find(ch); it != vocab_.end()) {
      if (pending_unk) push_sym(sym, opt_.unk_id);
      pending_unk = false;
      push_sym(sym, it->second);
      continue;
    }
    if (opt_.byte_fallback && std::all_of(ch.begin(), ch.end(), [&](char c) {
          return byte_id_[static_cast<unsigned char>(c)] >= 0;
        })) {
      for (char c : ch) push_sym(sym, byte_id_[static_cast<unsigned char>(c)]);
      continue;
    }
    if (opt_.unk_id < 0) continue;  // no unk token: the character is dropped
    if (pending_unk && !opt_.fuse_unk) push_sym(sym, opt_.unk_id);
    pending_unk = true;
  }
  if (pending_unk) push_sym(sym, opt_.unk_id);
}

int BpeModel::find(std::string_view bytes) const {
  auto it = vocab_.find(bytes);
  return it == vocab_.end() ? -1 : it->second;
}

void BpeModel::encode_word(std::string_view word, std::vector<int>& out) const {
  if (word.empty()) return;
  if (opt_.ignore_merges) {
    auto it = vocab_.find(word);
    if (it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  // Symbols form a doubly linked list over the word; a merge keeps the left symbol.
  std::vector<Sym> sym;
  sym.reserve(word.size());
  if (opt_.char_symbols) {
    start_chars(word, sym);
  } else {
    start_bytes(word, sym);
  }
  if (sym.size() > 1) {
    // Lowest rank first, then leftmost: the order HF's BinaryHeap of merges pops.
    struct Cand {
      int rank, pos, id;
      bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
    auto push = [&](int left) {
      int right = sym[left].next;
      if (right < 0) return;
      auto it = merges_.find(key(sym[left].id, sym[right].id));
      if (it != merges_.end()) heap.push({it->second.rank, left, it->second.id});
    };
    for (int i = 0; i + 1 < static_cast<int>(sym.size()); ++i) push(i);
    while (!heap.empty()) {
      Cand c = heap.top();
      heap.pop();
      Sym& l = sym[c.pos];
      if (l.id < 0 || l.next < 0) continue;  // merged away, or now last
      auto it = merges_.find(key(l.id, sym[l.next].id));
      if (it == merges_.end() || it->second.id != c.id) continue;  // stale: a neighbour changed
      Sym& r = sym[l.next];
      l.id = c.id;
      l.next = r.next;
      if (r.next >= 0) sym[r.next].prev = c.pos;
      r.id = -1;
      if (l.prev >= 0) push(l.prev);
      push(c.pos);
    }
  }
  for (int i = sym.empty() ? -1 : 0; i >= 0; i = sym[i].next) out.push_back(sym[i].id);
}

}  // namespace starattn
