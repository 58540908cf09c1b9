#include "app/ranks.h"

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

namespace starattn::app {

void on_all_ranks(Comm& comm, const std::function<void()>& fn) {
  std::string err;
  try {
    fn();
  } catch (const Error& e) {
    err = e.what();
    if (err.empty()) err = "unknown error";
  }
  if (comm.size() == 1) {
    if (!err.empty()) throw AgreedError(err, true);
    return;
  }
  const int mine = err.empty() ? 0 : 1;
  std::vector<int> failed(comm.size());
  comm.allgather(&mine, failed.data(), sizeof(int));
  const auto first = std::find(failed.begin(), failed.end(), 1);
  if (first == failed.end()) return;
  const int root = static_cast<int>(first - failed.begin());
  broadcast_string(comm, err, root);
  throw AgreedError("rank " + std::to_string(root) + ": " + err, comm.rank() == 0);
}

int run_on_ranks(Comm& comm, const std::function<int()>& body) {
  try {
    return body();
  } catch (const AgreedError& e) {
    if (e.should_print()) std::fprintf(stderr, "starattn: error: %s\n", e.what());
    return 1;
  } catch (const Error& e) {
    if (comm.size() == 1) throw;
    comm.abort_all(e.what(), 1);
  }
  return 1;  // not reached: abort_all ends the job (GCC does not trust [[noreturn]] on virtuals)
}

}  // namespace starattn::app
