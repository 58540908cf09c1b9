// Error handling across ranks for the CLI. At the points where every rank is known to arrive
// (after loading, after checking arguments) a failure on any rank becomes one message, printed
// once by rank 0, and every rank exits 1 in an orderly way. A failure anywhere else ends every
// rank at once through Comm::abort_all, so no rank waits forever in a collective.
#pragma once

#include <functional>

#include "comm/comm.h"
#include "starattn/error.h"

namespace starattn::app {

// Thrown on every rank once a failure has been agreed on; rank 0 prints it, the others stay quiet.
class AgreedError : public Error {
 public:
  AgreedError(const std::string& what, bool print) : Error(what), print_(print) {}
  bool should_print() const { return print_; }

 private:
  bool print_;
};

// Runs fn on every rank; if it throws starattn::Error on any rank, every rank throws AgreedError
// with the message of the lowest failing rank (prefixed with that rank when there are several).
void on_all_ranks(Comm& comm, const std::function<void()>& fn);

// Runs a subcommand body on this rank and turns errors into an exit code: an AgreedError prints
// once; any other Error ends the whole job (one rank) or propagates to main (single process).
int run_on_ranks(Comm& comm, const std::function<int()>& body);

}  // namespace starattn::app
