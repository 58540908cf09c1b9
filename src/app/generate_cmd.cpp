#include "app/generate_cmd.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "app/common.h"
#include "app/ranks.h"
#include "backend/cpu/blas_core.h"
#include "comm/comm.h"
#include "engine/generate.h"
#include "starattn/error.h"
#include "tokenizer/prompt.h"

namespace starattn::app {
namespace {

struct GenerateArgs {
  std::string model, tokenizer;
  std::string prompt, prompt_file, context_file, query, system;
  int n_predict = 128;
  SamplerOptions sampler;
  bool chat = false;
  bool json = false;
  int threads = 0;
  std::string device = "cpu";
  RunConfig run;
  std::string attn = "star", anchor_mode = "shared";
  std::string progress = "auto";
  std::string weights_type = "native";

  // Everything that must agree across ranks, as one line.
  std::string describe() const {
    std::ostringstream s;
    s << model << '|' << tokenizer << '|' << prompt << '|' << prompt_file << '|' << context_file
      << '|' << query << '|' << system << '|' << n_predict << '|' << sampler.temperature << '|'
      << sampler.top_k << '|' << sampler.top_p << '|' << sampler.seed << '|' << chat << '|'
      << device << '|' << weights_type << '|' << run.describe();
    return s.str();
  }
};

std::string read_text_file(const std::string& path, const char* what) {
  std::ifstream f(path, std::ios::binary);
  SA_CHECK(f.good(), "cannot open ", what, " ", path);
  std::ostringstream s;
  s << f.rdbuf();
  SA_CHECK(!f.bad(), "cannot read ", what, " ", path);
  return s.str();
}

// The context and query texts from the flags (-p/-f run the whole prompt as the query).
std::pair<std::string, std::string> prompt_texts(const GenerateArgs& a) {
  if (!a.context_file.empty()) {
    std::string context = read_text_file(a.context_file, "context file");
    SA_CHECK(!context.empty(), "the context file ", a.context_file, " is empty");
    SA_CHECK(!a.query.empty(), "--query is empty: ask a question about the context");
    return {context, a.query};
  }
  std::string prompt =
      !a.prompt_file.empty() ? read_text_file(a.prompt_file, "prompt file") : a.prompt;
  SA_CHECK(!prompt.empty(), "the prompt is empty: pass -p TEXT, -f FILE or --context-file/--query");
  return {"", prompt};
}

bool want_progress(const std::string& mode) {
  if (mode == "on") return true;
  if (mode == "off") return false;
  return isatty(STDERR_FILENO) != 0;
}

struct Timings {
  double load_s = 0, phase1_s = 0, query_s = 0, decode_s = 0, comm_s = 0;
  size_t weight_bytes = 0;
  std::string weights;  // describe_weights
};

void print_result(const GenerateArgs& a, const RunConfig& rc, int ranks, size_t n_ctx,
                  size_t n_query, const std::vector<int>& out_ids, const std::string& text,
                  const std::string& stop_reason, const Timings& t) {
  const int n_gen = static_cast<int>(out_ids.size());
  // The first generated token comes from the query's logits; each later one costs a decode step.
  const int steps = std::max(n_gen - 1, 0);
  const double ms_tok = steps > 0 ? 1e3 * t.decode_s / steps : 0.0;
  if (a.json) {
    nlohmann::json j;
    j["text"] = text;
    j["tokens"] = out_ids;
    j["stop_reason"] = stop_reason;
    j["attn"] = attn_mode_name(rc.attn);
    j["ranks"] = ranks;
    if (rc.attn == AttnMode::Star) {
      j["block_size"] = rc.block_size;
      j["anchor_size"] = rc.anchor_size;
      j["anchor_mode"] = anchor_mode_name(rc.anchor);
    }
    j["context_tokens"] = n_ctx;
    j["query_tokens"] = n_query;
    j["generated_tokens"] = n_gen;
    j["load_s"] = t.load_s;
    j["phase1_s"] = t.phase1_s;
    j["phase1_tok_s"] = t.phase1_s > 0 ? n_ctx / t.phase1_s : 0.0;
    j["query_s"] = t.query_s;
    j["decode_s"] = t.decode_s;
    j["decode_ms_per_token"] = ms_tok;
    j["phase2_comm_s"] = t.comm_s;
    j["weights_type"] = a.weights_type;
    j["weight_bytes"] = t.weight_bytes;
    j["blas"] = cpu::blas_description();
    // Invalid UTF-8 from a model is replaced rather than failing the whole answer.
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return;
  }
  std::printf("\n");
  std::fflush(stdout);
  std::fprintf(stderr,
               "timing: %s on %d rank%s | load %.2f s | phase 1: %zu context tokens in %.2f s "
               "(%.1f tok/s) | query: %zu tokens in %.3f s | decode: %d tokens, %.1f ms/token "
               "(%.1f tok/s) | phase-2 comm %.3f s | weights %s\n",
               attn_mode_name(rc.attn), ranks, ranks == 1 ? "" : "s", t.load_s, n_ctx, t.phase1_s,
               t.phase1_s > 0 ? n_ctx / t.phase1_s : 0.0, n_query, t.query_s, n_gen, ms_tok,
               ms_tok > 0 ? 1e3 / ms_tok : 0.0, t.comm_s, t.weights.c_str());
}

int generate_on_rank(const GenerateArgs& a, Comm& comm) {
  const bool root = comm.rank() == 0;
  set_threads(a.threads);
  Timings t;
  std::unique_ptr<LoadedModel> lm;
  std::unique_ptr<Backend> backend;
  std::vector<int> ctx_ids, q_ids;
  RunConfig rc;
  on_all_ranks(comm, [&] {
    check_same_on_all_ranks(comm, "arguments", a.describe());
    SA_CHECK(a.n_predict >= 0, "-n must be >= 0, got ", a.n_predict);
    Sampler check(a.sampler);  // validates --temp/--top-k/--top-p before the slow load
    const double t0 = now_seconds();
    lm = load_model_and_tokenizer(a.model, a.tokenizer, a.weights_type);
    SA_CHECK(lm->tokenizer.vocab_size() > 0, a.model,
             " has no tokenizer of its own: pass --tokenizer FILE (a GGUF or a tokenizer.json)");
    const Tokenizer& tok = lm->tokenizer;
    const auto [context, query] = prompt_texts(a);
    PromptIds ids = build_prompt_ids(tok, context, query, a.chat, a.system);
    ctx_ids = std::move(ids.context);
    q_ids = std::move(ids.query);
    const int64_t total = static_cast<int64_t>(ctx_ids.size() + q_ids.size()) + a.n_predict;
    SA_CHECK(total <= lm->model.config.max_positions, "context (", ctx_ids.size(),
             " tokens) + query (", q_ids.size(), ") + -n ", a.n_predict,
             " exceeds the model's context of ", lm->model.config.max_positions,
             " tokens; shorten the input or lower -n");
    rc = a.run.resolved(static_cast<int64_t>(ctx_ids.size()), comm.size());
    backend = make_backend(a.device, *lm, comm);
    t.load_s = now_seconds() - t0;
    t.weight_bytes = backend->weight_bytes();
    t.weights = describe_weights(*backend);
  });
  const Tokenizer& tok = lm->tokenizer;
  if (root && rc.attn == AttnMode::Star && !ctx_ids.empty()) {
    const int64_t blocks =
        (static_cast<int64_t>(ctx_ids.size()) + rc.block_size - 1) / rc.block_size;
    if (blocks < comm.size())
      std::fprintf(stderr, "note: %lld block(s) for %d ranks; ranks %lld..%d hold no context\n",
                   static_cast<long long>(blocks), comm.size(), static_cast<long long>(blocks),
                   comm.size() - 1);
  }

  const bool show = root && want_progress(a.progress);
  const size_t chunk = rc.chunk > 0 ? rc.chunk : backend->preferred_chunk();
  ProgressBar bar1("phase 1", show && ctx_ids.size() > 2 * chunk);
  ProgressBar bar2("query", show && q_ids.size() > 2 * chunk);
  StreamDecoder stream(tok);
  std::string out_text;
  GenerateRequest req;
  req.context = std::move(ctx_ids);
  req.query = std::move(q_ids);
  req.max_new_tokens = a.n_predict;
  req.sampler = a.sampler;
  req.is_end = [&](int id) { return tok.is_eog(id); };
  req.on_phase1_progress = [&](int64_t d, int64_t n) {
    bar1.update(d, n);
    if (d == n) bar1.finish();
  };
  req.on_query_progress = [&](int64_t d, int64_t n) {
    bar2.update(d, n);
    if (d == n) bar2.finish();
  };
  req.on_token = [&](int id) {
    const std::string piece =
        token_has_text(*lm, id) ? stream.push(id) : "<" + std::to_string(id) + ">";
    out_text += piece;
    if (!a.json) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    }
  };
  // Outside on_all_ranks: NCCL's setup is collective, and a failure in it must end the job
  // (run_on_ranks) rather than wait for an agreement the other ranks cannot reach.
  const std::unique_ptr<TensorComm> tensors = connect_ranks(comm, *backend);
  const GenerateResult res = generate(*backend, comm, rc, req, tensors.get());
  t.phase1_s = res.phase1_s;
  t.query_s = res.query_s;
  t.decode_s = res.decode_s;
  t.comm_s = res.comm_s;
  if (!root) return 0;
  const std::string tail = stream.flush();
  out_text += tail;
  if (!a.json) std::fwrite(tail.data(), 1, tail.size(), stdout);
  print_result(a, rc, comm.size(), req.context.size(), req.query.size(), res.tokens, out_text,
               res.stopped_at_end ? "eos" : "length", t);
  return 0;
}

int run_generate(const GenerateArgs& a) {
  std::unique_ptr<Comm> comm = make_default_comm();
  return run_on_ranks(*comm, [&] { return generate_on_rank(a, *comm); });
}

}  // namespace

