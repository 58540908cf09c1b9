// RULER's aggregation tasks: common words extraction (cwe) and frequent words extraction (fwe)
// (Star Attention's ruler/data/synthetic/{common,freq}_words_extraction.py).
#include <algorithm>
#include <cmath>
#include <numbers>
#include <set>

#include "eval/task_impl.h"
#include "eval/text.h"
#include "starattn/error.h"

namespace starattn::eval {
namespace {

constexpr const char* kCweCtx =
    "Below is a numbered list of words. In these words, some appear more often than others. "
    "Memorize the ones that appear most often.\n{context}\n";
constexpr const char* kCweQuery = "Question: What are the 10 most common words in the above list?";
constexpr const char* kCweAnswer =
    " Answer: The top 10 words that appear most often in the list are:";
constexpr int kCommon = 10;

constexpr const char* kFweCtx =
    "Read the following coded text and track the frequency of each coded word. Find the three "
    "most frequently appeared coded words. {context}\n";
constexpr const char* kFweQuery =
    "Question: Do not provide any explanation. Please ignore the dots '....'. What are the three "
    "most frequently appeared words in the above coded text?";
constexpr const char* kFweAnswer =
    " Answer: According to the coded text above, the three most frequently appeared words are:";

class CweTask : public Task {
 public:
  CweTask(const TaskEnv& env, int64_t length) : Task(env, length) {
    name = "cwe";
    sizing_tokens = max_new_tokens = 120;
    inc = 10;
    min_units = kCommon + 1;
    max_units = static_cast<int64_t>(env.words().size());
    if (length < 4096) {
      ex_ = {20, 3, 1};
      real_ = {6, 1};
    } else {
      ex_ = {40, 10, 3};
      // Star Attention's config repeats 300/30 times; that list alone is over 12K tokens, so the
      // default keeps RULER's own 30/3, which fits every length from 4K up.
      real_ = env.faithful ? Repeats{300, 30} : Repeats{30, 3};
      if (env.faithful) {
        too_short_hint =
            " (--faithful repeats the common words 300 times, as Star Attention's "
            "config does; that needs more than 12K tokens)";
      }
    }
  }

  Generated gen(int64_t n, Rng& rng) const override {
    const std::vector<std::string>& vocab = env_.words();
    const CweList ex = cwe_list(vocab, ex_.words, ex_.common, ex_.uncommon, rng);
    const CweList real = cwe_list(vocab, n, real_.common, real_.uncommon, rng);
    return {
        render_cwe(env_.format, numbered(ex.list), ex.common, numbered(real.list), env_.faithful),
        real.common};
  }

 private:
  struct Example {
    int64_t words;
    int common, uncommon;
  };
  struct Repeats {
    int common, uncommon;
  };
  Example ex_{};
  Repeats real_{};
};

class FweTask : public Task {
 public:
  FweTask(const TaskEnv& env, int64_t length) : Task(env, length) {
    name = "fwe";
    vocab_size_ = length / 50;
    SA_CHECK(vocab_size_ >= 8, "fwe needs a length of at least 400 tokens, got ", length);
    max_new_tokens = 120;
    // RULER sizes fwe with 50 answer tokens (constants.py) but generates 120
    // (synthetic_inference_config.yaml); by default we
    // reserve what is generated, so a sample always fits the model's context.
    sizing_tokens = env.faithful ? 50 : 120;
    inc = env.faithful ? std::max<int64_t>(1, length / 32) : std::max<int64_t>(1, length / 256);
    min_units = 64;  // enough words that the ranks 2-4 answers appear at all
  }

  Generated gen(int64_t n, Rng& rng) const override {
    const FweText t = fwe_text(vocab_size_, n, rng);
    return {render_fwe(env_.format, join(t.words, " ")),
            std::vector<std::string>(t.vocab.begin() + 1, t.vocab.begin() + 4)};
  }

  // Faithful: RULER grows N from L/6 in steps of L/32 while the context alone has fewer than L
  // tokens, then steps back once; samples may exceed L by the query and the answer.
  int64_t find_units(Rng& rng) const override {
    if (!env_.faithful) return Task::find_units(rng);
    int64_t n = std::max(length_ / 6, min_units);
    while (tokens(gen(n, rng).text.context) < length_) n += inc;
    return std::max(n - inc, min_units);
  }
  bool fits(const Sample& s) const override {
    if (!env_.faithful) return Task::fits(s);
    return static_cast<int64_t>(s.context_ids.size()) <= length_;
  }

