#include "app/eval_cmd.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>

#include "app/common.h"
#include "app/kv_report.h"
#include "app/ranks.h"
#include "comm/comm.h"
#include "engine/context_encoder.h"
#include "engine/generate.h"
#include "engine/progress.h"
#include "eval/method.h"
#include "eval/metric.h"
#include "eval/results.h"
#include "eval/rng.h"
#include "eval/tasks.h"
#include "eval/text.h"
#include "io/text_file.h"
#include "starattn/error.h"

namespace starattn::app {
namespace {

namespace fs = std::filesystem;
using eval::Record;
using eval::Sample;

struct EvalArgs {
  std::string model, tasks = "all", lengths = "4096", out = "eval_results";
  eval::MethodSpec method;  // its -b and -a are bound here; the rest comes from context_flags
  ContextFlags context_flags;
  std::string haystack, wordlist = eval::kDefaultWordList, system, label, chat_template;
  std::string progress = "auto", device = "cpu", weights_type = "native";
  int samples = 10, max_new = 0, threads = 0;
  uint64_t seed = 42;
  bool resume = false, faithful = false, report = false, dump = false;

  std::string describe() const {
    std::ostringstream s;
    s << model << '|' << tasks << '|' << lengths << '|' << out << '|' << method.attn << '|'
      << method.block << '|' << method.anchor << '|' << method.anchor_mode << '|'
      << method.anchor_source << '|' << method.anchor_seed << '|' << method.chunk << '|'
      << method.kv_type << '|' << haystack << '|' << wordlist << '|' << system << '|' << label
      << '|' << samples << '|' << max_new << '|' << seed << '|' << device << '|' << weights_type
      << '|' << resume << faithful << report << dump;
    s << '|' << chat_template;
    return s.str();
  }
};

void make_dir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  SA_CHECK(!ec, "cannot create the folder ", dir, ": ", ec.message());
}

// What else decides the samples and the answers; results with another fingerprint are another
// experiment and are not resumed from.
std::string fingerprint(const EvalArgs& a, const Tokenizer& tok) {
  std::ostringstream s;
  s << eval::kGeneratorVersion << " seed=" << a.seed
    << " model=" << fs::path(a.model).filename().string() << " vocab=" << tok.vocab_size()
    << " haystack=" << (a.haystack.empty() ? "kjv" : fs::path(a.haystack).filename().string())
    << " words=" << fs::path(a.wordlist).filename().string() << " faithful=" << a.faithful
    << " max_new=" << a.max_new;
  if (!a.system.empty()) s << " system=" << a.system;
  if (!a.chat_template.empty()) s << " chat_template=" << a.chat_template;
  // Results from before the choice existed were computed with fp32 weights.
  if (a.weights_type != "f32") s << " weights=" << a.weights_type;
  return s.str();
}

std::string hms(double s) {
  const long long t = static_cast<long long>(s + 0.5);
  char buf[32];
  if (t >= 3600) {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm%02llds", t / 3600, t / 60 % 60, t % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", t / 60, t % 60);
  }
  return buf;
}

// Samples done / total with an ETA on stderr: redrawn in place on a terminal, one line per sample
// in a log file (nohup), so a long background run can be followed with tail -f. The ETA weighs
// each sample by the prefill work of its length (engine/progress.h): a 16K sample costs far
// more than four 4K ones, so an average over the (shorter, earlier) samples would come out low.
// Generation is not weighed; at short lengths it is a larger part of each sample.
class EvalProgress {
 public:
  // work: of each planned sample, in the order they run.
  EvalProgress(std::vector<double> work, bool tty)
      : work_(std::move(work)), tty_(tty), start_(now_seconds()) {
    for (double w : work_) work_total_ += w;
  }
  void sample_done(const std::string& id, double score, double seconds, double mean) {
    work_done_ += work_[static_cast<size_t>(done_)];
    ++done_;
    const long long total = static_cast<long long>(work_.size());
    const double el = now_seconds() - start_;
    const double eta = eta_seconds(el, work_done_, work_total_).value_or(0.0);
    std::fprintf(stderr, "%s[eval] %lld/%lld %s score %.2f (%.1f s) | mean %.1f | %s, ETA %s%s",
                 tty_ ? "\r\033[K" : "", static_cast<long long>(done_), total, id.c_str(), score,
                 seconds, 100.0 * mean, hms(el).c_str(), hms(eta).c_str(), tty_ ? "" : "\n");
    if (tty_ && done_ == total) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  }

