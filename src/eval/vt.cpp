// RULER's variable tracking, one chain of 4 hops with a worked example (Star Attention's
// ruler/data/synthetic/variable_tracking.py).
#include <algorithm>

#include "eval/task_impl.h"
#include "eval/text.h"
#include "starattn/error.h"

namespace starattn::eval {
namespace {

constexpr const char* kCtx =
    "Memorize and track the chain(s) of variable assignment hidden in the following text.\n\n"
    "{context}\n";
constexpr const char* kQuery =
    "Question: Find all variables that are assigned the value {query} in the text above.";
// "assgined" is RULER's spelling; the model is asked to continue this text.
constexpr const char* kAnswer =
    " Answer: According to the chain(s) of variable assignment in the text above, {num_v} "
    "variables are assgined the value {query}, they are: ";
constexpr int kNames = 5;  // num_hops + 1

std::string fill_query(std::string s, std::string_view value) {
  s = substitute(std::move(s), "num_v", std::to_string(kNames));
  return substitute(std::move(s), "query", value);
}

std::vector<std::string> random_names(Rng& rng, int length) {
  std::vector<std::string> names;
  while (static_cast<int>(names.size()) < kNames) {
    std::string n;
    for (int i = 0; i < length; ++i) n.push_back(static_cast<char>('A' + rng.below(26)));
    // "VAR" would make the assignment lines ambiguous; a repeat would merge two chain links.
    if (n != "VAR" && std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
  }
  return names;
}

std::string placeholder(size_t i) {
  std::string s(1, '\x01');
  s.append(std::to_string(i)).push_back('\x01');
  return s;
}

class VtTask : public Task {
 public:
  VtTask(const TaskEnv& env, int64_t length) : Task(env, length) {
    name = "vt";
    sizing_tokens = max_new_tokens = 30;
    inc = 10;
    min_units = kNames + 1;  // RULER's generator needs more noise lines than chain links
    build_example();
  }

  Generated gen(int64_t n, Rng& rng) const override {
    const VtChain c = vt_chain(rng, 5);
    const std::string context = vt_noise_context(c, n, rng);
    // The example's names are drawn afresh for every sample so that copying them never scores.
    const std::vector<std::string> ex_names = random_names(rng, 3);
    std::string ex_ctx = example_context_;
    for (size_t i = 0; i < ex_names.size(); ++i)
      ex_ctx = replace_all(ex_ctx, placeholder(i), ex_names[i]);
    const std::string example =
        render_vt_example(env_.format, ex_ctx, example_value_, ex_names, env_.faithful);
    return {render_vt(env_.format, example, context, c.value, env_.faithful), c.names};
  }

 private:
  // RULER sizes its example as a sample of 500 tokens, 3-letter names, noise in steps of 5.
  class ExampleTask : public Task {
   public:
    ExampleTask(const TaskEnv& env) : Task(env, 500) {
      sizing_tokens = 30;
      min_units = kNames + 1;
    }
    Generated gen(int64_t n, Rng& rng) const override {
      const VtChain c = vt_chain(rng, 3);
      const std::string ctx = vt_noise_context(c, n, rng);
      return {{render_vt_example(env_.format, ctx, c.value, c.names, env_.faithful), ""}, c.names};
    }
  };

  void build_example() {
    ExampleTask ex(env_);
    Rng size_rng = Rng::for_stream(env_.seed, "vt#example-size", 500, 0);
    const int64_t n = ex.find_units(size_rng);
    Rng rng = Rng::for_stream(env_.seed, "vt#example", 500, 0);
    const VtChain c = vt_chain(rng, 3);
    example_value_ = c.value;
    example_context_ = vt_noise_context(c, n, rng);
    for (size_t i = 0; i < c.names.size(); ++i) {
      example_context_ =
          replace_all(example_context_, "VAR " + c.names[i], "VAR " + placeholder(i));
    }
  }

  std::string example_context_;  // names replaced by placeholders
  std::string example_value_;
};

}  // namespace

std::unique_ptr<Task> make_vt_task(const TaskEnv& env, int64_t length) {
  return std::make_unique<VtTask>(env, length);
}

VtChain vt_chain(Rng& rng, int name_length) {
  VtChain c;
  c.names = random_names(rng, name_length);
  c.value = std::to_string(rng.range(10000, 99998));  // numpy's randint(10000, 99999)
  c.items.push_back("VAR " + c.names[0] + " = " + c.value);
  for (int j = 0; j + 1 < kNames; ++j) {
    c.items.push_back("VAR " + c.names[j + 1] + " = VAR " + c.names[j] + " ");
  }
  return c;
}

std::string vt_noise_context(const VtChain& c, int64_t n, Rng& rng) {
  SA_CHECK(n > static_cast<int64_t>(c.items.size()), "vt needs more noise lines than links");
  std::vector<std::string> sentences(static_cast<size_t>(n), std::string(kNoiseUnit) + "\n");
  std::vector<int64_t> pos = rng.sample(n, static_cast<int64_t>(c.items.size()));
  std::sort(pos.begin(), pos.end());
  // Each earlier insertion shifts the later positions by one, so the links stay in order.
  for (size_t j = 0; j < c.items.size(); ++j) {
    sentences.insert(sentences.begin() + pos[j] + static_cast<int64_t>(j), c.items[j]);
  }
  return replace_all(join(sentences, " "), ". \n", ".\n");
}

std::string render_vt_example(const PromptFormat& f, std::string_view context,
                              std::string_view value, const std::vector<std::string>& names,
                              bool faithful) {
  const std::string answers = join(names, " ");
  if (faithful) {
    // RULER strips the chat wrapper off its example by splitting at whitespace, which also drops
    // the word before the answer prefix ("above." plus the end of the user turn).
    std::string ctx = join(split_ws(kCtx), " ") + " ";
    std::vector<std::string> q = split_ws(std::string(kQuery) + f.suffix);
    q.pop_back();
    std::string text =
        substitute(ctx, "context", context) + fill_query(join(q, " ") + kAnswer, value);
    return text + " " + answers + "\n\n";
  }
  // A whole earlier turn: the same instruction, question, answer prefix and the answer.
  return substitute(kCtx, "context", context) +
         fill_query(std::string(kQuery) + f.suffix + kAnswer, value) + answers + f.turn_end;
}

PromptPair render_vt(const PromptFormat& f, std::string_view example, std::string_view context,
                     std::string_view value, bool faithful) {
  PromptPair p;
  const std::string ctx = substitute(kCtx, "context", context);
  p.context = faithful ? f.prefix + " " + std::string(example) + "\n\n" + ctx
                       : f.prefix + std::string(example) + ctx;
  p.query = fill_query(std::string(kQuery) + f.suffix + kAnswer, value);
  return p;
}

}  // namespace starattn::eval
