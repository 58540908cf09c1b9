// Shared pieces of the libFuzzer harnesses: a private scratch folder for readers that take a path
// (they map or stat the file, so the bytes must be a real regular file), and the splitting of one
// input into the parts a harness needs.
//
// Every harness lets starattn::Error (and, for requests, HttpError) pass: that is the clear error
// bad input must get. Anything else escaping (a json exception, std::out_of_range, bad_alloc) is
// uncaught, so libFuzzer reports it as a crash, as it does a sanitizer report, a leak, a timeout
// or memory past -rss_limit_mb.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace starattn::fuzz {

// A folder under $TMPDIR made once per process and removed at exit. The string is never
// destroyed: the exit handler that removes the folder runs after static destructors would.
inline const std::string& scratch_dir() {
  static const std::string& dir = *[] {
    const char* tmp = std::getenv("TMPDIR");
    auto* templ =
        new std::string(std::string(tmp && *tmp ? tmp : "/tmp") + "/starattn-fuzz-XXXXXX");
    if (!::mkdtemp(templ->data())) {
      std::perror("mkdtemp");
      std::abort();  // the harness cannot run at all; not a finding
    }
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(scratch_dir(), ec);
    });
    return templ;
  }();
  return dir;
}

// Writes the bytes to scratch_dir()/name (replacing it) and returns the path.
inline std::string write_file(const std::string& name, std::string_view bytes) {
  const std::string path = scratch_dir() + "/" + name;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::perror(path.c_str());
    std::abort();
  }
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n <= 0) {
      std::perror(path.c_str());
      std::abort();
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return path;
}

// The input cut at each NUL byte: text formats cannot hold one, so it is a free separator that
// seed files can be built with (`printf '\0'`).
inline std::vector<std::string_view> split_at_nul(const uint8_t* data, size_t size) {
  std::vector<std::string_view> parts;
  const char* p = reinterpret_cast<const char*>(data);
  size_t begin = 0;
  for (size_t i = 0; i <= size; ++i) {
    if (i == size || p[i] == '\0') {
      parts.emplace_back(p + begin, i - begin);
      begin = i + 1;
    }
  }
  return parts;
}

// A fixture of the source tree (the tokenizers the encode harness runs, the shards the index
// harness points at).
inline std::string source_path(const std::string& rel) {
  return std::string(STARATTN_SOURCE_DIR) + "/" + rel;
}

}  // namespace starattn::fuzz
