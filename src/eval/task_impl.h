// Inside the tasks: the sizing interface every task implements, and each task's content and
// rendering functions, exposed so tests/eval_test.cpp and tests/babilong_test.cpp can check
// templates, needles and counts.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "eval/rng.h"
#include "eval/tasks.h"

namespace starattn::eval {

struct PromptPair {
  std::string context, query;
};

struct Generated {
  PromptPair text;
  std::vector<std::string> refs;
};

// One task at one target length. gen(n) builds a sample with n haystack units; the sizing finds the
// largest n that fits, as RULER does (ruler/data/synthetic/niah.py and the other generators).
class Task {
 public:
  Task(const TaskEnv& env, int64_t length) : env_(env), length_(length) {}
  virtual ~Task() = default;
  virtual Generated gen(int64_t n, Rng& rng) const = 0;
  // The unit count for every sample: the largest n whose probe passes RULER's test
  // ntok(context + query + " " + answers) + sizing_tokens <= L (a binary search, as NVIDIA/RULER's
  // newer generators do, where Star Attention's copy searches linearly).
  virtual int64_t find_units(Rng& rng) const;
  // RULER's per-sample test: tokens fed + sizing_tokens <= L.
  virtual bool fits(const Sample& s) const;

  int64_t inc = 1;        // the step of the per-sample shrink loop
  int64_t min_units = 1;  // below this the task cannot be built
  int64_t max_units = 0;  // 0 = no limit; else the source runs out here
  int sizing_tokens = 0, max_new_tokens = 0;
  std::string name;
  std::string too_short_hint;  // appended to the error when even min_units does not fit

