// `starattn eval`'s sample generator and scorer (src/eval): rendered templates against the strings
// of RULER's task specs (Star Attention's RULER code, 'llama3' prompt), needle counts,
// order and depth, the vt chain, cwe/fwe counts, the metric, sizing to the target length, the
// offline sources and the result files. No model is needed except where a test says it skips.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "error_of.h"
#include "eval/method.h"
#include "eval/metric.h"
#include "eval/results.h"
#include "eval/rng.h"
#include "eval/task_impl.h"
#include "eval/text.h"
#include "model/gguf.h"
#include "starattn/error.h"
#include "test_util.h"

namespace starattn::eval {
namespace {

namespace fs = std::filesystem;

// Star Attention's 'llama3' template (ruler/data/template.py), cut where the task text goes.
const std::string kPre =
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful "
    "assistant.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n";
const std::string kSuf = "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";

using test::error_of;

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
  return n;
}

// Made-up words ("bakodu", ...) and prose, so no test depends on an installed package.
std::vector<std::string> fake_words(size_t n) {
  const char* cons = "bdfgklmnprstvz";
  const char* vow = "aeiou";
  std::vector<std::string> out;
  Rng r(7);
  std::set<std::string> seen;
  while (out.size() < n) {
    std::string w;
    const int syl = 2 + static_cast<int>(r.below(2));
    for (int i = 0; i < syl; ++i) {
      w += cons[r.below(14)];
      w += vow[r.below(5)];
    }
    if (seen.insert(w).second) out.push_back(w);
  }
  return out;
}

Haystack fake_essay(size_t n_words) {
  const std::vector<std::string> vocab = fake_words(500);
  Rng r(11);
  Haystack h{"fake", {}};
  while (h.words.size() < n_words) {
    const int len = 4 + static_cast<int>(r.below(12));
    for (int i = 0; i < len; ++i) {
      std::string w = r.choice(vocab);
      if (i == 0) w[0] = static_cast<char>(w[0] - 'a' + 'A');
      if (i + 1 == len) w += '.';
      h.words.push_back(w);
    }
  }
  return h;
}

const Tokenizer& fixture_tokenizer() {
  static const Tokenizer t = Tokenizer::from_hf_json(
      std::string(STARATTN_SOURCE_DIR) + "/tests/fixtures/tokenizer/llama3_tokenizer.json",
      std::string(STARATTN_SOURCE_DIR) + "/tests/fixtures/tokenizer/llama3_tokenizer_config.json");
  return t;
}

TaskEnv fake_env(const Tokenizer& tok, bool faithful) {
  static const std::vector<std::string> words = fake_words(3000);
  static const Haystack essay = fake_essay(40000);
  TaskEnv env;
  env.tok = &tok;
  env.format = PromptFormat::from_chat(ChatTemplate::for_tokenizer(tok), "");
  env.faithful = faithful;
  env.words = []() -> const std::vector<std::string>& { return words; };
  env.essay = []() -> const Haystack& { return essay; };
  return env;
}

// ---- templates
// -----------------------------------------------------------------------------------

TEST(EvalTemplate, PromptFormats) {
  const PromptFormat l3 = PromptFormat::sa_llama3();
  EXPECT_EQ(l3.prefix, kPre);
  EXPECT_EQ(l3.suffix, kSuf);
  EXPECT_EQ(l3.turn_end, "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n");
  // ChatML with a default system prompt, as SmolLM2's template has.
  const PromptFormat ml = PromptFormat::from_chat(
      ChatTemplate::parse("{% for m in messages %}{% if loop.first and m['role'] != 'system' %}"
                          "{{ '<|im_start|>system\nBe nice.<|im_end|>\n' }}{% endif %}"
                          "{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}"
                          "{% endfor %}{% if add_generation_prompt %}"
                          "{{ '<|im_start|>assistant\n' }}{% endif %}",
                          "<|im_start|>", "<|im_end|>"),
      "");
  EXPECT_EQ(ml.prefix, "<|im_start|>system\nBe nice.<|im_end|>\n<|im_start|>user\n");
  EXPECT_EQ(ml.suffix, "<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(ml.turn_end, "<|im_end|>\n<|im_start|>user\n");
}

TEST(EvalTemplate, NiahSingleFaithfulMatchesRuler) {
  // As Star Attention's niah.py renders it, verbatim, including "You is a helpful assistant.".
  const PromptPair p = render_niah(PromptFormat::sa_llama3(), *find_niah_spec("niah_single_1"),
                                   "HAYSTACK", "KEY", /*faithful=*/true);
  EXPECT_EQ(
      p.context,
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou is a helpful "
      "assistant.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nA special magic number "
      "is hidden within the following text. Make sure to memorize it. I will quiz you about "
      "the number afterwards.\nHAYSTACK\n");
  EXPECT_EQ(p.query,
            "What is the special magic number for KEY mentioned in the provided "
            "text?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n The special magic "
            "number for KEY mentioned in the provided text is");
  const PromptPair u =
      render_niah(PromptFormat::sa_llama3(), *find_niah_spec("niah_multikey_3"), "H", "K", true);
  EXPECT_NE(u.context.find("A special magic uuid is hidden"), std::string::npos);
  EXPECT_NE(u.query.find("What is the special magic uuid for K mentioned"), std::string::npos);
}

TEST(EvalTemplate, NiahSingleDefaultKeepsTheSystemPrompt) {
  const PromptPair p = render_niah(PromptFormat::sa_llama3(), *find_niah_spec("niah_single_2"), "H",
                                   "K", /*faithful=*/false);
  EXPECT_EQ(p.context, kPre +
                           "A special magic number is hidden within the following text. Make sure "
                           "to memorize it. I will quiz you about the number afterwards.\nH\n");
  EXPECT_EQ(p.query, "What is the special magic number for K mentioned in the provided text?" +
                         kSuf +
                         " The special magic number for K mentioned in the provided text is");
}

TEST(EvalTemplate, NiahMulti) {
  for (const char* task : {"niah_multivalue", "niah_multiquery"}) {
    for (bool faithful : {false, true}) {
      const PromptPair p = render_niah(PromptFormat::sa_llama3(), *find_niah_spec(task), "H",
                                       "k1, k2, and k3", faithful);
      EXPECT_EQ(p.context, kPre +
                               "Some special magic numbers are hidden within the following text. "
                               "Make sure to memorize it. I will quiz you about the numbers "
                               "afterwards.\nH\n");
      EXPECT_EQ(p.query,
                "What are all the special magic numbers for k1, k2, and k3 mentioned in the "
                "provided text?" +
                    kSuf +
                    " The special magic numbers for k1, k2, and k3 mentioned in the provided "
                    "text are");
    }
  }
  EXPECT_EQ(join_keys({"a"}), "a");
  EXPECT_EQ(join_keys({"a", "b", "c", "d"}), "a, b, c, and d");
  EXPECT_EQ(niah_needle(ValueKind::Numbers, "k-w", "1234567"),
            "One of the special magic numbers for k-w is: 1234567.");
  EXPECT_EQ(niah_needle(ValueKind::Uuids, "x", "y"), "One of the special magic uuids for x is: y.");
}

TEST(EvalTemplate, VtFaithfulMatchesRuler) {
  const PromptFormat f = PromptFormat::sa_llama3();
  const std::string ex =
      render_vt_example(f, "NOISE", "12345", {"AAA", "BBB", "CCC", "DDD", "EEE"}, true);
  // As variable_tracking.py renders it: template whitespace collapsed, "above." lost, two spaces
  // before the names.
  EXPECT_EQ(ex,
            "Memorize and track the chain(s) of variable assignment hidden in the following text. "
            "NOISE Question: Find all variables that are assigned the value 12345 in the text "
            "Answer: According to the chain(s) of variable assignment in the text above, 5 "
            "variables are assgined the value 12345, they are:  AAA BBB CCC DDD EEE\n\n");
  const PromptPair p = render_vt(f, "EX", "REAL", "54321", true);
  EXPECT_EQ(p.context, kPre +
                           " EX\n\nMemorize and track the chain(s) of variable assignment hidden "
                           "in the following text.\n\nREAL\n");
  EXPECT_EQ(p.query,
            "Question: Find all variables that are assigned the value 54321 in the text above." +
                kSuf +
                " Answer: According to the chain(s) of variable assignment in the text above, 5 "
                "variables are assgined the value 54321, they are: ");
}

TEST(EvalTemplate, VtDefaultExampleIsAnEarlierTurn) {
  const PromptFormat f = PromptFormat::sa_llama3();
  const std::string ex = render_vt_example(f, "N", "12345", {"A", "B", "C", "D", "E"}, false);
  EXPECT_EQ(
      ex,
      "Memorize and track the chain(s) of variable assignment hidden in the following "
      "text.\n\nN\nQuestion: Find all variables that are assigned the value 12345 in the text "
      "above." +
          kSuf +
          " Answer: According to the chain(s) of variable assignment in the text above, 5 "
          "variables are assgined the value 12345, they are: A B C D E" +
          f.turn_end);
  EXPECT_EQ(render_vt(f, "EX|", "R", "1", false).context,
            kPre +
                "EX|Memorize and track the chain(s) of variable assignment hidden in the following "
                "text.\n\nR\n");
}

TEST(EvalTemplate, Cwe) {
  const PromptFormat f = PromptFormat::sa_llama3();
  std::vector<std::string> ans;
  for (char c = '0'; c <= '9'; ++c) ans.push_back(std::string{'w', c});
  EXPECT_EQ(numbered({"a", "b", "c"}), "1. a 2. b 3. c");
  const std::string instr =
      "Below is a numbered list of words. In these words, some appear more often than others. "
      "Memorize the ones that appear most often.\n";
  const std::string q = "Question: What are the 10 most common words in the above list?" + kSuf +
                        " Answer: The top 10 words that appear most often in the list are:";
  const std::string nums = "1. w0 2. w1 3. w2 4. w3 5. w4 6. w5 7. w6 8. w7 9. w8 10. w9";
  // As common_words_extraction.py renders it: the example is a whole prompt, "are:1." glued, a
  // second <|begin_of_text|>.
  const PromptPair p = render_cwe(f, "EX", ans, "LIST", true);
  EXPECT_EQ(p.context, kPre + instr + "EX\n" + q + nums + "\n" + kPre + instr + "LIST\n");
  EXPECT_EQ(p.query, q);
  EXPECT_EQ(count(p.context, "<|begin_of_text|>"), 2u);
  const PromptPair d = render_cwe(f, "EX", ans, "LIST", false);
  EXPECT_EQ(d.context, kPre + instr + "EX\n" + q + " " + nums + f.turn_end + instr + "LIST\n");
}

TEST(EvalTemplate, Fwe) {
  const PromptPair p = render_fwe(PromptFormat::sa_llama3(), "... abcdef");
  EXPECT_EQ(p.context,
            kPre +
                "Read the following coded text and track the frequency of each coded "
                "word. Find the three most frequently appeared coded words. ... abcdef\n");
  EXPECT_EQ(p.query,
            "Question: Do not provide any explanation. Please ignore the dots '....'. What are the "
            "three most frequently appeared words in the above coded text?" +
                kSuf +
                " Answer: According to the coded text above, the three most frequently appeared "
                "words are:");
}

// ---- content
// -------------------------------------------------------------------------------------

TEST(EvalNiah, NeedleCountsOrderAndDepth) {
  const std::vector<std::string> words = fake_words(2000);
  const Haystack essay = fake_essay(5000);
  for (const std::string& task : all_task_names()) {
    const NiahSpec* s = find_niah_spec(task);
    if (!s) continue;
    for (int trial = 0; trial < 20; ++trial) {
      SCOPED_TRACE(task + " trial " + std::to_string(trial));
      Rng rng = Rng::for_stream(1, task, 0, trial);
      const int64_t n = s->haystack == HaystackKind::Essay ? 3000 : 40;
      const NiahContent c = niah_content(*s, n, rng, &words, &essay.words);
      const size_t n_needles = static_cast<size_t>(std::max(s->k, s->q) * s->v);
      ASSERT_EQ(c.needles.size(), n_needles);
      EXPECT_EQ(c.refs.size(), static_cast<size_t>(s->q * s->v));
      EXPECT_EQ(c.queried_keys.size(), static_cast<size_t>(s->q));
      for (const std::string& nd : c.needles) EXPECT_EQ(count(c.haystack, nd), 1u) << nd;
      // Every answer sits in a needle of a queried key.
      for (const std::string& r : c.refs) {
        bool found = false;
        for (const std::string& k : c.queried_keys) {
          found = found || count(c.haystack, niah_needle(s->value, k, r)) == 1;
        }
        EXPECT_TRUE(found) << r;
      }
      std::vector<size_t> at;
      for (const std::string& nd : c.needles) at.push_back(c.haystack.find(nd));
      if (s->haystack == HaystackKind::Essay) {
        // In shuffled order, at sorted depths, each needle after positions[i] sentences.
        EXPECT_TRUE(std::is_sorted(at.begin(), at.end()));
        ASSERT_EQ(c.depths.size(), n_needles);
        for (size_t i = 0; i < n_needles; ++i) {
          EXPECT_NE(std::find(std::begin(kNiahDepths), std::end(kNiahDepths), c.depths[i]),
                    std::end(kNiahDepths));
          const std::string before = c.haystack.substr(0, at[i]);
          int64_t sents = static_cast<int64_t>(split_sentences(before).size());
          for (size_t j = 0; j < i; ++j) sents -= 1;  // earlier needles are sentences too
          EXPECT_EQ(sents, c.positions[i]);
        }
        std::vector<int64_t> want;
        for (int d : c.depths) want.push_back(c.n_parts * d / 100);
        std::sort(want.begin(), want.end());
        EXPECT_EQ(c.positions, want);
        EXPECT_EQ(c.haystack.find('\n'), std::string::npos);
      } else {
        // Inserted at descending line indexes: the needles read in reverse.
        EXPECT_TRUE(std::is_sorted(at.rbegin(), at.rend()));
        const std::vector<std::string> lines = split_ws(replace_all(c.haystack, " ", "_"));
        EXPECT_EQ(lines.size(), static_cast<size_t>(n) + n_needles);
        EXPECT_TRUE(std::is_sorted(c.positions.rbegin(), c.positions.rend()));
        const size_t expect_noise =
            s->haystack == HaystackKind::Repeat ? static_cast<size_t>(n) : 0;
        EXPECT_EQ(count(c.haystack, kNoiseUnit), expect_noise);
        if (s->haystack == HaystackKind::Needle) {
          EXPECT_EQ(count(c.haystack, "One of the special magic"),
                    static_cast<size_t>(n) + n_needles);
        }
      }
    }
  }
}

TEST(EvalNiah, Values) {
  Rng rng(3);
  for (int i = 0; i < 200; ++i) {
    const std::string u = random_uuid(rng);
    ASSERT_EQ(u.size(), 36u);
    EXPECT_EQ(u[14], '4');
    EXPECT_NE(std::string("89ab").find(u[19]), std::string::npos);
    for (int dash : {8, 13, 18, 23}) EXPECT_EQ(u[dash], '-');
    const std::string num = random_value(ValueKind::Numbers, rng, nullptr);
    EXPECT_EQ(num.size(), 7u);
    EXPECT_NE(num[0], '0');
  }
}

TEST(EvalVt, ChainOrder) {
  for (int trial = 0; trial < 50; ++trial) {
    Rng rng = Rng::for_stream(2, "vt", 0, trial);
    const VtChain c = vt_chain(rng, 5);
    ASSERT_EQ(c.names.size(), 5u);
    EXPECT_EQ(std::set<std::string>(c.names.begin(), c.names.end()).size(), 5u);
    for (const std::string& n : c.names) {
      EXPECT_EQ(n.size(), 5u);
      EXPECT_TRUE(std::all_of(n.begin(), n.end(), [](char ch) { return ch >= 'A' && ch <= 'Z'; }));
    }
    const int v = std::stoi(c.value);
    EXPECT_TRUE(v >= 10000 && v <= 99998);
    EXPECT_EQ(c.items[0], "VAR " + c.names[0] + " = " + c.value);
    for (int j = 1; j < 5; ++j)
      EXPECT_EQ(c.items[j], "VAR " + c.names[j] + " = VAR " + c.names[j - 1] + " ");
    const std::string ctx = vt_noise_context(c, 30, rng);
    EXPECT_EQ(count(ctx, kNoiseUnit), 30u);
    size_t last = 0;
    for (const std::string& it : c.items) {
      ASSERT_EQ(count(ctx, it), 1u);
      EXPECT_GE(ctx.find(it), last);
      last = ctx.find(it);
    }
  }
}

TEST(EvalWords, CweCounts) {
  const std::vector<std::string> vocab = fake_words(500);
  Rng rng(5);
  for (auto [rc, ru] : {std::pair{30, 3}, std::pair{6, 1}, std::pair{300, 30}}) {
    const CweList c = cwe_list(vocab, 60, rc, ru, rng);
    ASSERT_EQ(c.common.size(), 10u);
    EXPECT_EQ(c.list.size(), static_cast<size_t>(10 * rc + 50 * ru));
    std::map<std::string, int> n;
    for (const auto& w : c.list) ++n[w];
    EXPECT_EQ(n.size(), 60u);
    for (const auto& [w, k] : n) {
      const bool common = std::find(c.common.begin(), c.common.end(), w) != c.common.end();
      EXPECT_EQ(k, common ? rc : ru) << w;
    }
  }
}

TEST(EvalWords, FweCounts) {
  Rng rng(9);
  const int64_t vocab_size = 81, n = 2000;
  const FweText t = fwe_text(vocab_size, n, rng);
  ASSERT_EQ(t.vocab.size(), static_cast<size_t>(vocab_size));
  EXPECT_EQ(t.vocab[0], "...");
  std::map<std::string, int64_t> got;
  for (const auto& w : t.words) ++got[w];
  int64_t total = 0;
  for (int64_t k = 1; k <= vocab_size; ++k) {
    const auto want = static_cast<int64_t>(std::floor(n / (std::pow(k, 2.0) * 1.6449340668482264)));
    EXPECT_EQ(got[t.vocab[k - 1]], want) << "rank " << k;
    total += want;
    if (k > 1) {
      EXPECT_EQ(t.vocab[k - 1].size(), 6u);
    }
  }
  EXPECT_EQ(static_cast<int64_t>(t.words.size()), total);
  EXPECT_GT(got[t.vocab[3]], got[t.vocab[4]]);  // the three answers are strictly the top three
}

// ---- sizing
// --------------------------------------------------------------------------------------

void expect_samples_fit(const TaskEnv& env, int64_t length, int n,
                        const std::vector<std::string>& tasks = all_task_names()) {
  SampleMaker maker(env);
  for (const std::string& task : tasks) {
    for (int i = 0; i < n; ++i) {
      const Sample s = maker.make(task, length, i);
      SCOPED_TRACE(s.id());
      const int64_t fed = static_cast<int64_t>(s.context_ids.size() + s.query_ids.size());
      if (env.faithful && task == "fwe") {
        EXPECT_LE(static_cast<int64_t>(s.context_ids.size()), length);  // RULER's own test
      } else {
        EXPECT_LE(fed + s.sizing_tokens, length);
        EXPECT_GE(s.max_new_tokens, 1);
        EXPECT_LE(s.max_new_tokens, s.sizing_tokens);
      }
      // fwe's random vocabulary moves its length a lot; the others land close to L (RULER's own
      // shrink steps, kept by --faithful, are coarser).
      if (!env.faithful) {
        EXPECT_GE(fed + s.sizing_tokens, length * (task == "fwe" ? 6 : 8) / 10);
      }
      EXPECT_EQ(s.context_ids, context_ids(*env.tok, s.context));
      EXPECT_FALSE(s.refs.empty());
    }
  }
}

TEST(EvalSizing, EverySampleFitsTheTargetLength) {
  expect_samples_fit(fake_env(fixture_tokenizer(), false), 2048, 3);
  expect_samples_fit(fake_env(fixture_tokenizer(), false), 4096, 2);
  std::vector<std::string> no_cwe = all_task_names();
  no_cwe.erase(std::find(no_cwe.begin(), no_cwe.end(), "cwe"));
  expect_samples_fit(fake_env(fixture_tokenizer(), true), 4096, 2, no_cwe);
  // Star Attention's cwe repeats (300/30) do not fit 4K; the error says so.
  SampleMaker faithful(fake_env(fixture_tokenizer(), true));
  EXPECT_NE(error_of([&] { faithful.make("cwe", 4096, 0); }).find("300 times"), std::string::npos);
}

TEST(EvalSizing, RealTokenizerFitsAndIsDeterministic) {
  const std::string path = test::real_model_path();
  if (!fs::exists(path)) GTEST_SKIP() << "no " << path << " (run scripts/setup.sh)";
  const GgufFile f(path);
  const Tokenizer tok = Tokenizer::from_gguf(f);
  expect_samples_fit(fake_env(tok, false), 2048, 2);
  SampleMaker a(fake_env(tok, false)), b(fake_env(tok, false));
  EXPECT_EQ(a.make("niah_multiquery", 2048, 1).context, b.make("niah_multiquery", 2048, 1).context);
  EXPECT_NE(a.make("vt", 2048, 0).context, a.make("vt", 2048, 1).context);
}

TEST(EvalSizing, SameSeedSameSamples) {
  SampleMaker a(fake_env(fixture_tokenizer(), false)), b(fake_env(fixture_tokenizer(), false));
  // Order does not matter: each sample has its own stream.
  const Sample b3 = b.make("cwe", 2048, 3);
  const Sample a3 = a.make("cwe", 2048, 3);
  EXPECT_EQ(a3.context, b3.context);
  EXPECT_EQ(a3.refs, b3.refs);
  EXPECT_NE(a.make("cwe", 2048, 4).refs, a3.refs);
  TaskEnv other = fake_env(fixture_tokenizer(), false);
  other.seed = 43;
  EXPECT_NE(SampleMaker(other).make("cwe", 2048, 3).refs, a3.refs);
  EXPECT_NE(error_of([&] { a.make("niah_single_1", 100, 0); }).find("too short"),
            std::string::npos);
}

// ---- metric, helpers
// -----------------------------------------------------------------------------

TEST(EvalMetric, StringMatch) {
  EXPECT_DOUBLE_EQ(string_match_all("123 and 999", {"123", "456"}), 0.5);
  EXPECT_DOUBLE_EQ(string_match_part("123 and 999", {"123", "456"}), 1.0);
  EXPECT_DOUBLE_EQ(string_match_all("ABC-def 456", {"abc-DEF", "456"}), 1.0);
  EXPECT_DOUBLE_EQ(string_match_all("", {"x"}), 0.0);
  EXPECT_DOUBLE_EQ(string_match_part("nothing", {"x", "y"}), 0.0);
  EXPECT_DOUBLE_EQ(string_match_all("a b c", {"a", "b", "c", "d"}), 0.75);
  EXPECT_EQ(postprocess_pred("  1234567.\x01tail \n"), "1234567.\ntail");
  EXPECT_EQ(postprocess_pred("\t\x1f x \x1e"), "x");
}

TEST(EvalText, Helpers) {
  EXPECT_EQ(replace_all("are are all", "are all", "is"), "are is");
  EXPECT_EQ(singular_template("Some are all are answers"), "A is is answer");
  EXPECT_EQ(split_ws("  a\tb\n\nc "), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(split_sentences("Mr. Smith met Dr. J. Doe. They talked! \"Why?\" she asked. 3 left."),
            (std::vector<std::string>{"Mr. Smith met Dr. J. Doe.", "They talked!",
                                      "\"Why?\" she asked.", "3 left."}));
  EXPECT_EQ(split_sentences("e.g. this stays. one sentence"),
            (std::vector<std::string>{"e.g. this stays. one sentence"}));
  EXPECT_EQ(
      kjv_words_from_bible_output("Ge1:1 In the beginning.\n1Co13:4 Charity suffereth long\n"),
      (std::vector<std::string>{"In", "the", "beginning.", "Charity", "suffereth", "long"}));
}

TEST(EvalRng, DeterministicAndUniformEnough) {
  Rng a(1), b(1);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.next(), b.next());
  const std::vector<int64_t> s = a.sample(10, 10);
  EXPECT_EQ(std::set<int64_t>(s.begin(), s.end()).size(), 10u);
  const std::vector<int64_t> big = a.sample(100000, 50);
  EXPECT_EQ(std::set<int64_t>(big.begin(), big.end()).size(), 50u);
  int hist[3] = {0, 0, 0};
  for (int i = 0; i < 3000; ++i) ++hist[a.range(0, 2)];
  for (int h : hist) EXPECT_NEAR(h, 1000, 150);
  std::vector<int> x = {1, 2, 3, 4, 5, 6}, y = {7, 8, 9, 10, 11, 12};
  fixed_shuffle(x);
  fixed_shuffle(y);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(x[i] + 6, y[i]);  // one permutation per length
}

// ---- sources, tasks, results
// ---------------------------------------------------------------------

TEST(EvalSources, WordListAndHaystackFiles) {
  const std::string dir = testing::TempDir() + "/eval_test_" + std::to_string(::getpid());
  fs::create_directories(dir);
  EXPECT_NE(error_of([&] { load_word_list(dir + "/none"); }).find("wamerican"), std::string::npos);
  {
    std::ofstream f(dir + "/words");
    f << "Aaron\nab\ncan't\nverylongwordthing\n";
    for (const std::string& w : fake_words(1200)) f << w << "\n" << w << "\n";
  }
  const std::vector<std::string> w = load_word_list(dir + "/words");
  EXPECT_EQ(w.size(), 1200u);  // no capitals, apostrophes, 2- or 11+-letter words, repeats
  {
    std::ofstream f(dir + "/h.json");
    f << "{\"text\": \"" << join(fake_essay(2000).words, " ") << "\"}";
  }
  EXPECT_GE(load_text_haystack(dir + "/h.json").words.size(), 2000u);
  EXPECT_NE(error_of([&] { load_text_haystack(dir + "/none.txt"); }).find("not found"),
            std::string::npos);
  fs::remove_all(dir);
}

TEST(EvalSources, KingJamesBibleWhenInstalled) {
  if (!fs::exists("/usr/bin/bible") || !fs::exists("/usr/lib/bible.data")) {
    GTEST_SKIP() << "bible-kjv is not installed (apt-get install bible-kjv bible-kjv-text)";
  }
  const Haystack h = load_kjv_haystack();
  EXPECT_EQ(join(std::vector<std::string>(h.words.begin(), h.words.begin() + 5), " "),
            "In the beginning God created");
  EXPECT_GT(h.words.size(), 780000u);  // 820,736 words less 31,102 verse references
}

TEST(EvalTasks, Parse) {
  EXPECT_EQ(parse_task_list("all").size(), 14u);  // the 11 RULER-style tasks and qa1-qa3
  EXPECT_EQ(parse_task_list("ruler").size(), 11u);
  EXPECT_EQ(parse_task_list("vt,niah_single_1,vt"),
            (std::vector<std::string>{"vt", "niah_single_1"}));
  EXPECT_NE(error_of([] { parse_task_list("qa_1"); }).find("unknown task 'qa_1'"),
            std::string::npos);
  EXPECT_TRUE(task_needs_essay("niah_multivalue"));
  EXPECT_FALSE(task_needs_words("niah_multikey_3"));
  EXPECT_TRUE(task_needs_words("cwe"));
}

TEST(EvalMethod, SizesAndLabels) {
  MethodSpec m;  // star, B = L/4, A = B
  EXPECT_EQ(m.at_length(4096).block_size, 1024);
  EXPECT_EQ(m.at_length(4096).anchor_size, -1);  // resolved() makes it B
  EXPECT_EQ(m.label(1), "star B=L/4 A=B");
  m.anchor = "B/4";
  EXPECT_EQ(m.at_length(2048).anchor_size, 128);
  m.anchor = "0";
  EXPECT_EQ(m.at_length(2048).anchor_size, 0);
  EXPECT_EQ(m.label(4), "star B=L/4 A=0 (none)");
  m.block = "auto";
  EXPECT_EQ(m.at_length(2048).block_size, -1);
  m.anchor = "B/2";
  EXPECT_NE(error_of([&] { m.check(); }).find("needs a fixed -b"), std::string::npos);
  m.block = "L/x";
  EXPECT_NE(error_of([&] { m.check(); }).find("-b must be"), std::string::npos);
  EXPECT_EQ((MethodSpec{"ring"}).label(2), "ring (2 ranks)");
  EXPECT_EQ((MethodSpec{"dense"}).label(1), "dense");
  EXPECT_EQ(parse_lengths("2048, 4096"), (std::vector<int64_t>{2048, 4096}));
  EXPECT_NE(error_of([] { parse_lengths("4k"); }).find("not a token count"), std::string::npos);
}

TEST(EvalResults, JsonlResumeAndSummary) {
  const std::string path =
      testing::TempDir() + "/eval_results_" + std::to_string(::getpid()) + ".jsonl";
  fs::remove(path);
  auto rec = [](const std::string& task, int idx, const std::string& method, const char* attn,
                double score) {
    Record r;
    r.task = task;
    r.length = 2048;
    r.index = idx;
    r.id = task + "/2048/" + std::to_string(idx);
    r.method = method;
    r.attn = attn;
    r.fingerprint = "fp";
    r.refs = {"1"};
    r.score = score;
    r.phase1_s = 30;
    return r;
  };
  append_record(path, rec("vt", 0, "dense", "dense", 1.0));
  append_record(path, rec("vt", 1, "dense", "dense", 0.0));
  append_record(path, rec("vt", 0, "star", "star", 0.5));
  { std::ofstream(path, std::ios::app) << "{\"id\": \"cut"; }  // a run killed mid-line
  bool dropped = false;
  std::vector<Record> all = read_records(path, &dropped);
  EXPECT_TRUE(dropped);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[2].key(), "vt/2048/0|star|fp");
  append_record(path, rec("vt", 1, "star", "star", 0.0));  // cuts the partial line first
  all = read_records(path, &dropped);
  EXPECT_FALSE(dropped);
  ASSERT_EQ(all.size(), 4u);
  all.push_back(rec("cwe", 0, "dense", "dense", 0.0));  // a task only one column has
  const std::string md = summary_markdown(all);
  EXPECT_NE(md.find("| vt | 50.0 | 25.0 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| % of dense | 100% | 50% |"), std::string::npos) << md;
  EXPECT_NE(md.find("| samples per task | 1/2 | 2 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| run time | 1m 30s | 1m 00s |"), std::string::npos) << md;
  EXPECT_NE(md.find("| median s / sample | 30.0 | 30.0 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| **average** | **50.0** | **25.0** |"), std::string::npos) << md;
  EXPECT_NE(md.find("over the tasks every column has: vt."), std::string::npos) << md;
  fs::remove(path);
}

// Numbers read back from results.jsonl are range-checked: a length of 1e300 once became
// "-9223372036854775808 tokens" in the table, with exit 0.
TEST(EvalResults, NumbersFromTheFileAreChecked) {
  Record r;
  r.id = "vt/2048/0";
  r.task = "vt";
  r.length = 2048;
  r.method = "dense";
  r.attn = "dense";
  r.fingerprint = "fp";
  r.refs = {"1"};
  r.score = 1.0;
  const nlohmann::json good = to_json(r);
  EXPECT_EQ(record_from_json(good).key(), r.key());
  const std::vector<std::pair<const char*, nlohmann::json>> bad = {
      {"length", 1e300},
      {"length", 2048.5},
      {"length", 0},
      {"length", uint64_t{1} << 63},
      {"index", -1},
      {"index", int64_t{1} << 40},
      {"ranks", 0},
      {"gen_tokens", -3},
      {"context_tokens", "12"},
      {"score", 1.5},
      {"score", "high"},
      {"phase1_s", -2.0},
      {"id", 7},
      {"outputs", "x"},
      {"outputs", {1, 2}},
  };
  for (const auto& [field, value] : bad) {
    nlohmann::json j = good;
    j[field] = value;
    const std::string msg = error_of([&] { record_from_json(j); });
    EXPECT_NE(msg.find(std::string("\"") + field + "\""), std::string::npos)
        << field << " = " << value.dump() << ": " << msg;
  }
  nlohmann::json missing = good;
  missing.erase("score");
  EXPECT_NE(error_of([&] { record_from_json(missing); }).find("\"score\""), std::string::npos);
  nlohmann::json absent_optional = good;
  absent_optional.erase("ranks");
  EXPECT_EQ(record_from_json(absent_optional).ranks, 1);
}

// docs/ACCURACY.md's tables come from these checked-in results; this keeps the two in step.
TEST(EvalResults, AccuracyDocComesFromTheFixture) {
  const std::string dir = std::string(STARATTN_SOURCE_DIR) + "/tests/fixtures/eval/";
  bool dropped = true;
  const std::vector<Record> main = read_records(dir + "smollm2_2048/results.jsonl", &dropped);
  EXPECT_FALSE(dropped);
  ASSERT_EQ(main.size(), 169u);
  const std::string md = summary_markdown(main);
  EXPECT_NE(md.find("| **average** | **73.8** | **61.9** | **37.5** | **60.6** |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| % of dense | 100% | 84% | 51% | 82% |"), std::string::npos) << md;
  const std::string screen =
      summary_markdown(read_records(dir + "smollm2_1024_dense/results.jsonl"));
  EXPECT_NE(screen.find("| vt | 0.0 |"), std::string::npos) << screen;
  EXPECT_NE(screen.find("| cwe | 6.7 |"), std::string::npos) << screen;
  // The GPU runs at 2K/4K/8K, 50 samples per cell (docs/ACCURACY.md, first section).
  const std::string gpu =
      summary_markdown(read_records(dir + "smollm2_gpu_50/results.jsonl", &dropped));
  EXPECT_FALSE(dropped);
  EXPECT_NE(gpu.find("| niah_single_2 | 98.0 | 94.0 | 74.0 | 94.0 |"), std::string::npos) << gpu;
  const std::string more =
      summary_markdown(read_records(dir + "smollm2_gpu_50_more/results.jsonl", &dropped));
  EXPECT_FALSE(dropped);
  EXPECT_NE(more.find("| niah_single_1 | 94.0 | 90.0 | 40.0 | 90.0 |"), std::string::npos) << more;
  // The KV compression table (docs/ACCURACY.md): dense and star, each with bf16 and fp8 KV and
  // with the int8-grid experiment per kv head and per 32 channels.
  const std::vector<Record> fp8 = read_records(dir + "smollm2_gpu_fp8_50/results.jsonl", &dropped);
  EXPECT_FALSE(dropped);
  ASSERT_EQ(fp8.size(), 4800u);
  const std::string fp8_md = summary_markdown(fp8);
  EXPECT_NE(fp8_md.find("| dense kv=fp8 | 79.4 | 61.4 | 37.1 | 59.3 |"), std::string::npos)
      << fp8_md;
  EXPECT_NE(fp8_md.find("| star B=L/4 A=B kv=fp8 | 71.8 | 58.0 | 34.5 | 54.8 |"), std::string::npos)
      << fp8_md;
  EXPECT_NE(fp8_md.find("| dense kv=int8-grid | 80.2 | 65.5 | 38.4 | 61.4 |"), std::string::npos)
      << fp8_md;
  EXPECT_NE(fp8_md.find("| star B=L/4 A=B kv=int8-grid | 74.2 | 60.5 | 35.9 | 56.9 |"),
            std::string::npos)
      << fp8_md;
  // The same four configurations run again with the kernels of 2026-12-04.
  const std::vector<Record> rerun =
      read_records(dir + "smollm2_gpu_fp8_50_dec04/results.jsonl", &dropped);
  EXPECT_FALSE(dropped);
  ASSERT_EQ(rerun.size(), 2400u);
  const std::string rerun_md = summary_markdown(rerun);
  EXPECT_NE(rerun_md.find("| dense | 80.8 | 66.0 | 38.1 | 61.6 |"), std::string::npos) << rerun_md;
  EXPECT_NE(rerun_md.find("| dense kv=fp8 | 79.0 | 58.8 | 38.0 | 58.6 |"), std::string::npos)
      << rerun_md;
  EXPECT_NE(rerun_md.find("| star B=L/4 A=B | 73.1 | 62.1 | 36.0 | 57.1 |"), std::string::npos)
      << rerun_md;
  EXPECT_NE(rerun_md.find("| star B=L/4 A=B kv=fp8 | 71.5 | 57.9 | 35.1 | 54.8 |"),
            std::string::npos)
      << rerun_md;
}

}  // namespace
}  // namespace starattn::eval
