// What `starattn generate` shows of one answer: its text as it streams to stdout (held back only
// where a stop string could still begin), then one JSON object (--json) or the timing line on
// stderr. Rank 0 only.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "app/common.h"
#include "engine/generate.h"
#include "engine/run_config.h"
#include "engine/stop_strings.h"
#include "tokenizer/tokenizer.h"

namespace starattn::app {

// Turns generated ids into shown text: UTF-8 whole characters (StreamDecoder), cut at the first
// stop string (StopStrings). Plugs into GenerateRequest::on_token and ::should_stop.
class AnswerStream {
 public:
  // print: write the text to stdout as it comes (else only collect it).
  AnswerStream(const LoadedModel& lm, const std::vector<std::string>& stops, bool print);
  void on_token(int id);
  bool stopped() const { return stops_.stopped(); }
  // After generation: shows what was held back, unless a stop string ended the text.
  void finish();
  const std::string& text() const { return text_; }  // shown so far
  const std::string& matched_stop() const { return stops_.matched(); }

 private:
  void show(const std::string& s);

  const LoadedModel& lm_;
  StreamDecoder decoder_;
  StopStrings stops_;
  bool print_;
  std::string text_;
};

struct Timings {
  double load_s = 0, phase1_s = 0, query_s = 0, decode_s = 0, comm_s = 0;
  size_t weight_bytes = 0;  // held by the backend
  std::string weights;      // describe_weights, for the timing line
};

// The run's shape, for the JSON object and the timing line.
struct RunSummary {
  const RunConfig& rc;
  int ranks = 1;
  size_t context_tokens = 0, query_tokens = 0;
  int turn = 0;  // --interactive: the turn (from 1); after the first, the timing line is shorter
};

// StopReason of the answer: the engine's, or "stop" when the final flush completed a stop string.
std::string stop_reason_of(const GenerateResult& res, const AnswerStream& answer);

// --json: one line with the answer's JSON object, with `extra`'s fields added; else a newline
// after the streamed text and the timing line on stderr.
void print_result(bool json, const RunSummary& run, const GenerateResult& res,
                  const AnswerStream& answer, const Tokenizer& tok, const Timings& t,
                  const nlohmann::json& extra = nlohmann::json::object());

}  // namespace starattn::app
