// Failure propagation: rank 1 fails (as if it could not open the model) while every other rank
// waits in a collective that can never complete as it is. The job must still end, non-zero,
// within seconds, with the message printed once.
//   comm_mpi_abort abort       rank 1 catches starattn::Error and calls abort_all (the app pattern)
//   comm_mpi_abort uncaught    rank 1 lets the exception escape main (std::terminate)
//   comm_mpi_abort bad_alloc   rank 1 throws std::bad_alloc inside agree_on_success, which the
//                              others reach too: every rank learns of it, rank 0 prints it, and
//                              all exit 1 in order (no abort)
//   comm_mpi_abort filesystem  the same with std::filesystem::filesystem_error
//   comm_mpi_abort slow_peer   rank 1 fails inside agree_on_success while the others are still
//                              busy for a minute: rank 1 must not wait for them, but end the job
// Run through expect_fast_failure.sh, which checks the exit code, the elapsed time and the message.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <new>
#include <string>
#include <system_error>
#include <thread>

#include "comm/comm.h"
#include "starattn/error.h"

namespace {

void open_model() {
  starattn::fail("cannot open model 'missing.gguf'");
}

}  // namespace

int main(int argc, char** argv) {
  using starattn::AgreedFailure;
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode != "abort" && mode != "uncaught" && mode != "bad_alloc" && mode != "filesystem" &&
      mode != "slow_peer") {
    std::fprintf(stderr, "usage: comm_mpi_abort abort|uncaught|bad_alloc|filesystem|slow_peer\n");
    return 2;
  }
  auto comm = starattn::make_mpi_comm();
  if (comm->size() < 2) {
    std::fprintf(stderr, "comm_mpi_abort needs at least 2 ranks\n");
    return 2;
  }
  const bool failing = comm->rank() == 1;
  if (mode == "bad_alloc" || mode == "filesystem" || mode == "slow_peer") {
    try {
      starattn::agree_on_success(*comm, [&] {
        if (!failing) {
          if (mode == "slow_peer") std::this_thread::sleep_for(std::chrono::seconds(60));
          return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the others wait first
        if (mode == "bad_alloc") throw std::bad_alloc();
        if (mode == "filesystem")
          throw std::filesystem::filesystem_error(
              "cannot search the model's folder", "models",
              std::make_error_code(std::errc::permission_denied));
        open_model();
      });
    } catch (const AgreedFailure& e) {
      if (comm->rank() == 0) std::fprintf(stderr, "starattn: error: %s\n", e.what());
      return 1;  // every rank, in order: MPI is finalised together
    } catch (...) {
      comm->abort_all(starattn::current_exception_message(), 3);
    }
    std::printf("rank %d found no failure\n", comm->rank());
    return 0;
  }
  if (failing) {
    // Give the other ranks time to enter the barrier, so the test proves they are freed from it.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    if (mode == "uncaught") open_model();
    try {
      open_model();
    } catch (const starattn::Error& e) {
      comm->abort_all(e.what(), 3);
    }
  }
  comm->barrier();
  std::printf("rank %d passed a barrier that rank 1 never entered\n", comm->rank());
  return 0;
}
