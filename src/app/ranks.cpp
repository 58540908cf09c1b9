#include "app/ranks.h"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <new>
#include <string>
#include <system_error>

namespace starattn::app {

void on_all_ranks(Comm& comm, const std::function<void()>& fn) {
  agree_on_success(comm, fn);
}

int run_on_ranks(Comm& comm, const std::function<int()>& body) {
  try {
    return body();
  } catch (const AgreedFailure& e) {
    if (comm.rank() == 0) {
      std::fflush(stdout);
      std::fprintf(stderr, "starattn: error: %s\n", e.what());
    }
    return 1;
  } catch (...) {
    if (comm.size() == 1) throw;
    // Other ranks may be waiting in a collective this rank will never join: end them all.
    comm.abort_all(current_exception_message(), 1);
  }
  return 1;  // not reached: abort_all ends the job (GCC does not trust [[noreturn]] on virtuals)
}

int run_on_default_comm(const std::function<int(Comm&)>& body) {
  std::unique_ptr<Comm> comm = make_default_comm();
  return run_on_ranks(*comm, [&] { return body(*comm); });
}

void fault_point(const Comm& comm, const char* stage) {
  const char* spec = std::getenv("STARATTN_FAULT");
  if (spec == nullptr) return;
  const std::string s = spec;
  const size_t a = s.find(':'), b = a == std::string::npos ? a : s.find(':', a + 1);
  SA_CHECK(b != std::string::npos, "STARATTN_FAULT='", s, "' is not STAGE:RANK:KIND");
  const std::string want_stage = s.substr(0, a), kind = s.substr(b + 1);
  const int rank = std::atoi(s.substr(a + 1, b - a - 1).c_str());
  if (want_stage != stage || rank != comm.rank()) return;
  // The wall-clock time of the fault, so that a test can time how long the other ranks take to
  // end from here (tests/mpi/startup_fault_test.sh), whatever the start-up before it cost.
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::fprintf(stderr, "starattn: fault injection: rank %d fails at %s, unix time %.3f\n",
               comm.rank(), stage, now);
  std::fflush(stderr);
  const std::string what = std::string("injected fault at ") + stage;
  if (kind == "error") fail(what);
  if (kind == "filesystem")
    throw std::filesystem::filesystem_error(what, "models",
                                            std::make_error_code(std::errc::permission_denied));
  if (kind == "bad_alloc") throw std::bad_alloc();
  if (kind == "kill") std::raise(SIGKILL);
  fail("STARATTN_FAULT: unknown kind '", kind, "' (error, filesystem, bad_alloc or kill)");
}

}  // namespace starattn::app