std::function<int()> add_generate_command(CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  a->model = default_model_path();
  CLI::App* cmd = app.add_subcommand(
      "generate",
      "Generate text from a prompt, or answer a query about a long context file.\n"
      "Under `mpirun -np H`, the context is spread over H ranks (--attn star or ring).");
  cmd->add_option("-m,--model", a->model,
                  "Model: a GGUF file, a Hugging Face folder (config.json, *.safetensors, "
                  "tokenizer.json), or random:llama-3.1-8b (random weights, GPU only)")
      ->capture_default_str();
  cmd->add_option("--tokenizer", a->tokenizer,
                  "Tokenizer to use instead of the model's: a GGUF file or a tokenizer.json "
                  "(random models have none of their own)");
  auto* p = cmd->add_option("-p,--prompt", a->prompt, "Prompt text");
  auto* f = cmd->add_option("-f,--file", a->prompt_file, "Read the prompt from a file");
  auto* c = cmd->add_option("--context-file", a->context_file,
                            "Long context (a document) to answer --query about");
  auto* q = cmd->add_option("--query", a->query, "Question about --context-file");
  p->excludes(f)->excludes(c);
  f->excludes(c);
  c->needs(q);
  q->needs(c);
  cmd->add_option("-n,--n-predict", a->n_predict, "Most tokens to generate (stops early at EOS)")
      ->capture_default_str();
  cmd->add_option("--temp", a->sampler.temperature, "Sampling temperature; 0 = greedy")
      ->capture_default_str();
  cmd->add_option("--top-k", a->sampler.top_k, "Keep the k most likely tokens; 0 = all")
      ->capture_default_str();
  cmd->add_option("--top-p", a->sampler.top_p, "Nucleus sampling threshold in (0, 1]")
      ->capture_default_str();
  cmd->add_option("--seed", a->sampler.seed, "Random seed for sampling")->capture_default_str();
  cmd->add_flag("--chat", a->chat,
                "Wrap the prompt in the model's chat template (use with instruct models)");
  cmd->add_option("--system", a->system, "System message for --chat");
  cmd->add_flag("--json", a->json, "Print one JSON object (text, tokens, timings) instead of text");
  cmd->add_option("-t,--threads", a->threads, "CPU threads; 0 = all cores")->capture_default_str();
  cmd->add_option("--device", a->device,
                  "cpu, cuda (one GPU per rank, by local rank) or auto (cuda when present)")
      ->check(CLI::IsMember({"cpu", "cuda", "auto"}))
      ->capture_default_str();
  add_weights_type_option(*cmd, a->weights_type);
  cmd->add_option("--attn", a->attn,
                  "Context attention: star (Star Attention), ring (exact, context-parallel) or "
                  "dense (exact, one host)")
      ->check(CLI::IsMember({"star", "ring", "dense"}))
      ->capture_default_str();
  cmd->add_option("-b,--block-size", a->run.block_size,
                  "Star block size B in tokens (>= 1); -1 = context tokens / ranks, rounded up")
      ->capture_default_str();
  cmd->add_option("-a,--anchor-size", a->run.anchor_size,
                  "Star anchor size A in tokens (0 <= A <= B); -1 = B; 0 = no anchor")
      ->capture_default_str();
  cmd->add_option("--anchor-mode", a->anchor_mode,
                  "Where a rank gets the anchor's KV: recompute (per block, as the paper), "
                  "shared (once per rank), broadcast (sent by rank 0 layer by layer)")
      ->check(CLI::IsMember({"recompute", "shared", "broadcast"}))
      ->capture_default_str();
  cmd->add_option("--chunk", a->run.chunk,
                  "Tokens per forward call in long prefills; 0 = the device's default (CPU 512, "
                  "GPU 8192)")
      ->capture_default_str();
  cmd->add_option("--progress", a->progress,
                  "Prefill progress bar on stderr: auto (if a terminal), on, off")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->capture_default_str();
  cmd->callback([cmd]() {
    if (cmd->count("--prompt") + cmd->count("--file") + cmd->count("--context-file") == 0)
      throw CLI::RequiredError("one of -p, -f or --context-file with --query");
  });
  return [a]() {
    a->run.attn = parse_attn_mode(a->attn);
    a->run.anchor = parse_anchor_mode(a->anchor_mode);
    return run_generate(*a);
  };
}

}  // namespace starattn::app