 private:
  std::vector<double> work_;
  int64_t done_ = 0;
  bool tty_;
  double start_, work_done_ = 0, work_total_ = 0;
};

eval::TaskEnv make_env(const EvalArgs& a, const Tokenizer& tok) {
  eval::TaskEnv env;
  env.tok = &tok;
  env.format = tok.chat_template().empty() && a.chat_template.empty()
                   ? eval::PromptFormat::base()
                   : eval::PromptFormat::from_chat(
                         ChatTemplate::for_tokenizer(tok, a.chat_template), a.system);
  env.faithful = a.faithful;
  env.seed = a.seed;
  // Loaded once, on first use; the lambdas own them.
  auto words = std::make_shared<std::vector<std::string>>();
  auto essay = std::make_shared<eval::Haystack>();
  env.words = [words, path = a.wordlist]() -> const std::vector<std::string>& {
    if (words->empty()) *words = eval::load_word_list(path);
    return *words;
  };
  env.essay = [essay, path = a.haystack]() -> const eval::Haystack& {
    if (essay->words.empty()) {
      *essay = path.empty() ? eval::load_kjv_haystack() : eval::load_text_haystack(path);
    }
    return *essay;
  };
  return env;
}

// Prints the tables of DIR/results.jsonl; also writes them to DIR/summary.md after a run (not for
// --report, which only reads, so it works on a read-only folder such as a checked-in fixture).
void write_summary(const std::string& dir, bool to_file) {
  const std::vector<Record> all = eval::read_records((fs::path(dir) / "results.jsonl").string());
  SA_CHECK(!all.empty(), "no results in ", dir, "/results.jsonl");
  const std::string md = eval::summary_markdown(all);
  if (to_file) {
    std::ofstream f(fs::path(dir) / "summary.md", std::ios::binary | std::ios::trunc);
    f << md;
    SA_CHECK(f.good(), "cannot write ", dir, "/summary.md");
  }
  std::fflush(stderr);
  std::printf("%s", md.c_str());
  std::fflush(stdout);
}

// Writes the samples in RULER's own fields (those of Star Attention's ruler/data/prepare.py),
// without running the model.
void dump_samples(eval::SampleMaker& maker, const std::vector<std::string>& tasks,
                  const std::vector<int64_t>& lengths, int n, const std::string& path) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  for (int64_t len : lengths) {
    for (const auto& t : tasks) {
      for (int i = 0; i < n; ++i) {
        const Sample s = maker.make(t, len, i);
        nlohmann::json j;
        j["index"] = i;
        j["task"] = t;
        j["input_context"] = s.context;
        j["input_query"] = s.query;
        j["outputs"] = s.refs;
        j["length"] = s.context_ids.size() + s.query_ids.size() + s.sizing_tokens;
        j["context_tokens"] = s.context_ids.size();
        j["query_tokens"] = s.query_ids.size();
        f << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
      }
    }
  }
  SA_CHECK(f.good(), "cannot write ", path);
  std::fprintf(stderr, "wrote %s\n", path.c_str());
}

