// RULER's needle-in-a-haystack family (Star Attention's ruler/data/synthetic/niah.py).
#include <algorithm>
#include <array>
#include <cstdio>

#include "eval/task_impl.h"
#include "eval/text.h"
#include "starattn/error.h"

namespace starattn::eval {
namespace {

using HK = HaystackKind;
using VK = ValueKind;

// synthetic_task_config.yaml, in RULER's order.
constexpr std::array<NiahSpec, 8> kSpecs = {{
    {"niah_single_1", HK::Repeat, VK::Words, VK::Numbers, 1, 1, 1},
    {"niah_single_2", HK::Essay, VK::Words, VK::Numbers, 1, 1, 1},
    {"niah_single_3", HK::Essay, VK::Words, VK::Uuids, 1, 1, 1},
    {"niah_multikey_1", HK::Essay, VK::Words, VK::Numbers, 4, 1, 1},
    {"niah_multikey_2", HK::Needle, VK::Words, VK::Numbers, 1, 1, 1},
    {"niah_multikey_3", HK::Needle, VK::Uuids, VK::Uuids, 1, 1, 1},
    {"niah_multivalue", HK::Essay, VK::Words, VK::Numbers, 1, 4, 1},
    {"niah_multiquery", HK::Essay, VK::Words, VK::Numbers, 4, 1, 4},
}};

class NiahTask : public Task {
 public:
  NiahTask(const NiahSpec& s, const TaskEnv& env, int64_t length) : Task(env, length), s_(s) {
    name = s.name;
    sizing_tokens = max_new_tokens = 128;
    // RULER's units: essay 500 words, line haystacks 25 lines (5 below 4096 tokens). Only the
    // per-sample shrink uses them; the search itself is a binary search over every n.
    inc = s.haystack == HK::Essay ? 500 : (length < 4096 ? 5 : 25);
    min_units = std::max(s.k, s.q) * s.v;  // line haystacks need a line per needle
    if (s.haystack == HK::Essay) max_units = static_cast<int64_t>(env.essay().words.size());
  }

  Generated gen(int64_t n, Rng& rng) const override {
    const bool want_words = s_.key == VK::Words || s_.value == VK::Words;
    const NiahContent c = niah_content(s_, n, rng, want_words ? &env_.words() : nullptr,
                                       s_.haystack == HK::Essay ? &env_.essay().words : nullptr);
    return {render_niah(env_.format, s_, c.haystack, join_keys(c.queried_keys), env_.faithful),
            c.refs};
  }

  int64_t find_units(Rng& rng) const override {
    const int64_t n = Task::find_units(rng);
    SA_CHECK(max_units == 0 || n < max_units, "the haystack ", env_.essay().name, " has only ",
             max_units, " words, too few to fill ", length_, " tokens for ", name,
             "; pass --haystack FILE with a longer text");
    return n;
  }

 private:
  const NiahSpec& s_;
};

}  // namespace

const int kNiahDepths[40] = {0,  3,  5,  8,  10, 13, 15, 18, 21, 23, 26, 28, 31, 33,
                             36, 38, 41, 44, 46, 49, 51, 54, 56, 59, 62, 64, 67, 69,
                             72, 74, 77, 79, 82, 85, 87, 90, 92, 95, 97, 100};

const NiahSpec* find_niah_spec(std::string_view name) {
  for (const NiahSpec& s : kSpecs) {
    if (name == s.name) return &s;
  }
  return nullptr;
}

const char* value_kind_plural(ValueKind k) {
  switch (k) {
    case VK::Words:
      return "words";
    case VK::Numbers:
      return "numbers";
    case VK::Uuids:
      return "uuids";
  }
  fail("unknown ValueKind ", static_cast<int>(k));
}

std::unique_ptr<Task> make_niah_task(const std::string& name, const TaskEnv& env, int64_t length) {
  const NiahSpec* s = find_niah_spec(name);
  SA_CHECK(s != nullptr, "not a needle task: ", name);
  return std::make_unique<NiahTask>(*s, env, length);
}

std::string singular_template(std::string s) {
  s = replace_all(std::move(s), "Some", "A");
  s = replace_all(std::move(s), "are all", "is");
  s = replace_all(std::move(s), "are", "is");
  return replace_all(std::move(s), "answers", "answer");
}

std::string niah_needle(ValueKind value, std::string_view key, std::string_view val) {
  // The value type stays plural inside needles, as in RULER.
  return "One of the special magic " + std::string(value_kind_plural(value)) + " for " +
         std::string(key) + " is: " + std::string(val) + ".";
}

std::string random_uuid(Rng& rng) {
  uint64_t hi = rng.next(), lo = rng.next();
  hi = (hi & ~0xf000ull) | 0x4000ull;                            // version 4
  lo = (lo & ~(0xc000000000000000ull)) | 0x8000000000000000ull;  // RFC 4122 variant
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08llx-%04llx-%04llx-%04llx-%012llx",
                static_cast<unsigned long long>(hi >> 32),
                static_cast<unsigned long long>((hi >> 16) & 0xffff),
                static_cast<unsigned long long>(hi & 0xffff),
                static_cast<unsigned long long>(lo >> 48),
                static_cast<unsigned long long>(lo & 0xffffffffffffull));
  return buf;
}

