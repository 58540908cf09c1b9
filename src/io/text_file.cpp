#include "io/text_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "starattn/error.h"

namespace starattn {
namespace {

const char* kind_of(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO (named pipe)";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}

std::string size_text(uint64_t bytes) {
  if (bytes >= (uint64_t{1} << 30)) return std::to_string(bytes >> 30) + " GiB";
  if (bytes >= (uint64_t{1} << 20)) return std::to_string(bytes >> 20) + " MiB";
  return std::to_string(bytes) + " bytes";
}

void check_stat(const struct stat& st, const std::string& path, const std::string& what,
                uint64_t max_bytes) {
  SA_CHECK(S_ISREG(st.st_mode), what, " ", path, " is ", kind_of(st.st_mode),
           "; only a regular file can be read");
  SA_CHECK(static_cast<uint64_t>(st.st_size) <= max_bytes, what, " ", path, " is ",
           size_text(static_cast<uint64_t>(st.st_size)), ", more than the limit of ",
           size_text(max_bytes));
}

// Closes the descriptor on every path out.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

void check_regular_file(const std::string& path, const std::string& what, uint64_t max_bytes) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    fail("cannot open ", what, " ", path, ": ", std::strerror(errno));
  check_stat(st, path, what, max_bytes);
}

std::string read_regular_file(const std::string& path, const std::string& what,
                              uint64_t max_bytes) {
  // O_NONBLOCK: opening a FIFO without a writer would otherwise wait forever. It changes nothing
  // for the regular files that pass the check below.
  const Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (fd.get() < 0) fail("cannot open ", what, " ", path, ": ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    fail("cannot stat ", what, " ", path, ": ", std::strerror(errno));
  check_stat(st, path, what, max_bytes);
  // st_size is a hint (files in /proc say 0, a file may grow): read to the end, up to the cap.
  std::string out;
  out.resize(static_cast<size_t>(st.st_size) + 1);
  size_t used = 0;
  for (;;) {
    if (used == out.size()) {
      SA_CHECK(used <= max_bytes, what, " ", path, " grew past the limit of ", size_text(max_bytes),
               " while it was read");
      out.resize(std::min<uint64_t>(max_bytes + 1, std::max<size_t>(2 * used, 4096)));
    }
    const ssize_t n = ::read(fd.get(), out.data() + used, out.size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("cannot read ", what, " ", path, ": ", std::strerror(errno));
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  SA_CHECK(used <= max_bytes, what, " ", path, " grew past the limit of ", size_text(max_bytes),
           " while it was read");
  out.resize(used);
  return out;
}

}  // namespace starattn