 protected:
  int64_t tokens(const std::string& text) const;  // as a context
  const TaskEnv& env_;
  int64_t length_;
};

std::unique_ptr<Task> make_niah_task(const std::string& name, const TaskEnv& env, int64_t length);
std::unique_ptr<Task> make_vt_task(const TaskEnv& env, int64_t length);
std::unique_ptr<Task> make_cwe_task(const TaskEnv& env, int64_t length);
std::unique_ptr<Task> make_fwe_task(const TaskEnv& env, int64_t length);
std::unique_ptr<Task> make_qa_task(const std::string& name, const TaskEnv& env, int64_t length);

// Python's str.replace chain RULER applies to single-needle templates.
std::string singular_template(std::string s);

// ---- NIAH (niah.cpp) ---------------------------------------------------------------------------
enum class HaystackKind { Repeat, Essay, Needle };
enum class ValueKind { Words, Numbers, Uuids };
struct NiahSpec {
  const char* name;
  HaystackKind haystack;
  ValueKind key, value;
  int k, v, q;  // keys (needles of distinct keys), values per key, keys queried
};
const NiahSpec* find_niah_spec(std::string_view name);  // nullptr for other tasks
const char* value_kind_plural(ValueKind k);             // "words", "numbers", "uuids"

// 40 depths (percent) RULER places essay needles at: round(linspace(0, 100, 40)).
extern const int kNiahDepths[40];

std::string niah_needle(ValueKind value, std::string_view key, std::string_view val);
std::string random_value(ValueKind kind, Rng& rng, const std::vector<std::string>* words);
std::string random_uuid(Rng& rng);  // version 4, lowercase 8-4-4-4-12
// "k1", "k1, and k2", "k1, k2, k3, and k4" (RULER's query key list).
std::string join_keys(const std::vector<std::string>& keys);
PromptPair render_niah(const PromptFormat& f, const NiahSpec& s, std::string_view haystack,
                       std::string_view query_keys, bool faithful);

struct NiahContent {
  std::string haystack;
  std::vector<std::string> needles;  // after RULER's fixed shuffle
  std::vector<std::string> queried_keys, refs;
  // Line haystacks: the line index each needle was inserted at, in insertion order (descending).
  // Essay: the sentence index of each needle, ascending, and the depth (percent) it came from.
  std::vector<int64_t> positions;
  std::vector<int> depths;
  int64_t n_parts = 0;  // lines or sentences of the haystack without needles
};
NiahContent niah_content(const NiahSpec& s, int64_t n, Rng& rng,
                         const std::vector<std::string>* words,
                         const std::vector<std::string>* essay_words);

// ---- vt (vt.cpp) -------------------------------------------------------------------------------
struct VtChain {
  std::vector<std::string> names;  // 5 distinct names, in assignment order
  std::string value;               // 5 digits
  std::vector<std::string> items;  // "VAR N0 = value", "VAR N1 = VAR N0 ", ...
};
VtChain vt_chain(Rng& rng, int name_length);
// n noise lines with the chain's items inserted in order at random places.
std::string vt_noise_context(const VtChain& c, int64_t n, Rng& rng);
// The worked example: its text up to the answer, then its names.
std::string render_vt_example(const PromptFormat& f, std::string_view context,
                              std::string_view value, const std::vector<std::string>& names,
                              bool faithful);
PromptPair render_vt(const PromptFormat& f, std::string_view example, std::string_view context,
                     std::string_view value, bool faithful);

// ---- cwe, fwe (words_tasks.cpp) ----------------------------------------------------------------
struct CweList {
  std::vector<std::string> common;  // the 10 answers
  std::vector<std::string> list;    // every entry in order
};
CweList cwe_list(const std::vector<std::string>& vocab, int64_t n_words, int common_repeats,
                 int uncommon_repeats, Rng& rng);
std::string numbered(const std::vector<std::string>& words);  // "1. a 2. b"
PromptPair render_cwe(const PromptFormat& f, std::string_view example_list,
                      const std::vector<std::string>& example_answers, std::string_view list,
                      bool faithful);

struct FweText {
  std::vector<std::string> vocab;  // vocab[0] == "..." (noise); answers are vocab[1..3]
  std::vector<std::string> words;  // the coded text, in order
};
FweText fwe_text(int64_t vocab_size, int64_t n_words, Rng& rng);
PromptPair render_fwe(const PromptFormat& f, std::string_view coded_text);

// ---- BABILong-style qa1-qa3 (babilong.cpp) ----------------------------------------------------
struct QaSpec {
  const char* name;  // "qa1"
  int supporting;    // facts the answer needs: 1 (a move), 2 (+ a pick-up), 3 (+ an earlier room)
  int n_facts;       // facts per story, distractors included
};
const QaSpec* find_qa_spec(std::string_view name);  // nullptr for other tasks

// bAbI's cast.
inline constexpr std::array<const char*, 4> kQaPeople = {"Mary", "John", "Daniel", "Sandra"};
inline constexpr std::array<const char*, 6> kQaRooms = {"bathroom", "hallway", "garden",
                                                        "office",   "bedroom", "kitchen"};
inline constexpr std::array<const char*, 3> kQaObjects = {"football", "apple", "milk"};

struct QaStory {
  std::vector<std::string> facts;  // one sentence each, in story order
  std::string question;            // "Where is Mary?"
  std::string answer_lead;         // "The most recent location of Mary is" (the model continues)
  std::string answer;              // the room, e.g. "bathroom"
};
// A random story whose answer follows from s.supporting of its facts: qa1 asks where a person who
// moved at least twice is now; qa2 where an object is that has been carried out of the room it was
// taken in; qa3 which room an object was in before the last room it reached (visited once, after
// at least two others).
QaStory qa_story(const QaSpec& s, Rng& rng);

struct QaContent {
  QaStory story;
  std::string haystack;            // prose sentences and facts joined by single spaces
  std::vector<int64_t> positions;  // fact i follows positions[i] prose sentences (ascending)
  int64_t n_parts = 0;             // prose sentences kept
};
// The first n essay words split into sentences (an unfinished last one dropped), with the story's
// facts in order at random sentence boundaries between depth_lo and depth_hi percent of them.
QaContent qa_content(const QaSpec& s, int64_t n, Rng& rng,
                     const std::vector<std::string>& essay_words, int depth_lo, int depth_hi);
PromptPair render_qa(const PromptFormat& f, const QaSpec& s, std::string_view haystack,
                     const QaStory& story);

}  // namespace starattn::eval
