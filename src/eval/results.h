// Results of `starattn eval`: one JSON line per (sample, method) in DIR/results.jsonl, and the
// summary tables (task x method per length, method x length) built from every line of that file,
// so runs of different methods into the same folder end up in one table.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace starattn::eval {

struct Record {
  std::string id;  // "task/length/index"
  std::string task;
  int64_t length = 0, index = 0;
  std::string method;       // the column label, e.g. "star B=L/4 A=B"
  std::string fingerprint;  // everything else that changes the samples or the answers
  std::string attn, anchor_mode;
  std::string anchor_source = "first";
  int64_t block_size = 0, anchor_size = 0;  // as resolved for this sample (star only)
  int ranks = 1;
  int64_t context_tokens = 0, query_tokens = 0;
  int max_new_tokens = 0, gen_tokens = 0;
  std::string pred;               // the model's answer, post-processed
  std::vector<std::string> refs;  // RULER's "outputs"
  double score = 0;               // string_match_all, in [0, 1]
  double phase1_s = 0, query_s = 0, decode_s = 0;

  // Two records with the same key are the same measurement (what --resume skips).
  std::string key() const { return id + "|" + method + "|" + fingerprint; }
};

nlohmann::json to_json(const Record& r);
Record record_from_json(const nlohmann::json& j);  // throws Error naming a missing field

// Every record of a JSONL file (none if it does not exist). A last line cut short by an
// interrupted run is skipped with *dropped_tail = true; a bad line elsewhere is an Error.
std::vector<Record> read_records(const std::string& path, bool* dropped_tail = nullptr);
// Appends one line and flushes. A partial last line (a killed run) is cut off first.
void append_record(const std::string& path, const Record& r);

// Markdown: per length, a task x method table with the average, % of dense, samples and run
// time; then a method x length table of averages (the shape of the paper's RULER table).
std::string summary_markdown(const std::vector<Record>& records);

}  // namespace starattn::eval
