// BABILong-style reasoning in a haystack (qa1-qa3): a short bAbI-like story of people moving
// between rooms and carrying objects, its sentences spread in order through the prose haystack,
// and one question about the story's end state. BABILong itself takes its stories from the bAbI
// dataset and its prose from PG-19; both are downloads, so the stories are simulated here with
// bAbI's cast (4 people, 6 rooms, 3 objects) and verbs, and the prose is the essay haystack the
// needle tasks use. The prompts follow BABILong's shape (instruction, a worked example, the text
// in <context> tags, "Question: ...") with an answer prefix, as the RULER-style tasks have.
#include <algorithm>
#include <array>

#include "eval/task_impl.h"
#include "eval/text.h"
#include "starattn/error.h"

namespace starattn::eval {
namespace {

constexpr std::array<QaSpec, 3> kSpecs = {{
    {"qa1", 1, 8},
    {"qa2", 2, 12},
    {"qa3", 3, 16},
}};

// bAbI's verbs for a move, a pick-up and a drop.
constexpr std::array<const char*, 5> kMoveVerbs = {"moved to", "went to", "journeyed to",
                                                   "travelled to", "went back to"};
constexpr std::array<const char*, 4> kGetVerbs = {"picked up", "got", "grabbed", "took"};
constexpr std::array<const char*, 4> kDropVerbs = {"dropped", "put down", "discarded", "left"};

// The worked examples use places and an object outside the story's lists, so copying an example
// never scores.
constexpr const char* kInstructions[3] = {
    "I will give you a text in which facts about where some people went are hidden among "
    "unrelated sentences, and then a question about one of those people. Answer it using only "
    "those facts. If a person went to several places, the answer is the last place that person "
    "went to.\n\n<example>\nCharlie went to the porch. Alan moved to the garage. Charlie "
    "journeyed to the cellar. Where is Charlie?\nAnswer: The most recent location of Charlie is "
    "the cellar.\n</example>",
    "I will give you a text in which facts about where some people went and which objects they "
    "picked up or put down are hidden among unrelated sentences, and then a question about one "
    "object. Answer it using only those facts. An object that a person carries goes wherever that "
    "person goes; an object that a person put down stays where it was put down.\n\n<example>\n"
    "Charlie went to the porch. Charlie picked up the lamp. Alan moved to the garage. Charlie "
    "travelled to the cellar. Where is the lamp?\nAnswer: The lamp is in the cellar.\n</example>",
    "I will give you a text in which facts about where some people went and which objects they "
    "picked up or put down are hidden among unrelated sentences, and then a question about where "
    "one object was before it came to a given place. Answer it using only those facts. An object "
    "that a person carries goes wherever that person goes; an object that a person put down stays "
    "where it was put down.\n\n<example>\nAlan went to the porch. Alan took the lamp. Alan moved "
    "to the garage. Charlie went to the porch. Alan journeyed to the cellar. Where was the lamp "
    "before the cellar?\nAnswer: Before the cellar the lamp was in the garage.\n</example>",
};

// Rejection sampling: qa1 takes 1 try, qa2 1.5 and qa3 2.3 on average (at most 9 in 300 stories).
constexpr int kMaxStoryTries = 10000;

// The simulated world after each fact; -1 = not known yet.
struct World {
  std::array<int, kQaPeople.size()> at;      // each person's room
  std::array<int, kQaObjects.size()> held;   // who carries each object
  std::array<int, kQaObjects.size()> where;  // each object's room
  // The rooms each object has been in, in order, without repeats of the same room in a row.
  std::array<std::vector<int>, kQaObjects.size()> trail;
  std::array<int, kQaPeople.size()> moves;  // how many times each person moved
  World() {
    at.fill(-1);
    held.fill(-1);
    where.fill(-1);
    moves.fill(0);
  }
  void place(size_t o, int room) {
    where[o] = room;
    if (trail[o].empty() || trail[o].back() != room) trail[o].push_back(room);
  }
};

bool ends_sentence(std::string_view s) {
  while (!s.empty() &&
         (s.back() == '"' || s.back() == '\'' || s.back() == ')' || s.back() == ']')) {
    s.remove_suffix(1);
  }
  return !s.empty() && (s.back() == '.' || s.back() == '!' || s.back() == '?');
}

template <size_t N>
const char* pick(const std::array<const char*, N>& a, Rng& rng) {
  return a[rng.below(N)];
}

// One random fact, applied to w. qa1 has moves only. Otherwise a random person picks up an object
// in their room or not seen yet (a third of the time, when there is one), drops one they carry (a
// sixth of the time), or else moves.
std::string random_fact(const QaSpec& s, World& w, Rng& rng) {
  const size_t p = rng.below(kQaPeople.size());
  const std::string who = kQaPeople[p];
  std::vector<size_t> can_get, can_drop;
  if (s.supporting > 1) {
    for (size_t o = 0; o < kQaObjects.size(); ++o) {
      if (w.held[o] == static_cast<int>(p)) can_drop.push_back(o);
      // A person's room must be known before they take anything, so the object's room is too.
      if (w.at[p] >= 0 && w.held[o] < 0 && (w.where[o] < 0 || w.where[o] == w.at[p])) {
        can_get.push_back(o);
      }
    }
  }
  const uint64_t roll = rng.below(6);
  if (roll < 2 && !can_get.empty()) {
    const size_t o = can_get[rng.below(can_get.size())];
    w.held[o] = static_cast<int>(p);
    w.place(o, w.at[p]);
    return who + " " + pick(kGetVerbs, rng) + " the " + kQaObjects[o] + ".";
  }
  if (roll == 2 && !can_drop.empty()) {
    const size_t o = can_drop[rng.below(can_drop.size())];
    w.held[o] = -1;
    return who + " " + pick(kDropVerbs, rng) + " the " + kQaObjects[o] + ".";
  }
  // A move always goes somewhere else, so every move is news.
  int room = static_cast<int>(rng.below(kQaRooms.size() - (w.at[p] >= 0 ? 1 : 0)));
  if (w.at[p] >= 0 && room >= w.at[p]) ++room;
  w.at[p] = room;
  ++w.moves[p];
  for (size_t o = 0; o < kQaObjects.size(); ++o) {
    if (w.held[o] == static_cast<int>(p)) w.place(o, room);
  }
  return who + " " + pick(kMoveVerbs, rng) + " the " + kQaRooms[room] + ".";
}

class QaTask : public Task {
 public:
  QaTask(const QaSpec& s, const TaskEnv& env, int64_t length) : Task(env, length), s_(s) {
    name = s.name;
    // The answer is one room; 16 tokens hold it even when the model repeats the whole sentence,
    // and leave little room for listing other rooms (the metric is a substring test).
    sizing_tokens = max_new_tokens = 16;
    inc = 500;  // essay words, as the needle tasks
    min_units = 1;
    max_units = static_cast<int64_t>(env.essay().words.size());
    SA_CHECK(env.fact_depth_lo >= 0 && env.fact_depth_lo <= env.fact_depth_hi &&
                 env.fact_depth_hi <= 100,
             "fact depths must satisfy 0 <= lo <= hi <= 100 (percent), got ", env.fact_depth_lo,
             " and ", env.fact_depth_hi);
  }

