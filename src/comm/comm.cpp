// Comm helpers that need only the interface: the default choice of comm, argument agreement.
#include <algorithm>
#include <cstdlib>
#include <exception>
#include <limits>
#include <vector>

#include "comm/comm.h"
#include "starattn/error.h"

namespace starattn {

std::unique_ptr<Comm> make_default_comm() {
  // Set by OpenMPI's mpirun, by PMI-1/2 launchers (MPICH hydra, srun --mpi=pmi2) and by PMIx.
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"}) {
    if (std::getenv(var) != nullptr) return make_mpi_comm();
  }
  return make_local_comm();
}

void broadcast_string(Comm& comm, std::string& s, int root) {
  unsigned long long n = s.size();
  comm.broadcast(&n, sizeof n, root);
  s.resize(static_cast<size_t>(n));
  comm.broadcast(s.data(), s.size(), root);
}

namespace {

// A window of `s` around byte `at`, so a long serialised value shows where it differs.
std::string excerpt(const std::string& s, size_t at) {
  constexpr size_t kBefore = 30, kLen = 100;
  const size_t begin = at > kBefore ? at - kBefore : 0;
  std::string out = begin > 0 ? "..." : "";
  out += s.substr(begin, kLen);
  if (begin + kLen < s.size()) out += "...";
  return out;
}

}  // namespace

void agree_on_success(Comm& comm, const std::function<void()>& fn, double failed_wait_s) {
  std::string err;
  std::exception_ptr failure;
  bool agreed = false;  // fn's own agreement failed: every rank holds the same AgreedFailure
  int agreed_rank = 0;
  try {
    fn();
  } catch (const AgreedFailure& e) {
    err = e.what();
    agreed = true;
    agreed_rank = e.failed_rank();
  } catch (...) {
    err = current_exception_message();
    failure = std::current_exception();
  }
  if (comm.size() == 1) {
    if (!err.empty()) throw AgreedFailure(err, 0);
    return;
  }
  const int mine = err.empty() ? 0 : 1;
  std::vector<int> failed(static_cast<size_t>(comm.size()));
  // Ranks that succeeded wait as long as it takes: a failed rank ends the job if it cannot wait.
  const double wait = failure ? failed_wait_s : std::numeric_limits<double>::infinity();
  if (!comm.allgather_within(&mine, failed.data(), sizeof(int), wait))
    std::rethrow_exception(failure);
  const auto first = std::find(failed.begin(), failed.end(), 1);
  if (first == failed.end()) return;
  if (agreed) throw AgreedFailure(err, agreed_rank);  // already the same on every rank
  const int root = static_cast<int>(first - failed.begin());
  broadcast_string(comm, err, root);
  throw AgreedFailure("rank " + std::to_string(root) + ": " + err, root);
}

void check_same_on_all_ranks(Comm& comm, const std::string& what, const std::string& value) {
  // Every rank compares itself with rank 0, then all learn every verdict, so all throw together.
  std::string ref = value;
  broadcast_string(comm, ref, 0);
  const int differs = ref != value ? 1 : 0;
  std::vector<int> verdicts(static_cast<size_t>(comm.size()));
  comm.allgather(&differs, verdicts.data(), sizeof(int));
  const auto first = std::find(verdicts.begin(), verdicts.end(), 1);
  if (first == verdicts.end()) return;
  const int bad = static_cast<int>(first - verdicts.begin());
  const auto n_bad = std::count(verdicts.begin(), verdicts.end(), 1);
  std::string other = value;  // rank `bad`'s value, so every rank's message is the same
  broadcast_string(comm, other, bad);
  const size_t at = static_cast<size_t>(
      std::mismatch(ref.begin(), ref.begin() + std::min(ref.size(), other.size()), other.begin())
          .first -
      ref.begin());
  fail(what, " differs across ranks (", n_bad, " of ", comm.size(),
       " differ from rank 0; first at byte ", at, "): rank 0 has \"", excerpt(ref, at), "\", rank ",
       bad, " has \"", excerpt(other, at), "\"");
}

}  // namespace starattn
