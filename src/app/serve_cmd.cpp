#include "app/serve_cmd.h"

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>

#include "app/common.h"
#include "app/kv_report.h"
#include "app/ranks.h"
#include "comm/comm.h"
#include "engine/engine_memory.h"
#include "engine/run_config.h"
#include "serve/http_server.h"
#include "serve/plan_runner.h"
#include "serve/scheduler.h"
#include "starattn/error.h"
#include "tokenizer/chat.h"

namespace starattn::app {
namespace {

struct ServeArgs {
  std::string model, tokenizer, alias, chat_template;
  std::string device = "cpu", weights_type = "native";
  int threads = 0;
  RunConfig run;
  ContextFlags context_flags;
  serve::HttpOptions http;
  serve::ServeOptions sched;
  double context_memory_gib = 0;  // per rank; 0 = what the planner says is free
  double max_body_mib = 64;

  std::string describe() const {
    std::ostringstream s;
    s << model << '|' << tokenizer << '|' << chat_template << '|' << device << '|' << weights_type
      << '|' << run.describe() << '|' << sched.parallel << '|' << sched.step_tokens << '|'
      << context_memory_gib;
    return s.str();
  }
};

// SIGINT/SIGTERM: the first asks for a graceful stop, the second for a quick one.
std::atomic<int> g_signals{0};
extern "C" void on_signal(int) {
  g_signals.fetch_add(1);
}

// The chat template as a renderer (the model's, or --chat-template), or none when the model has
// no template starattn can render (then only /v1/completions serves).
serve::RenderChat chat_renderer(const Tokenizer& tok, const std::string& override_template,
                                std::string* why) {
  try {
    const ChatTemplate t = ChatTemplate::for_tokenizer(tok, override_template);
    return [t](const std::vector<ChatMessage>& m, bool gen) { return t.render(m, gen); };
  } catch (const Error& e) {
    if (!override_template.empty()) throw;  // asked for by name: a bad one is an error
    *why = e.what();
    return nullptr;
  }
}

std::string model_id(const ServeArgs& a) {
  if (!a.alias.empty()) return a.alias;
  std::filesystem::path p(a.model);
  if (p.filename().empty()) p = p.parent_path();
  return p.stem().string();
}

// The KV budget of this rank, in bytes.
size_t rank_budget(const ServeArgs& a, Backend& b) {
  if (a.context_memory_gib > 0) return static_cast<size_t>(a.context_memory_gib * (1ull << 30));
  // On a GPU what is free after the weights and workspace; on the host half of what the kernel
  // has free, leaving room for activations, the HTTP side and the rest of the machine.
  const size_t free = b.memory_available();
  return b.name() == "cpu" ? free / 2 : free;
}

int serve_on_rank(const ServeArgs& a, Comm& comm) {
  const bool root = comm.rank() == 0;
  set_threads(a.threads, comm);
  std::unique_ptr<LoadedModel> lm;
  std::unique_ptr<Backend> backend;
  std::vector<uint64_t> budgets(static_cast<size_t>(comm.size()));
  on_all_ranks(comm, [&] {
    check_same_on_all_ranks(comm, "arguments", a.describe());
    SA_CHECK(a.sched.parallel >= 1 && a.sched.parallel <= 4096, "--parallel must be in [1, 4096]");
    SA_CHECK(a.sched.max_queue >= 0, "--max-queue must be >= 0");
    SA_CHECK(a.sched.step_tokens >= 0, "--step-tokens must be >= 0");
    SA_CHECK(a.max_body_mib > 0 && a.max_body_mib <= 1 << 20,
             "--max-body must be in (0, 1048576] MiB");
    SA_CHECK(a.context_memory_gib >= 0, "--context-memory must be >= 0");
    SA_CHECK(a.http.port >= 0 && a.http.port <= 65535, "--port must be in [0, 65535]");
    (void)a.run.resolved(1, comm.size());  // checks -b, -a and --chunk before the slow load
    check_device(a.device, a.run.kv_type);
    lm = load_model_and_tokenizer(a.model, a.tokenizer, a.weights_type);
    SA_CHECK(lm->tokenizer.vocab_size() > 0, a.model,
             " has no tokenizer of its own: pass --tokenizer FILE (a GGUF or a tokenizer.json)");
    backend = make_backend(a.device, *lm, comm);
    const int step = a.sched.step_tokens > 0 ? a.sched.step_tokens : backend->preferred_chunk();
    plan_engine_memory(*backend, 0,
                       std::max(step, a.run.chunk > 0 ? a.run.chunk : backend->preferred_chunk()),
                       a.run.kv_type);
    const uint64_t mine = rank_budget(a, *backend);
    comm.allgather(&mine, budgets.data(), sizeof mine);
  });
  const std::unique_ptr<TensorComm> tensors = connect_ranks(comm, *backend);
  serve::PlanRunner runner(*backend, comm, *tensors);
  if (!root) {
    // Workers stop when rank 0 says so; a signal mpirun forwards to every rank must not end one
    // of them while the others wait for it in a collective.
    std::signal(SIGINT, SIG_IGN);
    std::signal(SIGTERM, SIG_IGN);
    serve::run_worker(runner, comm);
    return 0;
  }

  serve::ServedModel model;
  model.id = model_id(a);
  model.tok = &lm->tokenizer;
  std::string why_no_chat;
  model.render = chat_renderer(lm->tokenizer, a.chat_template, &why_no_chat);
  model.max_positions = lm->model.config.max_positions;
  model.rc = a.run;
  model.ranks = comm.size();
  serve::ContextRegistry registry;
  serve::Metrics metrics;
  serve::Scheduler scheduler(*backend, comm, runner, lm->tokenizer, registry, metrics, a.sched,
                             std::vector<size_t>(budgets.begin(), budgets.end()));
  serve::HttpServer http(a.http, model, scheduler, registry, metrics);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGPIPE, SIG_IGN);  // a client that hangs up is an error to handle, not a death
  try {
    http.start();
  } catch (const Error& e) {
    // Every other rank waits for plans: tell them to go before failing.
    serve::Plan bye;
    bye.shutdown = true;
    if (comm.size() > 1) serve::send_plan(comm, bye);
    throw AgreedFailure(e.what(), 0);
  }
  size_t least = budgets[0];
  for (uint64_t b : budgets) least = std::min<size_t>(least, b);
  std::fprintf(stderr,
               "serve: listening on http://%s:%d (model %s on %s, %d rank%s, %s attention, KV "
               "budget %.2f GiB per rank, up to %d sequences per step)\n",
               a.http.host.c_str(), http.port(), model.id.c_str(), backend->name().c_str(),
               comm.size(), comm.size() == 1 ? "" : "s", attn_mode_name(a.run.attn),
               static_cast<double>(least) / (1u << 30), a.sched.parallel);
  if (!model.render)
    std::fprintf(stderr, "serve: note: no chat endpoint (%s); /v1/completions serves\n",
                 why_no_chat.c_str());
  std::fflush(stderr);
  scheduler.run(g_signals);
  http.set_stopping();
  http.stop();
  std::fprintf(stderr, "serve: stopped\n");
  return 0;
}

}  // namespace

