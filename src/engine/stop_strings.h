// Stop strings for streamed text: generation ends as soon as the text so far contains one of
// them; neither the stop string nor anything after it is shown. push() returns only text that can
// no longer turn into a stop string, so a stream never shows a partial stop string that must then
// be taken back: what it holds back is the longest tail of the text that is the start of a stop
// string.
//
// When several stop strings complete in the same push, the text ends at the one that starts
// first. Matching is on bytes; push text whole UTF-8 characters at a time (StreamDecoder's
// output) and what comes out is whole characters too, because a valid stop string starts with a
// lead byte.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace starattn {

class StopStrings {
 public:
  // Throws Error for an empty stop string or one that is not valid UTF-8. No stop strings at all
  // is fine: then push() passes everything through.
  explicit StopStrings(std::vector<std::string> stops);

  // Adds newly generated text; returns the text that is now safe to show. Once stopped, returns
  // "" for everything.
  std::string push(std::string_view text);
  // At the end of generation: the text held back (it did not become a stop string).
  std::string flush();
  bool stopped() const { return matched_ >= 0; }
  // The stop string that ended the text; "" while not stopped.
  const std::string& matched() const;

 private:
  std::vector<std::string> stops_;
  size_t longest_ = 0;  // bytes of the longest stop string
  std::string held_;    // text not yet returned: a possible start of a stop string
  int matched_ = -1;    // index into stops_ once stopped
};

}  // namespace starattn
