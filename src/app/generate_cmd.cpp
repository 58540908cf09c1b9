#include "app/generate_cmd.h"

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <tuple>

#include "app/answer_output.h"
#include "app/chat_session.h"
#include "app/common.h"
#include "app/kv_report.h"
#include "app/ranks.h"
#include "backend/cpu/blas_core.h"
#include "comm/comm.h"
#include "engine/generate.h"
#include "io/text_file.h"
#include "starattn/error.h"
#include "tokenizer/conversation.h"
#include "tokenizer/prompt.h"

namespace starattn::app {
namespace {

struct GenerateArgs {
  std::string model, tokenizer;
  std::string prompt, prompt_file, context_file, query, system, chat_template;
  int n_predict = 128;
  SamplerOptions sampler;
  int logprobs = 0;
  std::vector<std::string> stops;
  bool interactive = false;
  int64_t ctx_size = 0;
  bool chat = false;
  bool json = false;
  int threads = 0;
  std::string device = "cpu";
  RunConfig run;
  ContextFlags context_flags;
  std::string progress = "auto";
  std::string weights_type = "native";

  // Everything that must agree across ranks, as one line.
  std::string describe() const {
    std::ostringstream s;
    s << model << '|' << tokenizer << '|' << prompt << '|' << prompt_file << '|' << context_file
      << '|' << query << '|' << system << '|' << n_predict << '|' << sampler.temperature << '|'
      << sampler.top_k << '|' << sampler.top_p << '|' << sampler.seed << '|' << chat << '|'
      << device << '|' << weights_type << '|' << run.describe();
    s << '|' << sampler.min_p << '|' << sampler.repeat_penalty << '|' << sampler.repeat_last_n
      << '|' << logprobs << '|' << interactive << '|' << ctx_size << '|' << stops.size();
    for (const std::string& stop : stops) s << '|' << stop.size() << ':' << stop;
    s << '|' << chat_template;
    return s.str();
  }
};

// Regular files up to kMaxTextFileBytes: /dev/zero, a FIFO or a directory is refused, not read.
std::string read_text_file(const std::string& path, const char* what) {
  return read_regular_file(path, what, kMaxTextFileBytes);
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

int generate_on_rank(const GenerateArgs& a, Comm& comm) {
  const bool root = comm.rank() == 0;
  const int threads = set_threads(a.threads, comm);
  const ProgressStyle style = root ? progress_style(a.progress, comm.size()) : ProgressStyle::Off;
  Timings t;
  std::unique_ptr<LoadedModel> lm;
  std::unique_ptr<Backend> backend;
  std::vector<int> ctx_ids, q_ids;
  std::unique_ptr<Conversation> conversation;  // --interactive
  RunConfig rc;
  std::string context, query;
  // Every flag and input file first, agreed on before the slow load.
  on_all_ranks(comm, [&] {
    check_same_on_all_ranks(comm, "arguments", a.describe());
    fault_point(comm, "args");
    SA_CHECK(a.n_predict >= 0, "-n must be >= 0, got ", a.n_predict);
    Sampler check(a.sampler);  // validates the sampling flags before the slow load
    SA_CHECK(a.logprobs >= 0 && a.logprobs <= kMaxTopLogprobs, "--logprobs must be in 0..",
             kMaxTopLogprobs, ", got ", a.logprobs);
    SA_CHECK(a.logprobs == 0 || a.json,
             "--logprobs needs --json (the log-probabilities are part "
             "of the JSON output)");
    const StopStrings check_stops(a.stops);  // validates --stop
    a.run.check();                           // -b/-a/--chunk
    check_device(a.device, a.run.kv_type);
    if (!a.interactive) {
      std::tie(context, query) = prompt_texts(a);
    } else if (!a.context_file.empty()) {
      context = read_text_file(a.context_file, "context file");
      SA_CHECK(!context.empty(), "the context file ", a.context_file, " is empty");
    }
  });
  if (style != ProgressStyle::Off) print_loading_line(a.model, comm.size(), threads, a.device);
  on_all_ranks(comm, [&] {
    const double t0 = now_seconds();
    fault_point(comm, "load");
    lm = load_model_and_tokenizer(a.model, a.tokenizer, a.weights_type);
    SA_CHECK(lm->tokenizer.vocab_size() > 0, a.model,
             " has no tokenizer of its own: pass --tokenizer FILE (a GGUF or a tokenizer.json)");
    const Tokenizer& tok = lm->tokenizer;
    if (a.interactive) {
      conversation = std::make_unique<Conversation>(
          tok, ChatTemplate::for_tokenizer(tok, a.chat_template), std::move(context), a.system);
      ctx_ids = conversation->context_ids();
    } else {
      PromptIds ids =
          a.chat || !a.chat_template.empty()
              ? build_prompt_ids(tok, context, query,
                                 ChatTemplate::for_tokenizer(tok, a.chat_template), a.system)
              : build_prompt_ids(tok, context, query, false, a.system);
      context = std::string();  // the text may be large; only its tokens are needed from here
      ctx_ids = std::move(ids.context);
      q_ids = std::move(ids.query);
      const int64_t total = static_cast<int64_t>(ctx_ids.size() + q_ids.size()) + a.n_predict;
      SA_CHECK(total <= lm->model.config.max_positions, "context (", ctx_ids.size(),
               " tokens) + query (", q_ids.size(), ") + -n ", a.n_predict,
               " exceeds the model's context of ", lm->model.config.max_positions,
               " tokens; shorten the input or lower -n");
    }
    rc = a.run.resolved(static_cast<int64_t>(ctx_ids.size()), comm.size());
    fault_point(comm, "backend");
    backend = make_backend(a.device, *lm, comm);
    t.load_s = now_seconds() - t0;
    t.weight_bytes = backend->weight_bytes();
    t.weights = describe_weights(*backend);
  });
  const Tokenizer& tok = lm->tokenizer;
  const bool prompt_as_query = !a.interactive && a.context_file.empty();  // -p or -f
  if (root && comm.size() > 1 && rc.attn != AttnMode::Dense && prompt_as_query) {
    // Where the document ends and the question starts is not known in a bare prompt, and a
    // guess would put part of the question into the approximated context: the prompt stays
    // the query, which phase 2 runs exactly, with its KV on rank 0.
    std::fprintf(stderr,
                 "note: -p/-f run the whole prompt as the query (phase 2, exact, its KV on rank "
                 "0): nothing is spread over the %d ranks. To spread a long document, pass it as "
                 "--context-file and the question as --query\n",
                 comm.size());
  } else if (root && rc.attn == AttnMode::Star && !ctx_ids.empty()) {
    const int64_t blocks =
        (static_cast<int64_t>(ctx_ids.size()) + rc.block_size - 1) / rc.block_size;
    if (blocks < comm.size())
      std::fprintf(stderr, "note: %lld block(s) for %d ranks; ranks %lld..%d hold no context\n",
                   static_cast<long long>(blocks), comm.size(), static_cast<long long>(blocks),
                   comm.size() - 1);
  }

  if (a.interactive) {
    ChatSettings chat;
    chat.first_message = a.query;
    chat.n_predict = a.n_predict;
    chat.sampler = a.sampler;
    chat.logprobs = a.logprobs;
    chat.stops = a.stops;
    chat.json = a.json;
    chat.progress = style;
    chat.load_s = t.load_s;
    chat.ctx_size = a.ctx_size;
    return run_chat(comm, *lm, *backend, rc, *conversation, chat);
  }
  const size_t chunk = rc.chunk > 0 ? rc.chunk : backend->preferred_chunk();
  ProgressBar bar1("phase 1", ctx_ids.size() > 2 * chunk ? style : ProgressStyle::Off, comm.size());
  ProgressBar bar2("query", q_ids.size() > 2 * chunk ? style : ProgressStyle::Off, 1);
  AnswerStream answer(*lm, a.stops, root && !a.json);
  GenerateRequest req;
  req.context = std::move(ctx_ids);
  req.query = std::move(q_ids);
  req.max_new_tokens = a.n_predict;
  req.sampler = a.sampler;
  req.logprobs = a.logprobs;
  req.is_end = [&](int id) { return tok.is_eog(id); };
  req.on_phase1_progress = [&](const Progress& p) {
    bar1.update(p);
    if (p.tokens_total > 0 && p.tokens_done == p.tokens_total) bar1.finish();
  };
  req.on_query_progress = [&](const Progress& p) {
    bar2.update(p);
    if (p.tokens_done == p.tokens_total) bar2.finish();
  };
  req.on_token = [&](int id) { answer.on_token(id); };
  req.should_stop = [&] { return answer.stopped(); };
  // Outside on_all_ranks: NCCL's setup is collective, and a failure in it must end the job
  // (run_on_ranks) rather than wait for an agreement the other ranks cannot reach.
  fault_point(comm, "tensor_comm");
  const std::unique_ptr<TensorComm> tensors = connect_ranks(comm, *backend);
  fault_point(comm, "generate");
  const GenerateResult res = generate(*backend, comm, rc, req, tensors.get());
  t.phase1_s = res.phase1_s;
  t.query_s = res.query_s;
  t.decode_s = res.decode_s;
  t.comm_s = res.comm_s;
  if (!root) return 0;
  answer.finish();
  print_result(a.json, {rc, comm.size(), req.context.size(), req.query.size()}, res, answer, tok, t,
               [&] {
                 nlohmann::json extra = {{"weights_type", a.weights_type},
                                         {"blas", cpu::blas_description()}};
                 if (a.json)
                   extra.update(kv_memory_json(*backend, rc.kv_type, static_cast<int>(chunk)));
                 return extra;
               }());
  return 0;
}

}  // namespace

std::function<int()> add_generate_command(CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  CLI::App* cmd = app.add_subcommand(
      "generate",
      "Generate text from a prompt, or answer a query about a long context file.\n"
      "Under `mpirun -np H`, the context is spread over H ranks (--attn star or ring).");
  add_model_option(*cmd, a->model, /*random_ok=*/true);
  cmd->add_option("--tokenizer", a->tokenizer,
                  "Tokenizer to use instead of the model's: a GGUF file or a tokenizer.json "
                  "(random models have none of their own)");
  auto* p = cmd->add_option("-p,--prompt", a->prompt, "Prompt text");
  auto* f = cmd->add_option("-f,--file", a->prompt_file,
                            "Read the prompt from a file (a regular file of at most 1 GiB)");
  auto* c = cmd->add_option("--context-file", a->context_file,
                            "Long context (a document) to answer --query about: a regular file "
                            "of at most 1 GiB");
  auto* q = cmd->add_option(
      "--query", a->query, "Question about --context-file (with --interactive: the first message)");
  p->excludes(f)->excludes(c);
  f->excludes(c);
  q->needs(c);
  auto* i = cmd->add_flag(
      "-i,--interactive", a->interactive,
      "Chat: read user messages from stdin, one per line, until end of input or /exit. The "
      "chat template renders each turn; the KV cache is kept, so a turn runs only its own "
      "tokens after the earlier ones, and --context-file (encoded once, spread over the ranks) "
      "opens the first message. Implies --chat; the conversation may use all of the model's "
      "context. With --json, one object per turn, plus \"turn\" and \"conversation_tokens\" (all "
      "tokens so far, the context's included)");
  i->excludes(p)->excludes(f);
  cmd->add_option("--ctx-size", a->ctx_size,
                  "With --interactive: the most tokens the whole chat may hold, context "
                  "included (the KV cache is sized for it); 0 = the model's context")
      ->needs(i)
      ->capture_default_str();
  cmd->add_option("-n,--n-predict", a->n_predict, "Most tokens to generate (stops early at EOS)")
      ->capture_default_str();
  cmd->add_option("--temp", a->sampler.temperature, "Sampling temperature; 0 = greedy")
      ->capture_default_str();
  cmd->add_option("--top-k", a->sampler.top_k, "Keep the k most likely tokens; 0 = all")
      ->capture_default_str();
  cmd->add_option("--top-p", a->sampler.top_p, "Nucleus sampling threshold in (0, 1]")
      ->capture_default_str();
  cmd->add_option("--min-p", a->sampler.min_p,
                  "Drop tokens less likely than min-p times the most likely one, in [0, 1]; "
                  "0 = off")
      ->capture_default_str();
  cmd->add_option("--repeat-penalty", a->sampler.repeat_penalty,
                  "Divide (or, if negative, multiply) the logits of tokens seen in the last "
                  "--repeat-last-n tokens (prompt included) by this; 1 = off. Applies to greedy "
                  "decoding too. Order, as Hugging Face: penalty, temperature, top-k, top-p, min-p")
      ->capture_default_str();
  cmd->add_option("--repeat-last-n", a->sampler.repeat_last_n,
                  "Tokens --repeat-penalty looks back over, prompt included; 0 = all")
      ->capture_default_str();
  cmd->add_option("--seed", a->sampler.seed, "Random seed for sampling")
      ->check(non_negative_integer())
      ->capture_default_str();
  cmd->add_flag("--chat", a->chat,
                "Wrap the prompt in the model's chat template (use with instruct models)");
  cmd->add_option("--system", a->system, "System message for --chat");
  add_chat_template_option(*cmd, a->chat_template,
                           "Chat template to use instead of the model's (implies --chat)");
  cmd->add_option("--stop", a->stops,
                  "Stop when the text contains this string (repeatable; not printed, and nothing "
                  "that could still become one is shown early). A newline in bash: --stop $'\\n'")
      ->allow_extra_args(false);
  cmd->add_option("--logprobs", a->logprobs,
                  "With --json: for each generated token its logprob and the N most likely "
                  "tokens (0..20; 0 = off), from the model's own distribution (natural log of "
                  "the softmax of the raw logits, before the penalty, temperature and cuts)")
      ->capture_default_str();
  cmd->add_flag("--json", a->json,
                "Print one JSON object instead of text: text, tokens (every generated id), "
                "stop_reason (eos, stop or length), stop_string (when stopped by one), attn, "
                "ranks, block_size, anchor_size, anchor_mode (star), context_tokens, "
                "query_tokens, generated_tokens, load_s, phase1_s, phase1_tok_s, query_s, "
                "decode_s, decode_ms_per_token, phase2_comm_s, kv_type, kv_bytes_per_token, "
                "max_context_tokens ({bf16, fp8}: the most tokens whose KV fits on the device), "
                "and with --logprobs N: logprobs "
                "(per token: id, token, bytes, logprob, top_logprobs [{id, token, bytes, "
                "logprob}])");
  add_threads_and_device_options(*cmd, a->threads, a->device);
  add_weights_type_option(*cmd, a->weights_type);
  add_context_options(*cmd, a->context_flags, &a->run);
  cmd->add_option("--progress", a->progress,
                  "Progress on stderr (a loading line, then phase 1 and long queries): auto (a "
                  "bar on a terminal; under several ranks a line every 10 s, as mpirun gives the "
                  "ranks no terminal), on (a bar on a terminal, else lines), off")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->capture_default_str();
  cmd->callback([cmd, a]() {
    if (a->interactive) return;  // messages come from stdin; --context-file is optional
    if (cmd->count("--prompt") + cmd->count("--file") + cmd->count("--context-file") == 0)
      throw CLI::RequiredError("one of -p, -f or --context-file with --query");
    if (cmd->count("--context-file") > 0 && cmd->count("--query") == 0)
      throw CLI::RequiredError("--query (a question about --context-file)");
  });
  return [a]() {
    a->context_flags.apply(a->run);
    return run_on_default_comm([&](Comm& comm) { return generate_on_rank(*a, comm); });
  };
}

}  // namespace starattn::app
