// One error type for the whole library. Nothing in the library calls exit() or abort(); errors
// travel as starattn::Error up to the app layer, which prints one line and exits non-zero
// (under MPI it ends every rank).
#pragma once

#include <exception>
#include <new>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace starattn {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Builds a message from pieces: fail("tensor ", name, " has ", n, " dims").
template <typename... Args>
[[noreturn]] void fail(Args&&... args) {
  std::ostringstream s;
  (s << ... << std::forward<Args>(args));
  throw Error(s.str());
}

// The message of the exception being handled; call it only inside a catch block. Every kind of
// exception gets one line: what() for standard ones (std::filesystem::filesystem_error names the
// path), "out of memory" for std::bad_alloc, whose what() says nothing useful.
inline std::string current_exception_message() {
  try {
    throw;
  } catch (const std::bad_alloc&) {
    return "out of memory";
  } catch (const std::exception& e) {
    const std::string what = e.what();
    return what.empty() ? "unknown error" : what;
  } catch (...) {
    return "unknown exception (not a std::exception)";
  }
}

}  // namespace starattn

// Checks a condition that depends on input (files, flags, shapes); throws starattn::Error.
#define SA_CHECK(cond, ...)                     \
  do {                                          \
    if (!(cond)) ::starattn::fail(__VA_ARGS__); \
  } while (0)