// The parts of a result line that come from the sample and the run.
Record make_record(const Sample& s, const RunConfig& rc, const GenerateResult& res,
                   const Tokenizer& tok) {
  Record r;
  r.id = s.id();
  r.task = s.task;
  r.length = s.length;
  r.index = s.index;
  if (rc.attn == AttnMode::Star) {
    r.block_size = rc.block_size;
    r.anchor_size = rc.anchor_size;
    r.anchor_mode = anchor_mode_name(rc.anchor);
    r.anchor_source = anchor_source_name(rc.anchor_source);
  }
  r.context_tokens = static_cast<int64_t>(s.context_ids.size());
  r.query_tokens = static_cast<int64_t>(s.query_ids.size());
  r.gen_tokens = static_cast<int>(res.tokens.size());
  // RULER cuts the text at the first stop word; generate() already stopped at the end token.
  r.pred = eval::postprocess_pred(tok.decode(res.tokens));
  r.refs = s.refs;
  r.score = eval::string_match_all(r.pred, r.refs);
  r.phase1_s = res.phase1_s;
  r.query_s = res.query_s;
  r.decode_s = res.decode_s;
  return r;
}

struct Planned {
  std::string task;
  int64_t length, index;
};

int eval_on_rank(const EvalArgs& a, Comm& comm) {
  const bool root = comm.rank() == 0;
  const int threads = set_threads(a.threads, comm);
  std::unique_ptr<LoadedModel> lm;
  std::unique_ptr<eval::SampleMaker> maker;
  std::vector<std::string> tasks;
  std::vector<int64_t> lengths;
  std::vector<Planned> plan;
  std::string label, fp;
  const std::string jsonl = (fs::path(a.out) / "results.jsonl").string();
  on_all_ranks(comm, [&] {
    check_same_on_all_ranks(comm, "arguments", a.describe());
    if (a.report) return;
    // Every flag, and the haystack file (only rank 0 reads it), before the slow part.
    a.method.check();
    SA_CHECK(a.samples >= 1, "--samples must be at least 1");
    SA_CHECK(a.max_new >= 0, "--max-new must be >= 0");
    tasks = eval::parse_task_list(a.tasks);
    lengths = eval::parse_lengths(a.lengths);
    for (int64_t len : lengths) a.method.at_length(len).resolved(len, comm.size());  // -b/-a
    check_device(a.device, parse_kv_type(a.method.kv_type.c_str()));
    if (root && !a.haystack.empty())
      check_regular_file(a.haystack, "haystack file", kMaxTextFileBytes);
    if (root && a.progress != "off") print_loading_line(a.model, comm.size(), threads, a.device);
    lm = load_model_and_tokenizer(a.model, "", a.weights_type);
    for (int64_t len : lengths) {
      SA_CHECK(len <= lm->model.config.max_positions, "--length ", len,
               " exceeds the model's context of ", lm->model.config.max_positions, " tokens");
    }
    label = a.label.empty() ? a.method.label(comm.size()) : a.label;
    fp = fingerprint(a, lm->tokenizer);
    if (!root) return;
    maker = std::make_unique<eval::SampleMaker>(make_env(a, lm->tokenizer));
    if (a.dump) return;
    make_dir(a.out);
    bool dropped = false;
    std::set<std::string> done;
    for (const Record& r : eval::read_records(jsonl, &dropped)) done.insert(r.key());
    if (dropped)
      std::fprintf(stderr, "note: %s ended mid-line (an interrupted run); that line is ignored\n",
                   jsonl.c_str());
    int64_t already = 0;
    for (int64_t len : lengths) {
      for (const auto& t : tasks) {
        for (int i = 0; i < a.samples; ++i) {
          Record probe;
          probe.id = t + "/" + std::to_string(len) + "/" + std::to_string(i);
          probe.method = label;
          probe.fingerprint = fp;
          if (done.count(probe.key())) {
            ++already;
          } else {
            plan.push_back({t, len, i});
          }
        }
      }
    }
    SA_CHECK(already == 0 || a.resume, jsonl, " already holds ", already, " of these samples for '",
             label, "'; pass --resume to skip them, or another --out");
    if (already)
      std::fprintf(stderr, "resume: %lld sample(s) already done, %zu to run\n",
                   static_cast<long long>(already), plan.size());
  });
  if (a.report || a.dump) {
    on_all_ranks(comm, [&] {
      if (!root) return;
      if (a.report) {
        write_summary(a.out, /*to_file=*/false);
      } else {
        make_dir(a.out);
        dump_samples(*maker, tasks, lengths, a.samples,
                     (fs::path(a.out) / "samples.jsonl").string());
      }
    });
    return 0;
  }
  unsigned long long n_plan = plan.size();
  comm.broadcast(&n_plan, sizeof n_plan, 0);

  const std::unique_ptr<Backend> backend = make_backend(a.device, *lm, comm);
  const std::unique_ptr<TensorComm> tensors = connect_ranks(comm, *backend);
  const Tokenizer& tok = lm->tokenizer;
  std::vector<double> plan_work;
  for (const Planned& pl : plan) {  // rank 0's plan (the others have none)
    RunConfig rc = a.method.at_length(pl.length).resolved(pl.length, comm.size());
    if (rc.chunk == 0) rc.chunk = backend->preferred_chunk();
    plan_work.push_back(
        ContextEncoder::slowest_rank_work(rc, lm->model.config, pl.length, comm.size()));
  }
  EvalProgress progress(std::move(plan_work), isatty(STDERR_FILENO) != 0);
  double score_sum = 0;
  for (unsigned long long p = 0; p < n_plan; ++p) {
    // Rank 0 makes the sample (only it needs the word list and the haystack) and sends the ids.
    Sample s;
    on_all_ranks(comm, [&] {
      if (root) s = maker->make(plan[p].task, plan[p].length, plan[p].index);
    });
    const int limit = a.max_new > 0 ? std::min(a.max_new, s.max_new_tokens) : s.max_new_tokens;
    std::vector<long long> meta = {static_cast<long long>(s.length), limit};
    broadcast_vector(comm, meta, 0);
    broadcast_vector(comm, s.context_ids, 0);
    broadcast_vector(comm, s.query_ids, 0);
    const int64_t n_ctx = static_cast<int64_t>(s.context_ids.size());
    RunConfig rc;
    on_all_ranks(comm, [&] {
      const int64_t total = n_ctx + static_cast<int64_t>(s.query_ids.size()) + meta[1];
      SA_CHECK(total <= lm->model.config.max_positions, "a sample needs ", total,
               " positions; the model has ", lm->model.config.max_positions);
      rc = a.method.at_length(meta[0]).resolved(n_ctx, comm.size());
    });
    GenerateRequest req;
    req.context = s.context_ids;
    req.query = s.query_ids;
    req.max_new_tokens = static_cast<int>(meta[1]);
    req.is_end = [&](int id) { return tok.is_eog(id); };
    const GenerateResult res = generate(*backend, comm, rc, req, tensors.get());
    on_all_ranks(comm, [&] {
      if (!root) return;
      Record r = make_record(s, rc, res, tok);
      r.method = label;
      r.fingerprint = fp;
      r.attn = a.method.attn;
      r.ranks = comm.size();
      r.max_new_tokens = static_cast<int>(meta[1]);
      eval::append_record(jsonl, r);
      score_sum += r.score;
      if (a.progress != "off") {
        progress.sample_done(r.id, r.score, r.phase1_s + r.query_s + r.decode_s,
                             score_sum / static_cast<double>(p + 1));
      }
    });
  }
  on_all_ranks(comm, [&] {
    if (root) write_summary(a.out, /*to_file=*/true);
  });
  return 0;
}

}  // namespace

