// What GET /metrics reports, in the Prometheus text format. Counters only grow; gauges are set by
// the scheduler after each iteration. Written from several threads, so every field is atomic.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace starattn::serve {

struct Metrics {
  // Requests answered, by outcome.
  std::atomic<uint64_t> requests_ok{0}, requests_client_error{0}, requests_server_error{0};
  std::atomic<uint64_t> requests_cancelled{0};  // the client went away before the end
  std::atomic<uint64_t> prompt_tokens{0}, completion_tokens{0}, cached_tokens{0};
  std::atomic<uint64_t> phase1_tokens{0};  // context tokens encoded (all ranks' shares)
  std::atomic<uint64_t> contexts_encoded{0};
  std::atomic<uint64_t> context_hits{0}, context_misses{0};
  std::atomic<uint64_t> contexts_evicted{0};
  std::atomic<uint64_t> steps{0};              // phase-2 steps run
  std::atomic<uint64_t> step_sequences{0};     // sequences summed over those steps
  std::atomic<int64_t> step_sequences_max{0};  // the most sequences one step has held
  // Seconds, kept in microseconds so they can be atomic integers.
  std::atomic<uint64_t> phase1_us{0}, phase2_us{0};
  std::atomic<uint64_t> ttft_us_sum{0}, ttft_count{0};  // submit to first token
  // Gauges.
  std::atomic<int64_t> queue_depth{0}, active_sequences{0}, contexts_ready{0};
  std::atomic<int64_t> kv_bytes_used{0}, kv_bytes_free{0};  // the tightest rank's
};

std::string render_prometheus(const Metrics& m);

}  // namespace starattn::serve
