// Stop strings over streamed text: the text ends before the first stop string, whatever the
// split into pieces; a stream never shows a character it might have to take back, and holds back
// no more than could still become a stop string.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "engine/stop_strings.h"
#include "starattn/error.h"
#include "tokenizer/utf8.h"

namespace starattn {
namespace {

// Pushes the pieces in order; returns everything shown (pushes, then the flush when not stopped).
std::string stream(StopStrings& s, const std::vector<std::string>& pieces) {
  std::string out;
  for (const std::string& p : pieces) out += s.push(p);
  if (!s.stopped()) out += s.flush();
  return out;
}

std::string stream(const std::vector<std::string>& stops, const std::vector<std::string>& pieces) {
  StopStrings s(stops);
  return stream(s, pieces);
}

TEST(StopStrings, StopStringSplitOverPieces) {
  StopStrings s({"STOP"});
  EXPECT_EQ(s.push("Hello wo"), "Hello wo");
  EXPECT_EQ(s.push("rld! ST"), "rld! ");  // "ST" could begin "STOP": held
  EXPECT_FALSE(s.stopped());
  EXPECT_EQ(s.push("OP and more"), "");
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(s.matched(), "STOP");
  EXPECT_EQ(s.push("later text"), "");  // nothing after a stop
  EXPECT_EQ(s.flush(), "");
}

TEST(StopStrings, HeldTextThatDoesNotBecomeAStopIsReleased) {
  StopStrings s({"STOP"});
  EXPECT_EQ(s.push("a ST"), "a ");
  EXPECT_EQ(s.push("ART"), "START");  // "STA" is no longer the start of "STOP"
  EXPECT_EQ(s.push("S"), "");
  EXPECT_EQ(s.flush(), "S");  // the end of generation: what was held is shown
  EXPECT_FALSE(s.stopped());
  EXPECT_EQ(s.matched(), "");
}

TEST(StopStrings, StopAtTheVeryStart) {
  EXPECT_EQ(stream({"<end>"}, {"<end> of it"}), "");
  EXPECT_EQ(stream({"<end>"}, {"<", "en", "d>", "x"}), "");
  StopStrings s({"Q:"});
  EXPECT_EQ(s.push("Q"), "");
  EXPECT_EQ(s.push(":"), "");
  EXPECT_TRUE(s.stopped());
}

TEST(StopStrings, OverlappingCandidates) {
  // Two stops overlap in the text: the one that starts first wins.
  EXPECT_EQ(stream({"bcd", "abc"}, {"xab", "cd"}), "x");
  // A short stop inside a longer one completes first: the stream cannot wait for the long one.
  EXPECT_EQ(stream({"abcdef", "cd"}, {"abc", "d", "ef"}), "ab");
  // A stop that overlaps itself: "aab" in "aaab" starts at the second "a".
  StopStrings s({"aab"});
  EXPECT_EQ(s.push("a"), "");
  EXPECT_EQ(s.push("a"), "");
  EXPECT_EQ(s.push("a"), "a");  // only the last "aa" can still begin "aab"
  EXPECT_EQ(s.push("b"), "");
  EXPECT_TRUE(s.stopped());
}

TEST(StopStrings, SeveralStops) {
  const std::vector<std::string> stops = {"\n\n", "User:", "###"};
  EXPECT_EQ(stream(stops, {"Answer: 42", "\n", "\nUser: next"}), "Answer: 42");
  EXPECT_EQ(stream(stops, {"Answer: 42\nUs", "er: again"}), "Answer: 42\n");
  EXPECT_EQ(stream(stops, {"a ## b #", "##"}), "a ## b ");
  StopStrings s(stops);
  stream(s, {"x##", "#"});
  EXPECT_EQ(s.matched(), "###");
}

TEST(StopStrings, MultiByteUtf8) {
  // A stop that starts with a multi-byte character, split between pieces.
  EXPECT_EQ(stream({"é!"}, {"caf", "é", "!", " more"}), "caf");
  // A held multi-byte character that turns out not to start the stop is released whole.
  StopStrings s({"本当"});
  EXPECT_EQ(s.push("日本"), "日");
  EXPECT_EQ(s.push("語"), "本語");
  // The byte-wise prefix of a character is never mistaken for the character.
  StopStrings e({"é"});         // C3 A9
  EXPECT_EQ(e.push("ã"), "ã");  // C3 A3: shares the lead byte only
  EXPECT_EQ(e.push("é"), "");
  EXPECT_TRUE(e.stopped());
}

TEST(StopStrings, NoStopsPassEverythingThrough) {
  StopStrings s({});
  EXPECT_EQ(s.push("anything"), "anything");
  EXPECT_EQ(s.push(""), "");
  EXPECT_EQ(s.flush(), "");
  EXPECT_FALSE(s.stopped());
}

TEST(StopStrings, RejectsBadStops) {
  EXPECT_THROW(StopStrings({""}), Error);
  EXPECT_THROW(StopStrings({"ok", std::string("\xC3", 1)}), Error);
  EXPECT_THROW(StopStrings({std::string("\xFF"
                                        "a")}),
               Error);
}

// Brute force: the text up to the first piece after which it contains a stop string, cut where
// the earliest such stop string starts.
std::string expected(const std::vector<std::string>& stops,
                     const std::vector<std::string>& pieces) {
  std::string text;
  for (const std::string& p : pieces) {
    text += p;
    size_t cut = std::string::npos;
    for (const std::string& s : stops) cut = std::min(cut, text.find(s));
    if (cut != std::string::npos) return text.substr(0, cut);
  }
  return text;
}

TEST(StopStrings, RandomSplitsMatchTheWholeTextAndHoldOnlyWhatTheyMust) {
  const std::vector<std::string> alphabet = {"a", "b", "c", "é", "日", " "};
  std::mt19937 rng(11);
  auto word = [&](int max_chars) {
    std::string w;
    const int n = 1 + static_cast<int>(rng() % static_cast<unsigned>(max_chars));
    for (int i = 0; i < n; ++i) w += alphabet[rng() % alphabet.size()];
    return w;
  };
  int stopped = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::vector<std::string> stops;
    const int n_stops = 1 + static_cast<int>(rng() % 3);
    for (int i = 0; i < n_stops; ++i) stops.push_back(word(3));
    std::vector<std::string> pieces;
    const int n_pieces = 1 + static_cast<int>(rng() % 8);
    for (int i = 0; i < n_pieces; ++i) pieces.push_back(word(4));

    StopStrings s(stops);
    std::string text, shown;
    for (const std::string& p : pieces) {
      text += p;
      shown += s.push(p);
      if (s.stopped()) break;
      // Never more than the text, always whole characters; what is held is exactly the longest
      // tail of the text that some stop string starts with.
      ASSERT_EQ(text.compare(0, shown.size(), shown), 0);
      ASSERT_TRUE(utf8::is_valid(shown));
      const std::string held = text.substr(shown.size());
      size_t must_hold = 0;
      for (size_t len = 1; len <= text.size(); ++len)
        for (const std::string& st : stops)
          if (len < st.size() && st.compare(0, len, text, text.size() - len, len) == 0)
            must_hold = len;
      ASSERT_EQ(held.size(), must_hold) << "text '" << text << "' held '" << held << "'";
    }
    if (!s.stopped()) shown += s.flush();
    stopped += s.stopped();
    ASSERT_EQ(shown, expected(stops, pieces)) << "trial " << trial;
  }
  EXPECT_GT(stopped, 300);  // both outcomes are well exercised
  EXPECT_LT(stopped, 2700);
}

}  // namespace
}  // namespace starattn
