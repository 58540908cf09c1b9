#include "serve/metrics.h"

#include <cstdio>

namespace starattn::serve {
namespace {

void line(std::string& out, const char* name, const char* type, const char* help,
          const std::string& value, const char* labels = "") {
  char head[512];
  std::snprintf(head, sizeof head, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
  out += head;
  out += name;
  out += labels;
  out += ' ';
  out += value;
  out += '\n';
}

std::string num(uint64_t v) {
  return std::to_string(v);
}
std::string num(int64_t v) {
  return std::to_string(v);
}
std::string seconds(uint64_t us) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6f", static_cast<double>(us) * 1e-6);
  return buf;
}

}  // namespace

std::string render_prometheus(const Metrics& m) {
  std::string o;
  o += "# HELP starattn_requests_total Requests answered, by outcome.\n";
  o += "# TYPE starattn_requests_total counter\n";
  o += "starattn_requests_total{outcome=\"ok\"} " + num(m.requests_ok.load()) + "\n";
  o += "starattn_requests_total{outcome=\"client_error\"} " + num(m.requests_client_error.load()) +
       "\n";
  o += "starattn_requests_total{outcome=\"server_error\"} " + num(m.requests_server_error.load()) +
       "\n";
  o += "starattn_requests_total{outcome=\"cancelled\"} " + num(m.requests_cancelled.load()) + "\n";
  o += "# HELP starattn_tokens_total Tokens by kind: prompt (context + query), completion, and "
       "cached (prompt tokens whose context was already encoded).\n";
  o += "# TYPE starattn_tokens_total counter\n";
  o += "starattn_tokens_total{kind=\"prompt\"} " + num(m.prompt_tokens.load()) + "\n";
  o += "starattn_tokens_total{kind=\"completion\"} " + num(m.completion_tokens.load()) + "\n";
  o += "starattn_tokens_total{kind=\"cached\"} " + num(m.cached_tokens.load()) + "\n";
  line(o, "starattn_phase1_tokens_total", "counter",
       "Context tokens encoded by phase 1 (all ranks' shares).", num(m.phase1_tokens.load()));
  line(o, "starattn_phase1_seconds_total", "counter", "Wall time spent in phase 1.",
       seconds(m.phase1_us.load()));
  line(o, "starattn_phase2_seconds_total", "counter",
       "Wall time spent in phase-2 steps (queries and generated tokens).",
       seconds(m.phase2_us.load()));
  line(o, "starattn_phase2_steps_total", "counter", "Phase-2 steps run.", num(m.steps.load()));
  line(o, "starattn_phase2_step_sequences_total", "counter",
       "Sequences summed over the phase-2 steps (divided by the steps: the mean batch).",
       num(m.step_sequences.load()));
  line(o, "starattn_phase2_step_sequences_max", "gauge",
       "The most sequences decoded together in one phase-2 step so far.",
       num(m.step_sequences_max.load()));
  line(o, "starattn_contexts_encoded_total", "counter", "Contexts encoded by phase 1.",
       num(m.contexts_encoded.load()));
  line(o, "starattn_context_cache_hits_total", "counter",
       "Requests whose context was already encoded.", num(m.context_hits.load()));
  line(o, "starattn_context_cache_misses_total", "counter",
       "Requests whose context had to be encoded.", num(m.context_misses.load()));
  line(o, "starattn_contexts_evicted_total", "counter",
       "Contexts whose KV was freed to make room (least recently used first).",
       num(m.contexts_evicted.load()));
  line(o, "starattn_time_to_first_token_seconds_sum", "counter",
       "Sum over generations of the time from arrival to the first token.",
       seconds(m.ttft_us_sum.load()));
  line(o, "starattn_time_to_first_token_seconds_count", "counter",
       "Generations that produced a first token.", num(m.ttft_count.load()));
  line(o, "starattn_queue_depth", "gauge", "Requests waiting to start.", num(m.queue_depth.load()));
  line(o, "starattn_active_sequences", "gauge", "Sequences decoding now.",
       num(m.active_sequences.load()));
  line(o, "starattn_contexts_ready", "gauge", "Encoded contexts held in KV memory.",
       num(m.contexts_ready.load()));
  line(o, "starattn_kv_bytes_used", "gauge",
       "KV memory in use (contexts and sequences) on the fullest rank.",
       num(m.kv_bytes_used.load()));
  line(o, "starattn_kv_bytes_free", "gauge", "KV memory budget left on the fullest rank.",
       num(m.kv_bytes_free.load()));
  return o;
}

}  // namespace starattn::serve