std::function<int()> add_eval_command(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand(
      "eval",
      "Long-context accuracy with RULER-style tasks (needle in a haystack, variable tracking,\n"
      "common and frequent words) and BABILong-style ones (qa1-qa3: bAbI-like facts in prose),\n"
      "made offline at a target token length with the model's own tokenizer and chat template.\n"
      "Every rank runs every sample (use mpirun for star/ring over several ranks); rank 0 scores\n"
      "(string_match_all) and appends to OUT/results.jsonl, then prints the task x method table\n"
      "of every result in that file and writes OUT/summary.md.");
  add_model_option(*cmd, a->model, /*random_ok=*/false);
  cmd->add_option("--tasks", a->tasks,
                  "Comma-separated: niah_single_1/2/3, niah_multikey_1/2/3, niah_multivalue, "
                  "niah_multiquery, vt, cwe, fwe (or ruler: these 11), qa1, qa2, qa3 (or "
                  "babilong: these 3), or all")
      ->capture_default_str();
  cmd->add_option("-l,--length", a->lengths,
                  "Target length(s) in tokens, comma-separated (context + query + answer)")
      ->capture_default_str();
  cmd->add_option("--samples", a->samples, "Samples per task per length")->capture_default_str();
  cmd->add_option("--seed", a->seed, "Seed of the sample generator (same seed, same samples)")
      ->check(non_negative_integer())
      ->capture_default_str();
  cmd->add_option("-b,--block-size", a->method.block,
                  "Star block size: L/k (target length / k), a token count, or auto (context / "
                  "ranks). The default is the paper's L/4, not generate's context / ranks, so "
                  "that a column of the tables means the same blocks on any number of ranks")
      ->capture_default_str();
  cmd->add_option("-a,--anchor-size", a->method.anchor,
                  "Star anchor size: B (= block size), B/k, or a token count; 0 = no anchor (the "
                  "paper's ablation)")
      ->capture_default_str();
  add_context_options(*cmd, a->context_flags, nullptr);
  cmd->add_option(
         "--max-new", a->max_new,
         "Cap on generated tokens per sample; 0 = the task's (niah 128, vt 30, cwe/fwe 120, "
         "qa 16)")
      ->capture_default_str();
  cmd->add_option("-o,--out", a->out, "Folder for results.jsonl, summary.md (and samples.jsonl)")
      ->capture_default_str();
  cmd->add_flag("--resume", a->resume,
                "Skip samples already in OUT/results.jsonl for this method and settings");
  cmd->add_option(
      "--label", a->label,
      "Column name of this run in the tables (default from --attn, -b, -a, and \" kv=fp8\" "
      "with --kv-type fp8)");
  cmd->add_option("--haystack", a->haystack,
                  "Prose for the essay haystack (niah_single_2/3, multikey_1, multivalue, "
                  "multiquery, qa1-qa3): a regular text file of at most 1 GiB, or a .json with a "
                  "\"text\" field (RULER's PaulGrahamEssays.json). Default: the King James Bible "
                  "from Debian's bible-kjv");
  cmd->add_option("--wordlist", a->wordlist,
                  "Word list for keys and cwe, one word per line (Debian's wamerican by default)")
      ->capture_default_str();
  cmd->add_option("--system", a->system,
                  "System message for the chat template; empty = the template's own default");
  add_chat_template_option(*cmd, a->chat_template, "Chat template to use instead of the model's");
  cmd->add_flag("--faithful", a->faithful,
                "Reproduce Star Attention's RULER quirks (\"You is a helpful assistant\", cwe "
                "example as a second prompt, cwe 300/30 repeats at >= 4K, fwe over-length)");
  cmd->add_flag("--dump-samples", a->dump,
                "Write the samples to OUT/samples.jsonl (RULER's fields) and stop; runs no model");
  cmd->add_flag("--report", a->report,
                "Only print the tables of OUT/results.jsonl (writes nothing; e.g. -o "
                "tests/fixtures/eval/smollm2_2048 for the tables of docs/ACCURACY.md)");
  add_threads_and_device_options(*cmd, a->threads, a->device);
  add_weights_type_option(*cmd, a->weights_type);
  cmd->add_option("--progress", a->progress,
                  "Progress and ETA on stderr: auto/on (redrawn on a terminal, a line per sample "
                  "otherwise) or off")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->capture_default_str();
  return [a]() {
    const ContextFlags& f = a->context_flags;
    a->method.attn = f.attn;
    a->method.anchor_mode = f.anchor_mode;
    a->method.anchor_source = f.anchor_source;
    a->method.anchor_seed = f.anchor_seed;
    a->method.chunk = f.chunk;
    a->method.kv_type = f.kv_type;
    return run_on_default_comm([&](Comm& comm) { return eval_on_rank(*a, comm); });
  };
}

}  // namespace starattn::app
