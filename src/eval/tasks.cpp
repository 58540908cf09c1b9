#include "eval/tasks.h"

#include <algorithm>

#include "eval/task_impl.h"
#include "eval/text.h"
#include "starattn/error.h"

namespace starattn::eval {

namespace {

const std::vector<std::string>& ruler_task_names() {
  static const std::vector<std::string> names = {"niah_single_1",
                                                 "niah_single_2",
                                                 "niah_single_3",
                                                 "niah_multikey_1",
                                                 "niah_multikey_2",
                                                 "niah_multikey_3",
                                                 "niah_multivalue",
                                                 "niah_multiquery",
                                                 "vt",
                                                 "cwe",
                                                 "fwe"};
  return names;
}

const std::vector<std::string>& babilong_task_names() {
  static const std::vector<std::string> names = {"qa1", "qa2", "qa3"};
  return names;
}

}  // namespace

const std::vector<std::string>& all_task_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> all = ruler_task_names();
    for (const std::string& t : babilong_task_names()) all.push_back(t);
    return all;
  }();
  return names;
}

std::vector<std::string> parse_task_list(const std::string& csv) {
  const std::vector<std::string>& all = all_task_names();
  std::vector<std::string> out;
  auto add = [&](const std::string& t) {
    if (std::find(out.begin(), out.end(), t) == out.end()) out.push_back(t);
  };
  for (const std::string& t : split_ws(replace_all(csv, ",", " "))) {
    const std::vector<std::string>* group = t == "all"        ? &all
                                            : t == "ruler"    ? &ruler_task_names()
                                            : t == "babilong" ? &babilong_task_names()
                                                              : nullptr;
    if (group) {
      for (const std::string& a : *group) add(a);
      continue;
    }
    SA_CHECK(std::find(all.begin(), all.end(), t) != all.end(), "unknown task '", t,
             "'; the tasks are ", join(all, ", "), " (or all, ruler, babilong)");
    add(t);
  }
  SA_CHECK(!out.empty(), "no tasks given (--tasks niah_single_1,vt or all)");
  return out;
}

bool task_needs_words(const std::string& task) {
  if (task == "cwe") return true;
  const NiahSpec* s = find_niah_spec(task);
  return s && (s->key == ValueKind::Words || s->value == ValueKind::Words);
}

bool task_needs_essay(const std::string& task) {
  if (find_qa_spec(task)) return true;
  const NiahSpec* s = find_niah_spec(task);
  return s && s->haystack == HaystackKind::Essay;
}

std::vector<int> context_ids(const Tokenizer& tok, const std::string& text) {
  std::vector<int> ids = tok.encode(text);
  // The same rule as build_prompt_ids: BOS unless the template already wrote it.
  if (tok.add_bos() && tok.bos_id() >= 0 && (ids.empty() || ids[0] != tok.bos_id())) {
    ids.insert(ids.begin(), tok.bos_id());
  }
  return ids;
}

std::vector<int> query_ids(const Tokenizer& tok, const std::string& text) {
  return tok.encode(text);
}

int64_t Task::tokens(const std::string& text) const {
  return static_cast<int64_t>(context_ids(*env_.tok, text).size());
}

int64_t Task::find_units(Rng& rng) const {
  auto ok = [&](int64_t n) {
    const Generated g = gen(n, rng);
    return tokens(g.text.context + g.text.query + " " + join(g.refs, " ")) + sizing_tokens <=
           length_;
  };
  SA_CHECK(ok(min_units), "--length ", length_, " is too short for ", name,
           ": even its smallest sample does not fit", too_short_hint);
  // Double until a probe fails (or the source runs out), then bisect.
  int64_t lo = min_units, hi = -1;
  while (hi < 0) {
    int64_t next = lo * 2;
    if (max_units > 0 && next >= max_units) {
      next = max_units;
      if (next == lo || ok(next)) return next;
      hi = next;
      break;
    }
    if (ok(next)) {
      lo = next;
    } else {
      hi = next;
    }
  }
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (ok(mid)) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return lo;
}

bool Task::fits(const Sample& s) const {
  return static_cast<int64_t>(s.context_ids.size() + s.query_ids.size()) + sizing_tokens <= length_;
}

struct SampleMaker::Sized {
  std::string task;
  int64_t length = 0;
  std::unique_ptr<Task> impl;
  int64_t units = 0;
};

SampleMaker::SampleMaker(TaskEnv env) : env_(std::move(env)) {
  SA_CHECK(env_.tok != nullptr, "SampleMaker needs a tokenizer");
}
SampleMaker::~SampleMaker() = default;

SampleMaker::Sized& SampleMaker::sized(const std::string& task, int64_t length) {
  for (auto& s : cache_) {
    if (s->task == task && s->length == length) return *s;
  }
  auto s = std::make_unique<Sized>();
  s->task = task;
  s->length = length;
  if (find_niah_spec(task)) {
    s->impl = make_niah_task(task, env_, length);
  } else if (task == "vt") {
    s->impl = make_vt_task(env_, length);
  } else if (task == "cwe") {
    s->impl = make_cwe_task(env_, length);
  } else if (task == "fwe") {
    s->impl = make_fwe_task(env_, length);
  } else if (find_qa_spec(task)) {
    s->impl = make_qa_task(task, env_, length);
  } else {
    fail("unknown task '", task, "'");
  }
  Rng rng = Rng::for_stream(env_.seed, task + "#size", length, 0);
  s->units = s->impl->find_units(rng);
  cache_.push_back(std::move(s));
  return *cache_.back();
}

Sample SampleMaker::make(const std::string& task, int64_t length, int64_t index) {
  Sized& sz = sized(task, length);
  const Task& t = *sz.impl;
  Rng rng = Rng::for_stream(env_.seed, task, length, index);
  Sample s;
  s.task = task;
  s.length = length;
  s.index = index;
  s.max_new_tokens = t.max_new_tokens;
  s.sizing_tokens = t.sizing_tokens;
  // RULER's per-sample loop: fresh randomness at the sized n; step down while it does not fit.
  // RULER's steps (500 essay words, 25 lines) can cost a sample a sixth of its length at 4K; the
  // binary search already found n, so by default the step is 2% of it.
  const int64_t step = env_.faithful ? t.inc : std::max<int64_t>(1, std::min(t.inc, sz.units / 50));
  for (int64_t n = sz.units;; n = std::max(n - step, t.min_units)) {
    Generated g = t.gen(n, rng);
    s.context = std::move(g.text.context);
    s.query = std::move(g.text.query);
    s.refs = std::move(g.refs);
    s.context_ids = context_ids(*env_.tok, s.context);
    s.query_ids = query_ids(*env_.tok, s.query);
    s.units = n;
    if (t.fits(s)) break;
    SA_CHECK(n > t.min_units, "cannot fit a ", task, " sample into ", length, " tokens");
  }
  return s;
}

}  // namespace starattn::eval