  Generated gen(int64_t n, Rng& rng) const override {
    const QaContent c =
        qa_content(s_, n, rng, env_.essay().words, env_.fact_depth_lo, env_.fact_depth_hi);
    return {render_qa(env_.format, s_, c.haystack, c.story), {c.story.answer}};
  }

  int64_t find_units(Rng& rng) const override {
    const int64_t n = Task::find_units(rng);
    SA_CHECK(n < max_units, "the haystack ", env_.essay().name, " has only ", max_units,
             " words, too few to fill ", length_, " tokens for ", name,
             "; pass --haystack FILE with a longer text");
    return n;
  }

 private:
  const QaSpec& s_;
};

}  // namespace

const QaSpec* find_qa_spec(std::string_view name) {
  for (const QaSpec& s : kSpecs) {
    if (name == s.name) return &s;
  }
  return nullptr;
}

std::unique_ptr<Task> make_qa_task(const std::string& name, const TaskEnv& env, int64_t length) {
  const QaSpec* s = find_qa_spec(name);
  SA_CHECK(s != nullptr, "not a BABILong-style task: ", name);
  return std::make_unique<QaTask>(*s, env, length);
}

QaStory qa_story(const QaSpec& s, Rng& rng) {
  for (int attempt = 0; attempt < kMaxStoryTries; ++attempt) {
    World w;
    QaStory st;
    for (int f = 0; f < s.n_facts; ++f) st.facts.push_back(random_fact(s, w, rng));
    // Who or what may be asked about, so that the answer needs s.supporting facts: a person who
    // moved more than once; an object that moved after it was taken; an object that reached its
    // last room once, after two others.
    std::vector<size_t> ok;
    if (s.supporting == 1) {
      for (size_t p = 0; p < kQaPeople.size(); ++p) {
        if (w.moves[p] >= 2) ok.push_back(p);
      }
    } else {
      for (size_t o = 0; o < kQaObjects.size(); ++o) {
        const std::vector<int>& t = w.trail[o];
        const bool unique_last = std::count(t.begin(), t.end(), t.empty() ? -1 : t.back()) == 1;
        if (s.supporting == 2 && t.size() >= 2) ok.push_back(o);
        if (s.supporting == 3 && t.size() >= 3 && unique_last) ok.push_back(o);
      }
    }
    if (ok.empty()) continue;
    const size_t i = ok[rng.below(ok.size())];
    if (s.supporting == 1) {
      const std::string who = kQaPeople[i];
      st.question = "Where is " + who + "?";
      st.answer_lead = "The most recent location of " + who + " is";
      st.answer = kQaRooms[w.at[i]];
    } else if (s.supporting == 2) {
      const std::string what = kQaObjects[i];
      st.question = "Where is the " + what + "?";
      st.answer_lead = "The " + what + " is in the";
      st.answer = kQaRooms[w.where[i]];
    } else {
      const std::vector<int>& t = w.trail[i];
      const std::string what = kQaObjects[i], last = kQaRooms[t.back()];
      st.question = "Where was the " + what + " before the " + last + "?";
      st.answer_lead = "Before the " + last + " the " + what + " was in the";
      st.answer = kQaRooms[t[t.size() - 2]];
    }
    return st;
  }
  fail("could not make a ", s.name, " story in ", kMaxStoryTries, " tries");
}

QaContent qa_content(const QaSpec& s, int64_t n, Rng& rng,
                     const std::vector<std::string>& essay_words, int depth_lo, int depth_hi) {
  SA_CHECK(n >= 1 && n <= static_cast<int64_t>(essay_words.size()),
           "the essay haystack has too few words");
  SA_CHECK(depth_lo >= 0 && depth_lo <= depth_hi && depth_hi <= 100, "bad fact depths ", depth_lo,
           "-", depth_hi);
  QaContent c;
  c.story = qa_story(s, rng);
  const std::vector<std::string> head(essay_words.begin(), essay_words.begin() + n);
  std::vector<std::string> sents = split_sentences(join(head, " "));
  // The first n words usually end inside a sentence; a fact after that fragment would read as its
  // continuation, so the fragment goes.
  if (!sents.empty() && !ends_sentence(sents.back())) sents.pop_back();
  const int64_t ns = static_cast<int64_t>(sents.size());
  c.n_parts = ns;
  // Each fact goes at a uniformly random sentence boundary of the depth range (BABILong's
  // placement); several may share one. Sorted, so the story reads in order.
  const int64_t lo = ns * depth_lo / 100, hi = ns * depth_hi / 100;
  for (size_t f = 0; f < c.story.facts.size(); ++f) c.positions.push_back(rng.range(lo, hi));
  std::sort(c.positions.begin(), c.positions.end());
  std::vector<std::string> parts;
  size_t f = 0;
  for (int64_t i = 0; i <= ns; ++i) {
    for (; f < c.positions.size() && c.positions[f] == i; ++f) parts.push_back(c.story.facts[f]);
    if (i < ns) parts.push_back(sents[i]);
  }
  c.haystack = join(parts, " ");
  return c;
}

PromptPair render_qa(const PromptFormat& f, const QaSpec& s, std::string_view haystack,
                     const QaStory& story) {
  SA_CHECK(s.supporting >= 1 && s.supporting <= 3, "render_qa: ", s.supporting,
           " supporting facts");
  PromptPair p;
  p.context = f.prefix + kInstructions[s.supporting - 1] + "\n\n<context>\n" +
              std::string(haystack) + "\n</context>\n";
  p.query = "Question: " + story.question + f.suffix + " Answer: " + story.answer_lead;
  return p;
}

}  // namespace starattn::eval
