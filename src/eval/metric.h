// RULER's scoring (Star Attention's ruler/eval/evaluate.py and ruler/eval/synthetic/constants.py).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace starattn::eval {

// strip, every control character \x00-\x1f becomes "\n", strip again.
std::string postprocess_pred(std::string_view pred);
// The fraction of references found in the prediction, case-insensitive substring tests, in [0, 1].
// (niah_*, vt, cwe, fwe.) Case folding is ASCII; the references are ASCII.
double string_match_all(std::string_view pred, const std::vector<std::string>& refs);
// 1 if any reference is found, else 0 (RULER's qa tasks; kept for completeness).
double string_match_part(std::string_view pred, const std::vector<std::string>& refs);

}  // namespace starattn::eval
