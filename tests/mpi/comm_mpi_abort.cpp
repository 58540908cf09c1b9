// Failure propagation: rank 1 fails (as if it could not open the model) while every other rank
// waits in a barrier that can never complete. The job must still end, non-zero, within seconds.
//   comm_mpi_abort abort     rank 1 catches starattn::Error and calls abort_all (the app pattern)
//   comm_mpi_abort uncaught  rank 1 lets the exception escape main (std::terminate)
// Run through expect_fast_failure.sh, which checks the exit code, the elapsed time and the message.
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "comm/comm.h"
#include "starattn/error.h"

namespace {

void open_model() {
  starattn::fail("cannot open model 'missing.gguf'");
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode != "abort" && mode != "uncaught") {
    std::fprintf(stderr, "usage: comm_mpi_abort abort|uncaught\n");
    return 2;
  }
  auto comm = starattn::make_mpi_comm();
  if (comm->size() < 2) {
    std::fprintf(stderr, "comm_mpi_abort needs at least 2 ranks\n");
    return 2;
  }
  if (comm->rank() == 1) {
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
