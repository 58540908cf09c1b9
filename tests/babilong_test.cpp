// The BABILong-style tasks qa1-qa3 (src/eval/babilong.cpp): rendered prompts, golden samples for
// fixed seeds, and properties over many seeds checked by a solver written here from the task's
// definition (it reads the facts back out of the generated text and answers the question).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>

#include "eval/metric.h"
#include "eval/rng.h"
#include "eval/task_impl.h"
#include "eval/text.h"
#include "starattn/error.h"
#include "test_util.h"

namespace starattn::eval {
namespace {

namespace fs = std::filesystem;

const std::string kPre =
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful "
    "assistant.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n";
const std::string kSuf = "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";

// Twelve short sentences; easy to read in a golden string.
const char* kProse =
    "The river ran north. Birds sang at dawn. A cart crossed the bridge. The baker opened early. "
    "Rain fell on the hills. Children played by the wall. The bell rang twice. Smoke rose from "
    "the chimney. A dog slept in the sun. The market was quiet. Wind moved the reeds. Night came "
    "slowly.";

std::vector<std::string> long_prose(size_t n_words) {
  // Made-up words, so no fact-like sentence can appear in the prose by chance.
  const char* cons = "bdfgklmnprstvz";
  const char* vow = "aeiou";
  Rng r(11);
  std::vector<std::string> out;
  while (out.size() < n_words) {
    const int len = 4 + static_cast<int>(r.below(12));
    for (int i = 0; i < len; ++i) {
      std::string w;
      for (int s = 0; s < 2 + static_cast<int>(r.below(2)); ++s) {
        w += cons[r.below(14)];
        w += vow[r.below(5)];
      }
      if (i == 0) w[0] = static_cast<char>(w[0] - 'a' + 'A');
      if (i + 1 == len) w += '.';
      out.push_back(w);
    }
  }
  return out;
}

// ---- an independent solver ---------------------------------------------------------------------
// bAbI's rules as the task states them: a person is where they last moved; an object someone
// picks up is in that person's room and moves with them until they put it down.
const std::set<std::string> kPeople = {"Mary", "John", "Daniel", "Sandra"};
const std::set<std::string> kRooms = {"bathroom", "hallway", "garden",
                                      "office",   "bedroom", "kitchen"};
const std::set<std::string> kObjects = {"football", "apple", "milk"};
const std::set<std::string> kMoves = {"moved to", "went to", "journeyed to", "travelled to",
                                      "went back to"};
const std::set<std::string> kGets = {"picked up", "got", "grabbed", "took"};
const std::set<std::string> kDrops = {"dropped", "put down", "discarded", "left"};

struct Fact {
  std::string who, verb, what;  // "Mary", "moved to", "kitchen"
};

// "Mary moved to the kitchen." -> {Mary, moved to, kitchen}; anything else -> nothing.
std::optional<Fact> parse_fact(const std::string& sentence) {
  std::vector<std::string> w = split_ws(sentence);
  if (w.size() < 4 || w.back().empty() || w.back().back() != '.') return std::nullopt;
  w.back().pop_back();
  if (!kPeople.count(w.front()) || w[w.size() - 2] != "the") return std::nullopt;
  const std::string verb = join(std::vector<std::string>(w.begin() + 1, w.end() - 2), " ");
  Fact f{w.front(), verb, w.back()};
  const bool move = kMoves.count(verb) && kRooms.count(f.what);
  const bool take = (kGets.count(verb) || kDrops.count(verb)) && kObjects.count(f.what);
  if (!move && !take) return std::nullopt;
  return f;
}

struct Solved {
  std::vector<Fact> facts;
  std::map<std::string, std::string> room;                  // person -> room
  std::map<std::string, std::string> carrier;               // object -> person
  std::map<std::string, std::vector<std::string>> visited;  // object -> rooms, no repeats in a row
  std::map<std::string, int> moves;                         // person -> moves
  std::string error;                                        // a fact that breaks the rules
};

Solved read_story(const std::string& haystack) {
  Solved s;
  auto put = [&](const std::string& obj, const std::string& room) {
    std::vector<std::string>& v = s.visited[obj];
    if (v.empty() || v.back() != room) v.push_back(room);
  };
  for (const std::string& sent : split_sentences(haystack)) {
    const std::optional<Fact> f = parse_fact(sent);
    if (!f) continue;
    s.facts.push_back(*f);
    if (kMoves.count(f->verb)) {
      s.room[f->who] = f->what;
      ++s.moves[f->who];
      for (const auto& [obj, who] : s.carrier) {
        if (who == f->who) put(obj, f->what);
      }
    } else if (kGets.count(f->verb)) {
      if (!s.room.count(f->who)) s.error = "took something before any move: " + sent;
      if (s.carrier.count(f->what)) s.error = "took a carried object: " + sent;
      if (!s.visited[f->what].empty() && s.visited[f->what].back() != s.room[f->who]) {
        s.error = "took an object from another room: " + sent;
      }
      s.carrier[f->what] = f->who;
      put(f->what, s.room[f->who]);
    } else {
      if (!s.carrier.count(f->what) || s.carrier[f->what] != f->who) {
        s.error = "dropped what they do not carry: " + sent;
      }
      s.carrier.erase(f->what);
    }
  }
  return s;
}

// The answer to the question from the facts alone; "" when the question has no single answer.
std::string answer(const Solved& s, const std::string& question) {
  const std::vector<std::string> w = split_ws(replace_all(question, "?", ""));
  if (w.size() == 3 && w[0] == "Where" && w[1] == "is" && kPeople.count(w[2])) {
    return s.room.count(w[2]) ? s.room.at(w[2]) : "";
  }
  if (w.size() == 4 && w[1] == "is" && w[2] == "the" && s.visited.count(w[3])) {
    const auto it = s.carrier.find(w[3]);
    if (it != s.carrier.end()) return s.room.at(it->second);
    return s.visited.at(w[3]).back();  // put down: it stays where it last was
  }
  if (w.size() == 7 && w[1] == "was" && w[4] == "before" && s.visited.count(w[3])) {
    const std::vector<std::string>& v = s.visited.at(w[3]);
    if (std::count(v.begin(), v.end(), w[6]) != 1) return "";  // "before" would be ambiguous
    const auto at = std::find(v.begin(), v.end(), w[6]);
    return at == v.begin() ? "" : *(at - 1);
  }
  return "";
}

// ---- templates
// -----------------------------------------------------------------------------------

TEST(Babilong, Specs) {
  for (const char* t : {"qa1", "qa2", "qa3"}) {
    ASSERT_NE(find_qa_spec(t), nullptr) << t;
    EXPECT_EQ(find_qa_spec(t)->supporting, t[2] - '0');
  }
  EXPECT_EQ(find_qa_spec("qa4"), nullptr);
  EXPECT_EQ(find_qa_spec("niah_single_1"), nullptr);
  EXPECT_EQ(parse_task_list("babilong"), (std::vector<std::string>{"qa1", "qa2", "qa3"}));
  EXPECT_EQ(parse_task_list("qa3,ruler,qa1").size(), 13u);
  EXPECT_EQ(parse_task_list("all").size(), 14u);
  EXPECT_TRUE(task_needs_essay("qa2"));
  EXPECT_FALSE(task_needs_words("qa2"));
}

const Tokenizer& fixture_tokenizer() {
  static const Tokenizer t = Tokenizer::from_hf_json(
      std::string(STARATTN_SOURCE_DIR) + "/tests/fixtures/tokenizer/llama3_tokenizer.json",
      std::string(STARATTN_SOURCE_DIR) + "/tests/fixtures/tokenizer/llama3_tokenizer_config.json");
  return t;
}

// kProse 20 times over (the golden sample) or made-up prose (the properties and the sizing).
TaskEnv env_with(const Haystack* essay) {
  TaskEnv env;
  env.tok = &fixture_tokenizer();
  env.format = PromptFormat::sa_llama3();
  env.words = []() -> const std::vector<std::string>& {
    static const std::vector<std::string> none;
    return none;  // the qa tasks need no word list; a use would fail loudly elsewhere
  };
  env.essay = [essay]() -> const Haystack& { return *essay; };
  return env;
}
const Haystack& repeated_prose() {
  static const Haystack h = [] {
    Haystack r{"prose", {}};
    for (int i = 0; i < 20; ++i) {
      for (const std::string& w : split_ws(kProse)) r.words.push_back(w);
    }
    return r;
  }();
  return h;
}
const Haystack& made_up_prose() {
  static const Haystack h{"made-up", long_prose(30000)};
  return h;
}

TEST(Babilong, RenderedPrompt) {
  // BABILong's layout (instruction, a worked example in <example> tags, the text in <context>
  // tags, "Question: ...") inside the chat turn, cut where the RULER-style tasks cut: the query
  // is the question, the end of the user turn, the assistant header and the answer prefix.
  QaStory st;
  st.question = "Where is Mary?";
  st.answer_lead = "The most recent location of Mary is";
  const PromptPair p = render_qa(PromptFormat::sa_llama3(), *find_qa_spec("qa1"), "HAY", st);
  EXPECT_EQ(p.context,
            kPre +
                "I will give you a text in which facts about where some people went are hidden "
                "among unrelated sentences, and then a question about one of those people. "
                "Answer it using only those facts. If a person went to several places, the "
                "answer is the last place that person went to.\n\n<example>\nCharlie went to the "
                "porch. Alan moved to the garage. Charlie journeyed to the cellar. Where is "
                "Charlie?\nAnswer: The most recent location of Charlie is the cellar.\n</example>"
                "\n\n<context>\nHAY\n</context>\n");
  EXPECT_EQ(p.query,
            "Question: Where is Mary?" + kSuf + " Answer: The most recent location of Mary is");
  // Each worked example answers in the shape of its task's answer prefix, with a place and an
  // object no story uses (copying the example never scores).
  const std::map<std::string, std::string> example_answer = {
      {"qa1", "Answer: The most recent location of Charlie is the cellar.\n</example>"},
      {"qa2", "Where is the lamp?\nAnswer: The lamp is in the cellar.\n</example>"},
      {"qa3",
       "Where was the lamp before the cellar?\nAnswer: Before the cellar the lamp was in the "
       "garage.\n</example>"}};
  for (const auto& [task, tail] : example_answer) {
    const PromptPair q = render_qa(PromptFormat::base(), *find_qa_spec(task), "H", st);
    EXPECT_NE(q.context.find(tail + "\n\n<context>\nH\n</context>\n"), std::string::npos) << task;
    for (const char* place : {"porch", "garage", "cellar", "lamp"}) {
      EXPECT_EQ(kRooms.count(place) + kObjects.count(place), 0u);
    }
  }
}

// The stories for seed 1 over the twelve sentences of kProse, printed once by the generator and
// checked by reading them against the task's rules (the comments say why each answer is right).
TEST(Babilong, GoldenContent) {
  const std::vector<std::string> prose = split_ws(kProse);
  const int64_t n = static_cast<int64_t>(prose.size());
  struct Golden {
    const char* task;
    std::string haystack, question, lead, answer;
    std::vector<int64_t> positions;
  };
  const std::vector<Golden> golden = {
      // Mary: bathroom, bedroom, hallway, then (last fact) bedroom again. John and Sandra move
      // too. 8 facts, positions sorted, two at boundary 2 kept in story order.
      {"qa1",
       "Mary went to the bathroom. The river ran north. Birds sang at dawn. Mary moved to the "
       "bedroom. Mary travelled to the hallway. A cart crossed the bridge. John travelled to the "
       "garden. The baker opened early. Rain fell on the hills. Children played by the wall. John "
       "moved to the bedroom. The bell rang twice. Smoke rose from the chimney. A dog slept in the "
       "sun. Sandra journeyed to the garden. The market was quiet. Sandra journeyed to the "
       "kitchen. "
       "Wind moved the reeds. Night came slowly. Mary moved to the bedroom.",
       "Where is Mary?",
       "The most recent location of Mary is",
       "bedroom",
       {0, 2, 2, 3, 6, 9, 10, 12}},
      // Daniel is in the kitchen when he gets the milk, then carries it to the bathroom and the
      // bedroom. (Sandra carries the football, Daniel also the apple: distractors.)
      {"qa2",
       "Daniel travelled to the office. The river ran north. Mary journeyed to the garden. Birds "
       "sang at dawn. A cart crossed the bridge. Sandra journeyed to the bedroom. The baker opened "
       "early. Sandra picked up the football. Rain fell on the hills. Children played by the wall. "
       "The bell rang twice. Sandra went back to the kitchen. Daniel picked up the apple. Daniel "
       "went back to the kitchen. Smoke rose from the chimney. John moved to the kitchen. A dog "
       "slept in the sun. The market was quiet. Daniel got the milk. Daniel journeyed to the "
       "bathroom. Wind moved the reeds. Sandra went back to the hallway. Night came slowly. Daniel "
       "went back to the bedroom.",
       "Where is the milk?",
       "The milk is in the",
       "bedroom",
       {0, 1, 3, 4, 7, 7, 7, 8, 10, 10, 11, 12}},
      // Mary is in the bathroom when she grabs the football, then goes to the hallway and the
      // garden: the football was in bathroom, hallway, garden; before the garden, the hallway.
      {"qa3",
       "The river ran north. Mary journeyed to the kitchen. Birds sang at dawn. Sandra went to the "
       "bedroom. A cart crossed the bridge. The baker opened early. Daniel went to the kitchen. "
       "Mary went to the office. Sandra journeyed to the office. Rain fell on the hills. Children "
       "played by the wall. Mary moved to the bathroom. Mary took the apple. The bell rang twice. "
       "Mary grabbed the football. John moved to the bedroom. Smoke rose from the chimney. Sandra "
       "took the milk. Sandra moved to the kitchen. A dog slept in the sun. Sandra went back to "
       "the office. The market was quiet. John moved to the garden. Mary went back to the "
       "hallway. Wind moved the reeds. Daniel went to the office. Night came slowly. Mary moved to "
       "the garden.",
       "Where was the football before the garden?",
       "Before the garden the football was in the",
       "hallway",
       {1, 2, 4, 4, 4, 6, 6, 7, 7, 8, 8, 9, 10, 10, 11, 12}},
  };
  for (const Golden& g : golden) {
    SCOPED_TRACE(g.task);
    Rng rng(1);
    const QaContent c = qa_content(*find_qa_spec(g.task), n, rng, prose, 0, 100);
    EXPECT_EQ(c.haystack, g.haystack);
    EXPECT_EQ(c.story.question, g.question);
    EXPECT_EQ(c.story.answer_lead, g.lead);
    EXPECT_EQ(c.story.answer, g.answer);
    EXPECT_EQ(c.positions, g.positions);
    EXPECT_EQ(c.n_parts, 12);
    // The solver below reads the same answer out of the golden text.
    EXPECT_EQ(answer(read_story(g.haystack), g.question), g.answer);
  }
}

// A whole sample as `starattn eval --tasks qa1 --length 420` makes it with the fixture's Llama-3
// tokenizer and kProse as the haystack (seed 42, sample 0). 14 words fit: the first three
// sentences and the fragment "The", which is dropped. Daniel: garden, bedroom, bathroom.
TEST(Babilong, GoldenSample) {
  SampleMaker maker(env_with(&repeated_prose()));
  const Sample s = maker.make("qa1", 420, 0);
  EXPECT_EQ(s.units, 14);
  EXPECT_EQ(s.context,
            kPre +
                "I will give you a text in which facts about where some people went are hidden "
                "among unrelated sentences, and then a question about one of those people. "
                "Answer it using only those facts. If a person went to several places, the "
                "answer is the last place that person went to.\n\n<example>\nCharlie went to the "
                "porch. Alan moved to the garage. Charlie journeyed to the cellar. Where is "
                "Charlie?\nAnswer: The most recent location of Charlie is the cellar.\n</example>"
                "\n\n<context>\nJohn journeyed to the garden. The river ran north. Mary "
                "travelled to the kitchen. Mary moved to the bedroom. Birds sang at dawn. Daniel "
                "went back to the garden. Mary moved to the hallway. A cart crossed the bridge. "
                "Daniel travelled to the bedroom. Daniel moved to the bathroom. Mary went to the "
                "office.\n</context>\n");
  EXPECT_EQ(s.query,
            "Question: Where is Daniel?" + kSuf + " Answer: The most recent location of Daniel is");
  EXPECT_EQ(s.refs, std::vector<std::string>{"bathroom"});
  EXPECT_EQ(s.max_new_tokens, 16);
  EXPECT_LE(static_cast<int64_t>(s.context_ids.size() + s.query_ids.size()) + s.sizing_tokens, 420);
}

// Over many seeds: the facts read back from the text give the gold answer, by the rules alone.
TEST(Babilong, AnswerFollowsFromTheFacts) {
  const std::vector<std::string>& prose = made_up_prose().words;
  for (const char* task : {"qa1", "qa2", "qa3"}) {
    const QaSpec& spec = *find_qa_spec(task);
    for (int trial = 0; trial < 300; ++trial) {
      SCOPED_TRACE(std::string(task) + " trial " + std::to_string(trial));
      Rng rng = Rng::for_stream(3, task, 0, trial);
      const int lo = trial % 3 == 0 ? 0 : static_cast<int>(rng.below(60));
      const int hi = trial % 3 == 0 ? 100 : lo + static_cast<int>(rng.below(41));
      const int64_t n = 50 + static_cast<int64_t>(rng.below(600));
      const QaContent c = qa_content(spec, n, rng, prose, lo, hi);
      const Solved s = read_story(c.haystack);
      ASSERT_EQ(s.error, "");
      // Every fact is in the text, whole and in order, and nothing else reads as a fact.
      ASSERT_EQ(s.facts.size(), static_cast<size_t>(spec.n_facts));
      ASSERT_EQ(c.story.facts.size(), s.facts.size());
      for (size_t i = 0; i < s.facts.size(); ++i) {
        EXPECT_EQ(c.story.facts[i],
                  s.facts[i].who + " " + s.facts[i].verb + " the " + s.facts[i].what + ".");
      }
      const std::string want = answer(s, c.story.question);
      ASSERT_NE(want, "") << c.story.question;
      EXPECT_EQ(c.story.answer, want);
      EXPECT_TRUE(kRooms.count(want));
      // The answer needs the task's number of facts: qa1's person moved more than once, qa2's
      // object left the room it was taken in, qa3's object was in two rooms before the last.
      const std::vector<std::string> q = split_ws(replace_all(c.story.question, "?", ""));
      if (spec.supporting == 1) {
        EXPECT_GE(s.moves.at(q[2]), 2);
        EXPECT_EQ(c.story.answer_lead, "The most recent location of " + q[2] + " is");
      } else {
        EXPECT_GE(s.visited.at(q[3]).size(), static_cast<size_t>(spec.supporting));
      }
      // Depth: fact i follows positions[i] prose sentences, inside [lo, hi] percent of them.
      int64_t prose_before = 0;
      size_t fact = 0;
      for (const std::string& sent : split_sentences(c.haystack)) {
        if (!parse_fact(sent)) {
          ++prose_before;
          continue;
        }
        EXPECT_EQ(prose_before, c.positions[fact++]);
        EXPECT_GE(prose_before, c.n_parts * lo / 100);
        EXPECT_LE(prose_before, c.n_parts * hi / 100);
      }
      EXPECT_EQ(prose_before, c.n_parts);
      // Scored as the other tasks: the room anywhere in the answer, case-insensitive.
      EXPECT_EQ(string_match_all(" the " + ascii_lower(want) + ".", {want}), 1.0);
      const std::string wrong = want == "garden" ? "kitchen" : "garden";
      EXPECT_EQ(string_match_all(" The " + wrong + ".", {want}), 0.0);
    }
  }
}

TEST(Babilong, SamplesFitAndAreSeeded) {
  TaskEnv env = env_with(&made_up_prose());
  SampleMaker a(env), b(env);
  for (const char* task : {"qa1", "qa2", "qa3"}) {
    for (int64_t length : {1024, 4096}) {
      const Sample s = a.make(task, length, 1);
      SCOPED_TRACE(s.id());
      const int64_t fed = static_cast<int64_t>(s.context_ids.size() + s.query_ids.size());
      EXPECT_LE(fed + s.sizing_tokens, length);
      EXPECT_GE(fed + s.sizing_tokens, length * 9 / 10);
      ASSERT_EQ(s.refs.size(), 1u);
      EXPECT_NE(s.query.find(" Answer: "), std::string::npos);
      const Sample again = b.make(task, length, 1);
      EXPECT_EQ(again.context, s.context);
      EXPECT_EQ(again.query, s.query);
      EXPECT_NE(a.make(task, length, 2).context, s.context);
    }
  }
  env.seed = 7;
  EXPECT_NE(SampleMaker(env).make("qa2", 1024, 1).context, a.make("qa2", 1024, 1).context);
  // The depth range narrows where the facts go; a bad one is refused.
  env.fact_depth_lo = 90;
  const Sample late = SampleMaker(env).make("qa3", 2048, 0);
  const size_t from = late.context.find("<context>\n") + 10;
  const std::string body = late.context.substr(from, late.context.find("\n</context>") - from);
  EXPECT_EQ(read_story(body).facts.size(), 16u);
  int64_t prose = 0, prose_before_first_fact = -1;
  for (const std::string& sent : split_sentences(body)) {
    if (!parse_fact(sent)) {
      ++prose;
    } else if (prose_before_first_fact < 0) {
      prose_before_first_fact = prose;
    }
  }
  EXPECT_GT(prose, 20);
  EXPECT_GE(prose_before_first_fact, prose * 90 / 100);
  env.fact_depth_hi = 50;
  EXPECT_THROW(SampleMaker(env).make("qa1", 1024, 0), Error);
  // A haystack too short for the length says so.
  const Haystack tiny{"tiny", split_ws(kProse)};
  SampleMaker small(env_with(&tiny));
  try {
    small.make("qa1", 4096, 0);
    ADD_FAILURE() << "did not throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("pass --haystack FILE"), std::string::npos) << e.what();
  }
}

// The command line: the help names the tasks, an unknown one is refused before the model loads,
// and --dump-samples makes all three with the real model's tokenizer (skipped without it).
std::string run_cli(const std::string& args, int* code) {
  const std::string cmd = "timeout 120 " + std::string(STARATTN_BINARY) + " " + args + " 2>&1";
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int status = pclose(p);
  *code = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  return out;
}

TEST(Babilong, CommandLine) {
  int code = -1;
  const std::string help = run_cli("eval --help", &code);
  EXPECT_EQ(code, 0);
  EXPECT_NE(help.find("qa1, qa2, qa3 (or babilong"), std::string::npos) << help;
  EXPECT_NE(help.find("qa 16"), std::string::npos) << help;
  const std::string bad = run_cli("eval --tasks qa4", &code);
  EXPECT_EQ(code, 1);
  EXPECT_NE(bad.find("unknown task 'qa4'"), std::string::npos) << bad;
  if (!fs::exists(test::real_model_path())) GTEST_SKIP() << "no " << test::real_model_path();
  const std::string dir = testing::TempDir() + "/babilong_cli_" + std::to_string(::getpid());
  fs::create_directories(dir);
  {
    std::ofstream f(dir + "/prose.txt");
    f << join(made_up_prose().words, " ");
  }
  const std::string out = run_cli("eval -m " + test::real_model_path() +
                                      " --tasks babilong --length 1024 --samples 1 " +
                                      "--haystack " + dir + "/prose.txt --dump-samples -o " + dir,
                                  &code);
  ASSERT_EQ(code, 0) << out;
  std::ifstream in(dir + "/samples.jsonl");
  std::vector<std::string> tasks;
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json j = nlohmann::json::parse(line);
    tasks.push_back(j["task"]);
    ASSERT_EQ(j["outputs"].size(), 1u);
    const std::string ctx = j["input_context"], query = j["input_query"];
    const size_t from = ctx.find("<context>\n") + 10;
    const std::string story = ctx.substr(from, ctx.find("\n</context>") - from);
    ASSERT_EQ(query.rfind("Question: ", 0), 0u);
    EXPECT_EQ(answer(read_story(story), query.substr(10, query.find('?') - 9)), j["outputs"][0]);
    EXPECT_LE(j["length"].get<int>(), 1024);
  }
  EXPECT_EQ(tasks, (std::vector<std::string>{"qa1", "qa2", "qa3"}));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace starattn::eval
