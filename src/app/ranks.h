// Error handling across ranks for the CLI. At the points where every rank is known to arrive
// (after loading, after checking arguments) a failure on any rank becomes one message, printed
// once by rank 0, and every rank exits 1 in an orderly way. A failure anywhere else ends every
// rank at once through Comm::abort_all, so no rank waits forever in a collective. Both cover
// every exception, not only starattn::Error.
#pragma once

#include <functional>

#include "comm/comm.h"
#include "starattn/error.h"

namespace starattn::app {

// agree_on_success (comm/comm.h): runs fn on every rank; if it throws anything on any rank, every
// rank throws AgreedFailure with the message of the lowest failing rank.
void on_all_ranks(Comm& comm, const std::function<void()>& fn);

// Runs a subcommand body on this rank and turns errors into an exit code: an AgreedFailure is
// printed once (by rank 0) and every rank returns 1; any other exception ends the whole job with
// its message (several ranks) or propagates to main (a single process).
int run_on_ranks(Comm& comm, const std::function<int()>& body);
// A subcommand's whole run: make_default_comm, then run_on_ranks of body on it.
int run_on_default_comm(const std::function<int(Comm&)>& body);

// Fault injection for the multi-rank start-up tests (tests/mpi/startup_fault_test.sh). With
// STARATTN_FAULT=STAGE:RANK:KIND in the environment, rank RANK fails on reaching STAGE: KIND
// "error" throws starattn::Error, "filesystem" std::filesystem::filesystem_error, "bad_alloc"
// std::bad_alloc, and "kill" ends the process with SIGKILL, as the kernel's OOM killer would.
// The stages `generate` passes, in order: args, load, backend, tensor_comm, generate (just before
// the first collective of the run). The failing rank first prints the time on stderr, so that a
// test can measure how long the others take to end. Without the variable it does nothing.
void fault_point(const Comm& comm, const char* stage);

}  // namespace starattn::app
