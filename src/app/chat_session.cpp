#include "app/chat_session.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>

#include "app/answer_output.h"
#include "app/ranks.h"
#include "engine/engine.h"
#include "engine/generate.h"
#include "starattn/error.h"

namespace starattn::app {
namespace {

// The next user message from stdin (rank 0); false at end of input or "/exit".
bool read_message(std::string& line) {
  const bool tty = isatty(STDIN_FILENO) != 0;
  for (;;) {
    if (tty) {
      std::fputs("> ", stdout);
      std::fflush(stdout);
    }
    if (!std::getline(std::cin, line)) return false;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line == "/exit") return false;
    // Blank lines are skipped (a template that trims messages would render them as nothing).
    if (line.find_first_not_of(" \t") != std::string::npos) return true;
  }
}

}  // namespace

int run_chat(Comm& comm, const LoadedModel& lm, Backend& backend, const RunConfig& rc,
             Conversation& conv, const ChatSettings& s) {
  const bool root = comm.rank() == 0;
  const Tokenizer& tok = lm.tokenizer;
  const std::vector<int>& context = conv.context_ids();
  const int64_t n_ctx = static_cast<int64_t>(context.size());
  const int64_t model_positions = lm.model.config.max_positions;
  const int64_t max_positions = s.ctx_size > 0 ? s.ctx_size : model_positions;
  const std::string limit = s.ctx_size > 0 ? "the --ctx-size" : "the model's context";
  on_all_ranks(comm, [&] {
    SA_CHECK(s.ctx_size >= 0 && s.ctx_size <= model_positions, "--ctx-size must be in 0..",
             model_positions, " (the model's context; 0 = all of it), got ", s.ctx_size);
    SA_CHECK(n_ctx + 1 < max_positions, "the context (", n_ctx,
             " tokens) leaves no room for a conversation in ", limit, " of ", max_positions,
             " tokens");
  });
  // The conversation may use every position the document leaves.
  const std::unique_ptr<TensorComm> tensors = connect_ranks(comm, backend);
  Engine engine(backend, comm, rc, n_ctx, max_positions - n_ctx, tensors.get());
  Sampler sampler(s.sampler);
  if (root)
    for (int id : context) sampler.accept(id);

  const size_t chunk = rc.chunk > 0 ? rc.chunk : backend.preferred_chunk();
  ProgressBar bar("phase 1", root && context.size() > 2 * chunk ? s.progress : ProgressStyle::Off,
                  comm.size());
  double t0 = now_seconds();
  engine.encode_context(context, [&](const Progress& p) {
    bar.update(p);
    if (p.tokens_total > 0 && p.tokens_done == p.tokens_total) bar.finish();
  });
  comm.barrier();  // phase 1 ends when the slowest rank is done
  Timings first;
  first.load_s = s.load_s;
  first.phase1_s = now_seconds() - t0;

  int64_t in_kv = n_ctx;  // tokens the engine holds (every rank)
  int pending = -1;       // the last answer's final token, not run yet (GenerateResult)
  for (int turn = 1;; ++turn) {
    // Rank 0 reads and renders the message; every rank gets the tokens to run, or the end.
    std::vector<int> ids;
    long long status = 0;  // 1 = a turn to run, 0 = the end of the chat
    on_all_ranks(comm, [&] {
      if (!root) return;
      std::string line;
      if (turn == 1 && !s.first_message.empty()) {
        line = s.first_message;
      } else if (!read_message(line)) {
        return;
      }
      if (pending >= 0) ids.push_back(pending);
      const std::vector<int> turn_ids = conv.add_user(line);
      ids.insert(ids.end(), turn_ids.begin(), turn_ids.end());
      const int64_t after = in_kv + static_cast<int64_t>(ids.size());
      SA_CHECK(after < max_positions, "the conversation has outgrown ", limit, " of ",
               max_positions, " tokens: this message would bring it to ", after,
               " with no room for an answer (the context document takes ", n_ctx, ")");
      status = 1;
    });
    comm.broadcast(&status, sizeof status, 0);
    if (status == 0) break;
    broadcast_vector(comm, ids, 0);

    GenerateRequest req;
    req.query = ids;
    // A turn's k answer tokens take k positions: k - 1 now and the last one with the next turn.
    req.max_new_tokens = static_cast<int>(
        std::min<int64_t>(s.n_predict, max_positions - in_kv - static_cast<int64_t>(ids.size())));
    req.logprobs = s.logprobs;
    req.is_end = [&](int id) { return tok.is_eog(id); };
    AnswerStream answer(lm, s.stops, root && !s.json);
    req.on_token = [&](int id) { answer.on_token(id); };
    req.should_stop = [&] { return answer.stopped(); };
    const GenerateResult res = continue_generation(engine, comm, sampler, req);
    pending = res.pending_token;
    in_kv += static_cast<int64_t>(ids.size() + res.tokens.size()) - (pending >= 0 ? 1 : 0);
    if (!root) continue;
    answer.finish();
    // The conversation records what the model generated, which is what the KV holds (a stop
    // string and what came after it in its token included); the user saw `answer.text()`.
    conv.add_assistant(tok.decode(res.tokens));
    Timings t = turn == 1 ? first : Timings{};
    t.query_s = res.query_s;
    t.decode_s = res.decode_s;
    t.comm_s = res.comm_s;
    const RunSummary run{rc, comm.size(), context.size(), ids.size(), turn};
    print_result(s.json, run, res, answer, tok, t,
                 {{"turn", turn}, {"conversation_tokens", in_kv + (pending >= 0 ? 1 : 0)}});
  }
  return 0;
}

}  // namespace starattn::app
