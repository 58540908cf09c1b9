#include "tokenizer/bpe.h"

#include <queue>

#include "starattn/error.h"

namespace starattn {

BpeModel::BpeModel(const std::vector<std::pair<std::string, int>>& vocab,
                   const std::vector<std::pair<std::string, std::string>>& merges, Options opt)
    : opt_(opt) {
  vocab_.reserve(vocab.size());
  for (const auto& [text, id] : vocab) vocab_.emplace(text, id);  // first id wins on duplicates
  byte_id_.fill(-1);
  for (int b = 0; b < 256; ++b) {
    auto it = vocab_.find(std::string_view(std::string(1, static_cast<char>(b))));
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
  // Symbols form a doubly linked list over the word's bytes; a merge keeps the left symbol.
  struct Sym {
    int id, prev, next;
  };
  std::vector<Sym> sym;
  sym.reserve(word.size());
  for (unsigned char c : word) {
    int id = byte_id_[c];
    if (id < 0) {
      if (opt_.unk_id < 0) continue;
      if (opt_.fuse_unk && !sym.empty() && sym.back().id == opt_.unk_id) continue;
      id = opt_.unk_id;
    }
    int n = static_cast<int>(sym.size());
    sym.push_back({id, n - 1, -1});
    if (n > 0) sym[n - 1].next = n;
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
