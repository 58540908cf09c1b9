// Stop strings over streamed text: the answer ends where one of them first appears, and the stop
// string itself is not part of it. While text could still turn into a stop string, it is held
// back, so a client never sees text that is then taken back.
#pragma once

#include <string>
#include <vector>

namespace starattn::serve {

class StopText {
 public:
  explicit StopText(std::vector<std::string> stops);
  // Feeds generated text; returns what can be sent now. After a stop string, returns nothing.
  std::string push(const std::string& text);
  // At the end of generation: `tail` is fed, then everything held back is returned.
  std::string flush(const std::string& tail);
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace starattn::serve
