#include "engine/stop_strings.h"

#include <algorithm>

#include "starattn/error.h"
#include "tokenizer/utf8.h"

namespace starattn {

StopStrings::StopStrings(std::vector<std::string> stops) : stops_(std::move(stops)) {
  for (const std::string& s : stops_) {
    SA_CHECK(!s.empty(), "a stop string is empty");
    SA_CHECK(utf8::is_valid(s), "the stop string '", s, "' is not valid UTF-8");
    longest_ = std::max(longest_, s.size());
  }
}

const std::string& StopStrings::matched() const {
  static const std::string none;
  return stopped() ? stops_[static_cast<size_t>(matched_)] : none;
}

std::string StopStrings::push(std::string_view text) {
  if (stopped()) return "";
  held_.append(text);
  // The held text never contains a whole stop string (it would have stopped), so any match
  // ends in the new text; the earliest start decides where the text ends.
  size_t cut = std::string::npos;
  for (size_t i = 0; i < stops_.size(); ++i) {
    const size_t at = held_.find(stops_[i]);
    if (at < cut) {
      cut = at;
      matched_ = static_cast<int>(i);
    }
  }
  if (cut != std::string::npos) {
    std::string out = held_.substr(0, cut);
    held_.clear();
    return out;
  }
  // Hold back the longest tail that a stop string starts with; the rest is safe.
  size_t hold = std::min(held_.size(), longest_ > 0 ? longest_ - 1 : 0);
  for (; hold > 0; --hold) {
    const std::string_view tail = std::string_view(held_).substr(held_.size() - hold);
    if (std::any_of(stops_.begin(), stops_.end(),
                    [&](const std::string& s) { return s.starts_with(tail); }))
      break;
  }
  std::string out = held_.substr(0, held_.size() - hold);
  held_.erase(0, held_.size() - hold);
  return out;
}

std::string StopStrings::flush() {
  std::string out;
  out.swap(held_);
  return out;
}

}  // namespace starattn
