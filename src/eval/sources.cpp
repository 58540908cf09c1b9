#include "eval/sources.h"

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_set>

#include "eval/text.h"
#include "io/text_file.h"
#include "starattn/error.h"

namespace starattn::eval {
namespace {

namespace fs = std::filesystem;

// Regular files only, within the size cap: /dev/zero or a FIFO given as a haystack must not
// run until memory fails or wait forever.
std::string read_file(const std::string& path, const char* what) {
  return read_regular_file(path, what, kMaxTextFileBytes);
}

// Non-throwing: a path that cannot be searched counts as absent here, and read_file says why.
bool present(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

bool plain_word(const std::string& w) {
  if (w.size() < 3 || w.size() > 10) return false;
  for (char c : w) {
    if (c < 'a' || c > 'z') return false;
  }
  return true;
}

// "Ge1:1 ", "1Co13:4 ": book letters or digits, chapter, colon, verse, one space.
size_t verse_ref_length(const std::string& line) {
  size_t i = 0;
  while (i < line.size() && std::isalnum(static_cast<unsigned char>(line[i]))) ++i;
  if (i == 0 || i >= line.size() || line[i] != ':') return 0;
  size_t j = i + 1;
  while (j < line.size() && std::isdigit(static_cast<unsigned char>(line[j]))) ++j;
  if (j == i + 1 || j >= line.size() || line[j] != ' ') return 0;
  return j + 1;
}

const char* kKjvHelp =
    "the essay haystack (niah_single_2/3, niah_multikey_1, niah_multivalue, niah_multiquery, "
    "qa1-qa3) "
    "reads the King James Bible through the `bible` program: install Debian's bible-kjv and "
    "bible-kjv-text (apt-get install bible-kjv bible-kjv-text; scripts/setup.sh does), or pass "
    "--haystack FILE with any long English text";

}  // namespace

std::vector<std::string> load_word_list(const std::string& path) {
  SA_CHECK(present(path), "word list ", path,
           " not found: the key words and the cwe words come from a word list; install Debian's "
           "wamerican (apt-get install wamerican; scripts/setup.sh does) or pass --wordlist FILE "
           "(one word per line)");
  std::istringstream in(read_file(path, "word list"));
  std::vector<std::string> words;
  std::unordered_set<std::string> seen;
  for (std::string line; std::getline(in, line);) {
    std::string w = py_strip(line);
    if (plain_word(w) && seen.insert(w).second) words.push_back(std::move(w));
  }
  SA_CHECK(words.size() >= 1000, "word list ", path, " has only ", words.size(),
           " lowercase words of 3-10 letters; the tasks need at least 1000");
  return words;
}

std::vector<std::string> kjv_words_from_bible_output(const std::string& out) {
  std::istringstream in(out);
  std::string text;
  for (std::string line; std::getline(in, line);) {
    text.append(line, verse_ref_length(line), std::string::npos);
    text.push_back(' ');
  }
  return split_ws(text);
}

Haystack load_kjv_haystack() {
  const char* data = "/usr/lib/bible.data";
  bool have_program = false;
  for (const char* dir : {"/usr/bin", "/usr/local/bin", "/bin"}) {
    have_program = have_program || present(fs::path(dir) / "bible");
  }
  SA_CHECK(have_program && present(data), kKjvHelp);
  // -f: one verse per line with its reference; the range is the whole book.
  FILE* p = ::popen("bible -f -p /usr/lib -d bible.data gen1:1-rev22:21 2>/dev/null", "r");
  SA_CHECK(p != nullptr, "cannot start `bible`: ", kKjvHelp);
  std::string out;
  char buf[1 << 16];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int status = ::pclose(p);
  SA_CHECK(status == 0 && out.size() > 1000000, "`bible` failed (status ", status, ", ", out.size(),
           " bytes of output): ", kKjvHelp);
  return Haystack{"kjv", kjv_words_from_bible_output(out)};
}

Haystack load_text_haystack(const std::string& path) {
  SA_CHECK(present(path), "haystack file ", path, " not found");
  std::string text = read_file(path, "haystack file");
  if (fs::path(path).extension() == ".json") {
    const auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    SA_CHECK(j.is_object() && j.contains("text") && j["text"].is_string(), "haystack ", path,
             " is a .json file without a string field \"text\" (RULER's PaulGrahamEssays.json "
             "has one)");
    text = j["text"].get<std::string>();
  }
  Haystack h{fs::path(path).filename().string(), split_ws(text)};
  SA_CHECK(h.words.size() >= 1000, "haystack ", path, " has only ", h.words.size(),
           " words; use a longer text");
  return h;
}

}  // namespace starattn::eval
