// Comm helpers that need only the interface: the default choice of comm, argument agreement.
#include <algorithm>
#include <cstdlib>
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