 private:
  int64_t vocab_size_ = 0;
};

}  // namespace

std::unique_ptr<Task> make_cwe_task(const TaskEnv& env, int64_t length) {
  return std::make_unique<CweTask>(env, length);
}
std::unique_ptr<Task> make_fwe_task(const TaskEnv& env, int64_t length) {
  return std::make_unique<FweTask>(env, length);
}

CweList cwe_list(const std::vector<std::string>& vocab, int64_t n_words, int common_repeats,
                 int uncommon_repeats, Rng& rng) {
  SA_CHECK(n_words > kCommon && n_words <= static_cast<int64_t>(vocab.size()), "cwe: cannot draw ",
           n_words, " words from a list of ", vocab.size());
  CweList c;
  std::vector<std::string> ws;
  for (int64_t i : rng.sample(static_cast<int64_t>(vocab.size()), n_words)) ws.push_back(vocab[i]);
  c.common.assign(ws.begin(), ws.begin() + kCommon);
  // Python's list repetition: the whole group again and again, then one fixed shuffle.
  for (int r = 0; r < common_repeats; ++r)
    c.list.insert(c.list.end(), c.common.begin(), c.common.end());
  for (int r = 0; r < uncommon_repeats; ++r)
    c.list.insert(c.list.end(), ws.begin() + kCommon, ws.end());
  fixed_shuffle(c.list);
  return c;
}

std::string numbered(const std::vector<std::string>& words) {
  std::string out;
  for (size_t i = 0; i < words.size(); ++i) {
    if (i) out.push_back(' ');
    out += std::to_string(i + 1) + ". " + words[i];
  }
  return out;
}

PromptPair render_cwe(const PromptFormat& f, std::string_view example_list,
                      const std::vector<std::string>& example_answers, std::string_view list,
                      bool faithful) {
  const std::string query = std::string(kCweQuery) + f.suffix + kCweAnswer;
  const std::string ex_turn = substitute(kCweCtx, "context", example_list) + query;
  const std::string real_ctx = substitute(kCweCtx, "context", list);
  PromptPair p;
  if (faithful) {
    // RULER renders the example as a whole prompt of its own, answer glued to "are:", then a
    // newline and the real prompt with its chat header again.
    p.context = f.prefix + ex_turn + numbered(example_answers) + "\n" + f.prefix + real_ctx;
  } else {
    p.context = f.prefix + ex_turn + " " + numbered(example_answers) + f.turn_end + real_ctx;
  }
  p.query = query;
  return p;
}

FweText fwe_text(int64_t vocab_size, int64_t n_words, Rng& rng) {
  FweText t;
  std::set<std::string> vocab;
  while (static_cast<int64_t>(vocab.size()) < vocab_size) {
    std::string w;
    for (int i = 0; i < 6; ++i) w.push_back(static_cast<char>('a' + rng.below(26)));
    vocab.insert(w);
  }
  t.vocab.assign(vocab.begin(), vocab.end());  // sorted, then RULER's fixed shuffle
  fixed_shuffle(t.vocab);
  t.vocab[0] = "...";  // the most frequent "word" is noise
  // Zipf counts: floor(N * k^-alpha / zeta(alpha)), alpha = 2, zeta(2) = pi^2 / 6.
  const double zeta2 = std::numbers::pi * std::numbers::pi / 6.0;
  for (int64_t k = 1; k <= vocab_size; ++k) {
    const auto count = static_cast<int64_t>(static_cast<double>(n_words) *
                                            std::pow(static_cast<double>(k), -2.0) / zeta2);
    for (int64_t i = 0; i < count; ++i) t.words.push_back(t.vocab[k - 1]);
  }
  fixed_shuffle(t.words);
  return t;
}

PromptPair render_fwe(const PromptFormat& f, std::string_view coded_text) {
  return {f.prefix + substitute(kFweCtx, "context", coded_text),
          std::string(kFweQuery) + f.suffix + kFweAnswer};
}

}  // namespace starattn::eval
