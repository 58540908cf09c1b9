// Comm: the one communication interface the engine uses between ranks (MPI processes).
//   - Star Attention phase 2: allgather of per-layer partial attention (o, lse).
//   - ring baseline: sendrecv passes KV shards around the ring.
//   - control: broadcast of token ids, agreement on arguments and on which work is done
//     (allreduce_max), failure propagation.
// Buffers are host memory. Sizes are in bytes unless a parameter says `count` (floats).
// Collectives must be called by every rank in the same order with the same sizes and root,
// exactly as in MPI; a mismatch is undefined (usually a hang or an error from MPI).
//
// Failure pattern for the app layer (a fatal error on one rank ends every rank), as run_on_ranks
// in src/app/ranks.h does it:
//
//   auto comm = make_default_comm();
//   try { run(*comm); } catch (...) { comm->abort_all(current_exception_message(), 1); }
//
// Only abort_all ends the job. Do NOT just `return 1` from main on one rank: the Comm destructor
// then calls MPI_Finalize, which waits for the ranks still blocked in a collective, and the job
// hangs. An exception escaping main (std::terminate) also ends the job, because mpirun kills the
// rest when one process dies abnormally, but it prints nothing useful.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "starattn/error.h"

namespace starattn {

class Comm {
 public:
  Comm() = default;
  Comm(const Comm&) = delete;
  Comm& operator=(const Comm&) = delete;
  virtual ~Comm() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // This rank among the ranks on its own host (MPI_COMM_TYPE_SHARED), and how many those are.
  virtual int local_rank() const = 0;
  virtual int local_size() const = 0;
  virtual void barrier() = 0;
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  // As broadcast, but a rank that waits sleeps between checks instead of spinning on a core: for
  // a worker waiting for the next order of a server, which may not come for hours. Every rank
  // must use this call for the same broadcast (MPI does not match it with a plain broadcast).
  virtual void broadcast_patiently(void* data, size_t bytes, int root) {
    broadcast(data, bytes, root);
  }
  virtual void allreduce_max(float* data, size_t count) = 0;  // in place
  // recv: [size * bytes_each], rank r's block at r * bytes_each. send may alias its own block.
  virtual void allgather(const void* send, void* recv, size_t bytes_each) = 0;
  // As allgather, but gives up after `seconds` (infinity: never) and returns false; the
  // operation is then still pending and this Comm must not be used again: end the job
  // (abort_all). Every rank must call this one, not allgather, to match (MPI does not match a
  // blocking collective with a nonblocking one). For agreeing on failures, where a rank that has
  // failed must not wait forever for ranks still busy. At most INT_MAX bytes each.
  virtual bool allgather_within(const void* send, void* recv, size_t bytes_each,
                                double seconds) = 0;
  // One ring step: send to `to` and receive from `from` at once, without deadlock whatever the
  // order ranks arrive in. send and recv must not overlap; the receiver's size must equal the
  // sender's exactly (checked: Error); tag >= 0. A rank may send to itself.
  virtual void sendrecv(const void* send, size_t send_bytes, int to, void* recv, size_t recv_bytes,
                        int from, int tag) = 0;
  // The app-layer escape hatch and the only place the job ends: prints msg once (from the calling
  // rank, to stderr) and ends every rank with exit code `code` (MPI: MPI_Abort on
  // MPI_COMM_WORLD, which makes mpirun kill the others; local: std::exit). Code 0 becomes 1.
  // Never returns.
  [[noreturn]] virtual void abort_all(const std::string& msg, int code) = 0;
};

// Single process, size 1. Collectives are the identity (allgather copies send to recv), and so is
// sendrecv to self.
std::unique_ptr<Comm> make_local_comm();

struct MpiCommOptions {
  // Largest piece handed to one MPI call. MPI counts are int, so transfers above this are split;
  // tests lower it to exercise the split paths with small buffers.
  size_t max_chunk_bytes = size_t{1} << 30;
};

// Initialises MPI if nobody has (MPI_Init_thread, FUNNELED: only the main thread calls MPI, OpenMP
// threads do not) and finalises on destruction if it initialised. Sets MPI_ERRORS_RETURN on
// MPI_COMM_WORLD so MPI errors come back as starattn::Error naming the call, file:line and rank.
// Works on its own duplicate of MPI_COMM_WORLD, so its messages never meet anyone else's.
std::unique_ptr<Comm> make_mpi_comm(const MpiCommOptions& options = {});

// MPI when launched by mpirun/srun (OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK set), else local.
std::unique_ptr<Comm> make_default_comm();

// Throws starattn::Error on every rank (none hangs) unless `value` is identical on all ranks; the
// message names `what` and the first rank that differs from rank 0, with both values (shortened).
void check_same_on_all_ranks(Comm& comm, const std::string& what, const std::string& value);

// Thrown on every rank by agree_on_success when the function failed on some rank; the message is
// the same on every rank.
class AgreedFailure : public Error {
 public:
  AgreedFailure(const std::string& what, int failed_rank)
      : Error(what), failed_rank_(failed_rank) {}
  int failed_rank() const { return failed_rank_; }

 private:
  int failed_rank_;
};

// Runs fn on this rank, then every rank learns whether fn threw on any rank: any exception, not
// only starattn::Error (std::bad_alloc, std::filesystem::filesystem_error, ...). When none did,
// every rank returns; otherwise every rank throws AgreedFailure with the message of the lowest
// failing rank (as "rank R: message" when there are several ranks), so that all can stop together
// instead of some waiting in a collective for a rank that has left.
// A rank whose fn failed waits at most `failed_wait_s` for the others to arrive (they may be
// busy for minutes, loading a model); past that it rethrows its own exception, and the caller
// must end the job with it (Comm::abort_all), since the agreement is left pending.
// Every rank must call it at the same point. fn may run collectives only before anything in it
// that can fail on one rank alone: a rank that throws early skips the rest of fn, so its later
// collectives would not pair.
void agree_on_success(Comm& comm, const std::function<void()>& fn, double failed_wait_s = 4.0);

// The device this rank uses when its host has n_devices of them (n_devices > 0): ranks on a host
// take them in turn by local rank, so mpirun, srun and other launchers all give each its own.
inline int local_device_index(const Comm& comm, int n_devices) {
  return comm.local_rank() % n_devices;
}

// Root's string replaces every other rank's.
void broadcast_string(Comm& comm, std::string& s, int root);

// Root's vector (size and contents) replaces every other rank's.
template <typename T>
void broadcast_vector(Comm& comm, std::vector<T>& v, int root) {
  static_assert(std::is_trivially_copyable_v<T>, "broadcast_vector sends raw bytes");
  unsigned long long n = v.size();
  comm.broadcast(&n, sizeof n, root);
  v.resize(static_cast<size_t>(n));
  comm.broadcast(v.data(), v.size() * sizeof(T), root);
}

}  // namespace starattn
