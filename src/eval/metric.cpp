#include "eval/metric.h"

#include "eval/text.h"
#include "starattn/error.h"

namespace starattn::eval {

std::string postprocess_pred(std::string_view pred) {
  std::string s = py_strip(pred);
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20) c = '\n';
  }
  return py_strip(s);
}

double string_match_all(std::string_view pred, const std::vector<std::string>& refs) {
  SA_CHECK(!refs.empty(), "string_match_all: no references");
  const std::string p = ascii_lower(pred);
  int found = 0;
  for (const std::string& r : refs) found += p.find(ascii_lower(r)) != std::string::npos;
  return static_cast<double>(found) / static_cast<double>(refs.size());
}

double string_match_part(std::string_view pred, const std::vector<std::string>& refs) {
  const std::string p = ascii_lower(pred);
  for (const std::string& r : refs) {
    if (p.find(ascii_lower(r)) != std::string::npos) return 1.0;
  }
  return 0.0;
}

}  // namespace starattn::eval