std::function<int()> add_serve_command(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "serve",
      "Serve the model over HTTP with an OpenAI-compatible API. A document is encoded once\n"
      "(phase 1, spread over the ranks under `mpirun -np H`) and kept; every question about it\n"
      "runs only phase 2. Rank 0 listens; concurrent questions decode together in shared steps.");
  add_model_option(*cmd, a->model, /*random_ok=*/false);
  cmd->add_option("--tokenizer", a->tokenizer,
                  "Tokenizer to use instead of the model's: a GGUF file or a tokenizer.json");
  cmd->add_option("--alias", a->alias, "Model name clients use (default: the file's name)");
  add_chat_template_option(*cmd, a->chat_template, "Chat template to use instead of the model's");
  cmd->add_option("--host", a->http.host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", a->http.port, "Port to listen on; 0 = any free port (printed)")
      ->capture_default_str();
  cmd->add_option("--api-key", a->http.api_key,
                  "Require 'Authorization: Bearer KEY' on /v1/ routes (/health and /metrics stay "
                  "open)");
  cmd->add_option("--max-body", a->max_body_mib, "Largest request body, in MiB (larger: 413)")
      ->capture_default_str();
  cmd->add_option("--parallel", a->sched.parallel, "Most sequences decoded together in one step")
      ->capture_default_str();
  cmd->add_option("--max-queue", a->sched.max_queue,
                  "Most requests waiting to start; more get 503 with Retry-After")
      ->capture_default_str();
  cmd->add_option("--step-tokens", a->sched.step_tokens,
                  "Most tokens in one phase-2 step (queries are spread over steps); 0 = --chunk")
      ->capture_default_str();
  cmd->add_option("--context-memory", a->context_memory_gib,
                  "KV budget per rank for cached contexts and sequences, in GiB; 0 = what is "
                  "free (GPU: after weights and workspace; CPU: half of the free memory)")
      ->capture_default_str();
  add_weights_type_option(*cmd, a->weights_type);
  add_threads_and_device_options(*cmd, a->threads, a->device);
  add_context_options(*cmd, a->context_flags, &a->run,
                      "while a context encodes, a running generation waits at most one chunk per "
                      "token");
  return [a]() {
    a->context_flags.apply(a->run);
    a->http.max_body = static_cast<size_t>(a->max_body_mib * (1 << 20));
    return run_on_default_comm([&](Comm& comm) { return serve_on_rank(*a, comm); });
  };
}

}  // namespace starattn::app
