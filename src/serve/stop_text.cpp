#include "serve/stop_text.h"

#include <algorithm>

namespace starattn::serve {

StopText::StopText(std::vector<std::string> stops) : stops_(std::move(stops)) {
  stops_.erase(std::remove(stops_.begin(), stops_.end(), std::string()), stops_.end());
}

std::string StopText::push(const std::string& text) {
  if (stopped_) return "";
  held_ += text;
  // The earliest complete stop string ends the answer just before it.
  size_t cut = std::string::npos;
  for (const std::string& s : stops_) cut = std::min(cut, held_.find(s));
  if (cut != std::string::npos) {
    stopped_ = true;
    std::string out = held_.substr(0, cut);
    held_.clear();
    return out;
  }
  // Hold back the longest tail of the text that is the start of some stop string.
  size_t keep = 0;
  for (const std::string& s : stops_) {
    for (size_t n = std::min(s.size() - 1, held_.size()); n > keep; --n) {
      if (held_.compare(held_.size() - n, n, s, 0, n) == 0) {
        keep = n;
        break;
      }
    }
  }
  std::string out = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

std::string StopText::flush(const std::string& tail) {
  std::string out = push(tail);
  if (stopped_) return out;
  out += held_;
  held_.clear();
  return out;
}

}  // namespace starattn::serve
