// The tasks of `starattn eval`: the RULER-style ones (ruler/data/synthetic/): 8
// needle-in-a-haystack variants, variable tracking (vt), common words (cwe) and frequent words
// (fwe); and the BABILong-style qa1-qa3 (bAbI-like facts in the essay haystack, babilong.cpp). A
// sample is sized to a target token length L with the model's own tokenizer and chat template, and
// split into the context (phase 1) and the query (phase 2) exactly where RULER splits it: the query
// is the question, the end of the user turn, the assistant header and the answer prefix the model
// continues.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "eval/prompt_format.h"
#include "eval/sources.h"
#include "tokenizer/tokenizer.h"

namespace starattn::eval {

struct Sample {
  std::string task;
  int64_t length = 0;  // the target L, tokens
  int64_t index = 0;   // 0-based sample number within (task, length)
  std::string context, query;
  std::vector<int> context_ids, query_ids;  // what the engine is fed
  std::vector<std::string> refs;            // the answers, scored by string_match_all
  int max_new_tokens = 0;                   // generation limit (RULER's inference config)
  int sizing_tokens = 0;                    // tokens reserved for the answer when sizing
  int64_t units = 0;  // haystack units used: lines, words, noise lines or list words
  std::string id() const {
    return task + "/" + std::to_string(length) + "/" + std::to_string(index);
  }
};

struct TaskEnv {
  const Tokenizer* tok = nullptr;
  PromptFormat format;
  // Reproduce Star Attention's RULER code quirks (docs/ACCURACY.md lists them): "You is a helpful
  // ..." in the single-needle prompts, cwe's worked example as a second prompt with "are:1.", vt's
  // example query without "above.", cwe repeats 300/30 at L >= 4096, fwe sized from the context
  // alone. Off: the same tasks, with the example turns rendered as proper chat turns.
  bool faithful = false;
  uint64_t seed = 42;
  // Loaded on first use, so a task list that needs no word list or prose needs no package.
  std::function<const std::vector<std::string>&()> words;
  std::function<const Haystack&()> essay;
  // qa1-qa3: the facts go between these depths of the haystack (percent of its sentences).
  int fact_depth_lo = 0, fact_depth_hi = 100;
};

// The RULER-style tasks in RULER's order, then qa1, qa2, qa3.
const std::vector<std::string>& all_task_names();
// "niah_single_1,vt", "all", "ruler" (the first 11) or "babilong" (qa1-qa3), mixed freely;
// throws Error naming an unknown task.
std::vector<std::string> parse_task_list(const std::string& csv);
bool task_needs_words(const std::string& task);
bool task_needs_essay(const std::string& task);

// Token ids as the engine gets them: the context with BOS when the model adds one and the text
// does not start with it, the query without.
std::vector<int> context_ids(const Tokenizer& tok, const std::string& text);
std::vector<int> query_ids(const Tokenizer& tok, const std::string& text);

class Task;

// Makes samples; deterministic in (env.seed, task, length, index). Sizes each (task, length) once.
class SampleMaker {
 public:
  explicit SampleMaker(TaskEnv env);
  ~SampleMaker();
  SampleMaker(const SampleMaker&) = delete;
  SampleMaker& operator=(const SampleMaker&) = delete;
  Sample make(const std::string& task, int64_t length, int64_t index);

 private:
  struct Sized;
  Sized& sized(const std::string& task, int64_t length);
  TaskEnv env_;
  std::vector<std::unique_ptr<Sized>> cache_;
};

}  // namespace starattn::eval
