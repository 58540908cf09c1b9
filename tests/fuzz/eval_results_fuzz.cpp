// The results.jsonl that `starattn eval --resume` and `--report` read: every line through
// record_from_json, the summary tables over what was read, and each record written back with
// to_json and read again, which must give the same record.
#include <cstdint>
#include <string_view>

#include "eval/results.h"
#include "fuzz_util.h"
#include "starattn/error.h"

namespace {

bool same(const starattn::eval::Record& a, const starattn::eval::Record& b) {
  return a.key() == b.key() && a.task == b.task && a.length == b.length && a.index == b.index &&
         a.attn == b.attn && a.anchor_mode == b.anchor_mode && a.anchor_source == b.anchor_source &&
         a.block_size == b.block_size && a.anchor_size == b.anchor_size && a.ranks == b.ranks &&
         a.context_tokens == b.context_tokens && a.query_tokens == b.query_tokens &&
         a.max_new_tokens == b.max_new_tokens && a.gen_tokens == b.gen_tokens && a.pred == b.pred &&
         a.refs == b.refs && a.score == b.score && a.phase1_s == b.phase1_s &&
         a.query_s == b.query_s && a.decode_s == b.decode_s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = starattn::fuzz::write_file(
      "results.jsonl", std::string_view(reinterpret_cast<const char*>(data), size));
  try {
    bool dropped = false;
    const auto records = starattn::eval::read_records(path, &dropped);
    starattn::eval::summary_markdown(records);
    for (const auto& r : records) {
      if (!same(starattn::eval::record_from_json(starattn::eval::to_json(r)), r)) __builtin_trap();
    }
  } catch (const starattn::Error&) {
  }
  return 0;
}
