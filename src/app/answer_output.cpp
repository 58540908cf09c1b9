#include "app/answer_output.h"

#include <algorithm>
#include <cstdio>

namespace starattn::app {
namespace {

// How an id beyond the tokenizer (a random model's) shows: "<id>".
std::string unknown_token_text(int id) {
  std::string s = "<";
  s += std::to_string(id);
  s += '>';
  return s;
}

}  // namespace

AnswerStream::AnswerStream(const LoadedModel& lm, const std::vector<std::string>& stops, bool print)
    : lm_(lm), decoder_(lm.tokenizer), stops_(stops), print_(print) {}

void AnswerStream::show(const std::string& s) {
  text_ += s;
  if (print_ && !s.empty()) {
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::fflush(stdout);
  }
}

void AnswerStream::on_token(int id) {
  show(stops_.push(token_has_text(lm_, id) ? decoder_.push(id) : unknown_token_text(id)));
}

void AnswerStream::finish() {
  show(stops_.push(decoder_.flush()));
  show(stops_.flush());
}

std::string stop_reason_of(const GenerateResult& res, const AnswerStream& answer) {
  return answer.stopped() ? "stop" : stop_reason_name(res.stop_reason);
}

namespace {

// OpenAI's shape for one token: its text, its bytes (the text may be part of a character) and
// its log-probability; plus the id.
nlohmann::json token_json(const Tokenizer& tok, int id, float logprob) {
  const std::string text = id < tok.vocab_size() ? tok.token_text(id) : unknown_token_text(id);
  nlohmann::json bytes = nlohmann::json::array();
  for (unsigned char b : text) bytes.push_back(b);
  return {{"id", id}, {"token", text}, {"bytes", bytes}, {"logprob", logprob}};
}

nlohmann::json logprobs_json(const Tokenizer& tok, const std::vector<GeneratedLogprobs>& lps) {
  nlohmann::json out = nlohmann::json::array();
  for (const GeneratedLogprobs& g : lps) {
    nlohmann::json t = token_json(tok, g.id, g.logprob);
    t["top_logprobs"] = nlohmann::json::array();
    for (const TokenLogprob& alt : g.top)
      t["top_logprobs"].push_back(token_json(tok, alt.id, alt.logprob));
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace

void print_result(bool json, const RunSummary& run, const GenerateResult& res,
                  const AnswerStream& answer, const Tokenizer& tok, const Timings& t,
                  const nlohmann::json& extra) {
  const RunConfig& rc = run.rc;
  const size_t n_ctx = run.context_tokens, n_query = run.query_tokens;
  const int n_gen = static_cast<int>(res.tokens.size());
  // The first generated token comes from the query's logits; each later one costs a decode step.
  const int steps = std::max(n_gen - 1, 0);
  const double ms_tok = steps > 0 ? 1e3 * t.decode_s / steps : 0.0;
  if (json) {
    nlohmann::json j;
    j["text"] = answer.text();
    j["tokens"] = res.tokens;
    j["stop_reason"] = stop_reason_of(res, answer);
    if (answer.stopped()) j["stop_string"] = answer.matched_stop();
    j["attn"] = attn_mode_name(rc.attn);
    j["ranks"] = run.ranks;
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
    j["weight_bytes"] = t.weight_bytes;
    if (!res.logprobs.empty()) j["logprobs"] = logprobs_json(tok, res.logprobs);
    for (const auto& [k, v] : extra.items()) j[k] = v;
    // Invalid UTF-8 from a model is replaced rather than failing the whole answer.
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    std::fflush(stdout);
    return;
  }
  std::printf("\n");
  std::fflush(stdout);
  if (run.turn > 1) {  // no load or phase 1 after the first turn
    std::fprintf(stderr,
                 "timing: turn %d | query: %zu tokens in %.3f s | decode: %d tokens, %.1f "
                 "ms/token (%.1f tok/s) | phase-2 comm %.3f s\n",
                 run.turn, n_query, t.query_s, n_gen, ms_tok, ms_tok > 0 ? 1e3 / ms_tok : 0.0,
                 t.comm_s);
    return;
  }
  std::fprintf(stderr,
               "timing: %s on %d rank%s | load %.2f s | phase 1: %zu context tokens in %.2f s "
               "(%.1f tok/s) | query: %zu tokens in %.3f s | decode: %d tokens, %.1f ms/token "
               "(%.1f tok/s) | phase-2 comm %.3f s | weights %s\n",
               attn_mode_name(rc.attn), run.ranks, run.ranks == 1 ? "" : "s", t.load_s, n_ctx,
               t.phase1_s, t.phase1_s > 0 ? n_ctx / t.phase1_s : 0.0, n_query, t.query_s, n_gen,
               ms_tok, ms_tok > 0 ? 1e3 / ms_tok : 0.0, t.comm_s, t.weights.c_str());
}

}  // namespace starattn::app
