#include "eval/method.h"

#include "eval/text.h"
#include "starattn/error.h"

namespace starattn::eval {
namespace {

bool digits(const std::string& s) {
  return !s.empty() && s.size() <= 12 && s.find_first_not_of("0123456789") == std::string::npos;
}

bool ratio_of(const std::string& s, char base) {
  return s.size() > 2 && s[0] == base && s[1] == '/' && digits(s.substr(2));
}

int64_t number(const std::string& s) {
  return std::stoll(s);  // digits() has checked it: at most 12 digits
}

}  // namespace

void MethodSpec::check() const {
  SA_CHECK(enum_from_name(kAttnModeNames, attn).has_value(), "--attn must be ",
           enum_names_text(kAttnModeNames), ", got '", attn, "'");
  SA_CHECK(block == "auto" || digits(block) || ratio_of(block, 'L'),
           "-b must be L/k, auto or a token count, got '", block, "'");
  SA_CHECK(anchor == "B" || digits(anchor) || ratio_of(anchor, 'B'),
           "-a must be B, B/k or a token count, got '", anchor, "'");
  SA_CHECK(!ratio_of(anchor, 'B') || block != "auto", "-a ", anchor, " needs a fixed -b, not auto");
  (void)parse_anchor_source(anchor_source);
  (void)parse_kv_type(kv_type.c_str());
}

RunConfig MethodSpec::at_length(int64_t length) const {
  check();
  RunConfig run;
  run.attn = parse_attn_mode(attn);
  run.anchor = parse_anchor_mode(anchor_mode);
  run.anchor_source = parse_anchor_source(anchor_source);
  run.anchor_seed = anchor_seed;
  run.chunk = chunk;
  run.kv_type = parse_kv_type(kv_type.c_str());
  if (block == "auto") {
    run.block_size = -1;
  } else if (ratio_of(block, 'L')) {
    const int64_t k = number(block.substr(2));
    SA_CHECK(k >= 1 && length / k >= 1, "-b ", block, " gives no tokens at length ", length);
    run.block_size = length / k;
  } else {
    run.block_size = number(block);
  }
  if (anchor == "B") {
    run.anchor_size = -1;
  } else if (ratio_of(anchor, 'B')) {
    const int64_t k = number(anchor.substr(2));
    SA_CHECK(k >= 1, "-a ", anchor, ": the divisor must be at least 1");
    run.anchor_size = run.block_size / k;
  } else {
    run.anchor_size = number(anchor);
  }
  return run;
}

std::string MethodSpec::label(int ranks) const {
  const std::string kv = kv_type != "bf16" ? " kv=" + kv_type : "";
  if (attn == "dense") return "dense" + kv;
  if (attn == "ring")
    return (ranks > 1 ? "ring (" + std::to_string(ranks) + " ranks)" : std::string("ring")) + kv;
  std::string l = "star B=" + block + " A=" + (anchor == "0" ? std::string("0 (none)") : anchor);
  if (anchor_source != "first") l += " anchor=" + anchor_source;
  return l + kv;
}

std::vector<int64_t> parse_lengths(const std::string& csv) {
  std::vector<int64_t> out;
  for (const std::string& s : split_ws(replace_all(csv, ",", " "))) {
    SA_CHECK(digits(s), "--length: '", s, "' is not a token count");
    out.push_back(number(s));
    SA_CHECK(out.back() >= 256, "--length must be at least 256 tokens, got ", out.back());
  }
  SA_CHECK(!out.empty(), "--length is empty");
  return out;
}

}  // namespace starattn::eval