std::string random_value(ValueKind kind, Rng& rng, const std::vector<std::string>* words) {
  switch (kind) {
    case VK::Numbers:
      return std::to_string(rng.range(1000000, 9999999));  // 7 digits
    case VK::Uuids:
      return random_uuid(rng);
    case VK::Words:
      // RULER draws an "adjective-noun" pair from wonderwords; we have no parts of speech, so
      // any two words of the list.
      SA_CHECK(words != nullptr && !words->empty(), "no word list for word keys");
      {
        const std::string& a = rng.choice(*words);
        return a + "-" + rng.choice(*words);
      }
  }
  fail("unknown ValueKind ", static_cast<int>(kind));
}

std::string join_keys(const std::vector<std::string>& keys) {
  SA_CHECK(!keys.empty(), "no query keys");
  if (keys.size() == 1) return keys[0];
  std::vector<std::string> head(keys.begin(), keys.end() - 1);
  return join(head, ", ") + ", and " + keys.back();
}

PromptPair render_niah(const PromptFormat& f, const NiahSpec& s, std::string_view haystack,
                       std::string_view query_keys, bool faithful) {
  const bool single = s.q * s.v == 1;
  std::string tv = value_kind_plural(s.value);
  if (single) tv.pop_back();
  std::string ctx = substitute(
      "Some special magic {t} are hidden within the following text. Make sure to memorize it. I "
      "will quiz you about the {t} afterwards.\n{context}\n",
      "t", tv);
  std::string qry = substitute(
      "What are all the special magic {t} for {query} mentioned in the provided text?", "t", tv);
  std::string ans =
      substitute(" The special magic {t} for {query} mentioned in the provided text are", "t", tv);
  PromptPair p;
  if (faithful) {
    // RULER rewrites the whole assembled prompt, chat header included ("You is a helpful ...").
    p.context = f.prefix + ctx;
    p.query = qry + f.suffix + ans;
    if (single) {
      p.context = singular_template(p.context);
      p.query = singular_template(p.query);
    }
  } else {
    if (single) {
      ctx = singular_template(ctx);
      qry = singular_template(qry);
      ans = singular_template(ans);
    }
    p.context = f.prefix + ctx;
    p.query = qry + f.suffix + ans;
  }
  p.context = substitute(p.context, "context", haystack);
  p.query = substitute(p.query, "query", query_keys);
  return p;
}

NiahContent niah_content(const NiahSpec& s, int64_t n, Rng& rng,
                         const std::vector<std::string>* words,
                         const std::vector<std::string>* essay_words) {
  NiahContent c;
  const int n_keys = std::max(s.k, s.q);
  std::vector<std::string> keys;
  std::vector<std::vector<std::string>> values;
  for (int i = 0; i < n_keys; ++i) {
    keys.push_back(random_value(s.key, rng, words));
    values.emplace_back();
    for (int j = 0; j < s.v; ++j) {
      values.back().push_back(random_value(s.value, rng, words));
      c.needles.push_back(niah_needle(s.value, keys.back(), values.back().back()));
    }
  }
  fixed_shuffle(c.needles);
  const int64_t n_needles = static_cast<int64_t>(c.needles.size());

  if (s.haystack == HK::Essay) {
    SA_CHECK(essay_words != nullptr && n <= static_cast<int64_t>(essay_words->size()),
             "the essay haystack has too few words");
    const std::vector<std::string> head(essay_words->begin(), essay_words->begin() + n);
    const std::vector<std::string> sents = split_sentences(join(head, " "));
    const int64_t ns = static_cast<int64_t>(sents.size());
    c.n_parts = ns;
    for (int64_t i : rng.sample(40, n_needles)) c.depths.push_back(kNiahDepths[i]);
    for (int d : c.depths) c.positions.push_back(ns * d / 100);
    std::sort(c.positions.begin(), c.positions.end());
    // Chunks of sentences between the insertion points, a needle after each chunk but the last;
    // empty chunks stay (RULER's depth 0 gives a leading space).
    std::vector<std::string> parts;
    int64_t last = 0;
    for (int64_t i = 0; i <= n_needles; ++i) {
      const int64_t next = i < n_needles ? c.positions[i] : ns;
      parts.push_back(
          join(std::vector<std::string>(sents.begin() + last, sents.begin() + next), " "));
      if (i < n_needles) parts.push_back(c.needles[i]);
      last = next;
    }
    c.haystack = join(parts, " ");
  } else {
    std::vector<std::string> lines;
    lines.reserve(static_cast<size_t>(n + n_needles));
    for (int64_t i = 0; i < n; ++i) {
      if (s.haystack == HK::Repeat) {
        lines.emplace_back(kNoiseUnit);
      } else {  // distractor needles of the same types
        const std::string key = random_value(s.key, rng, words);
        lines.push_back(niah_needle(s.value, key, random_value(s.value, rng, words)));
      }
    }
    c.n_parts = n;
    c.positions = rng.sample(n, n_needles);
    std::sort(c.positions.rbegin(), c.positions.rend());
    // Inserting at descending indexes, as RULER does, puts the needles in the text in reverse.
    for (int64_t i = 0; i < n_needles; ++i) {
      lines.insert(lines.begin() + c.positions[i], c.needles[i]);
    }
    c.haystack = join(lines, "\n");
  }

  for (int64_t i : rng.sample(n_keys, s.q)) {
    c.queried_keys.push_back(keys[i]);
    for (const std::string& v : values[i]) c.refs.push_back(v);
  }
  return c;
}

}  // namespace starattn::eval
