// Where the tasks get their text, all offline and none of it committed (docs/ACCURACY.md, "The
// harness"):
//   - the noise sentence of RULER's "repeat" haystack and of vt, generated in code;
//   - key words and cwe words: a word list read at run time (Debian's wamerican by default);
//   - prose for the "essay" haystack: the King James Bible, public domain, read at run time through
//     the `bible` program of Debian's bible-kjv, or any text file the user names (--haystack).
// A missing source is one Error that says which package to install or which flag to pass.
#pragma once

#include <string>
#include <vector>

namespace starattn::eval {

// RULER's noise unit (the "repeat" haystack line; vt adds "\n" to it).
inline constexpr const char* kNoiseUnit =
    "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";

inline constexpr const char* kDefaultWordList = "/usr/share/dict/american-english";

// One word per line; keeps the lowercase ASCII words of 3 to 10 letters (wamerican also holds
// names, possessives and very long rare words, which only make keys longer). Deduplicated, in file
// order. Throws Error if the file is missing or keeps fewer than 1000 words.
std::vector<std::string> load_word_list(const std::string& path);

struct Haystack {
  std::string name;                // "kjv" or the file name; recorded with every result
  std::vector<std::string> words;  // the prose split at whitespace, in order
};

// The King James Bible, Genesis 1:1 to Revelation 22:21, verse references removed.
Haystack load_kjv_haystack();
// Any UTF-8 text file; a .json file with a "text" field (RULER's PaulGrahamEssays.json) uses it.
Haystack load_text_haystack(const std::string& path);
// Removes the "Ge1:1 " reference in front of each verse line of `bible -f` output, joins lines.
std::vector<std::string> kjv_words_from_bible_output(const std::string& out);

}  // namespace starattn::eval
