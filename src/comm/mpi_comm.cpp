// MpiComm: Comm over MPI with host buffers. Every call is checked (SA_MPI_CHECK); transfers are cut
// into pieces of at most max_chunk_bytes because MPI counts are int (2^31 - 1 elements).
#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "comm/comm.h"
#include "comm/mpi_check.h"
#include "starattn/error.h"

namespace starattn {

namespace detail {

void mpi_fail(int rc, const char* call, const char* file, int line) {
  char text[MPI_MAX_ERROR_STRING] = {};
  int len = 0;
  if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) {
    std::snprintf(text, sizeof text, "MPI error code %d", rc);
  }
  int initialized = 0, finalized = 0, rank = -1;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  fail(call, " failed at ", file, ":", line, " on rank ", rank >= 0 ? std::to_string(rank) : "?",
       ": ", text);
}

}  // namespace detail

namespace {

// One rank's block of `bytes` inside a recv buffer whose blocks are `stride` bytes apart. When a
// block is split into pieces, each gather step moves one piece of every rank's block: a datatype
// of `bytes` bytes with extent `stride` puts rank r's piece at r * stride from the piece's offset.
class BlockType {
 public:
  BlockType(size_t bytes, size_t stride) {
    if (bytes == stride) {
      type_ = MPI_BYTE;
      count_ = static_cast<int>(bytes);
      return;
    }
    MPI_Datatype piece = MPI_DATATYPE_NULL;
    SA_MPI_CHECK(MPI_Type_contiguous(static_cast<int>(bytes), MPI_BYTE, &piece));
    const int rc = MPI_Type_create_resized(piece, 0, static_cast<MPI_Aint>(stride), &type_);
    MPI_Type_free(&piece);
    SA_MPI_CHECK(rc);
    owned_ = true;
    SA_MPI_CHECK(MPI_Type_commit(&type_));
    count_ = 1;
  }
  ~BlockType() {
    if (owned_) MPI_Type_free(&type_);
  }
  BlockType(const BlockType&) = delete;
  BlockType& operator=(const BlockType&) = delete;

  MPI_Datatype type() const { return type_; }
  int count() const { return count_; }

 private:
  MPI_Datatype type_ = MPI_DATATYPE_NULL;
  int count_ = 0;
  bool owned_ = false;
};

bool overlap(const void* a, size_t na, const void* b, size_t nb) {
  const auto pa = reinterpret_cast<uintptr_t>(a), pb = reinterpret_cast<uintptr_t>(b);
  return na > 0 && nb > 0 && pa < pb + nb && pb < pa + na;
}

class MpiComm final : public Comm {
 public:
  explicit MpiComm(const MpiCommOptions& options) : chunk_(options.max_chunk_bytes) {
    SA_CHECK(chunk_ >= sizeof(float) && chunk_ <= static_cast<size_t>(INT_MAX),
             "make_mpi_comm: max_chunk_bytes ", chunk_, " outside [4, INT_MAX]");
    int initialized = 0, finalized = 0;
    SA_MPI_CHECK(MPI_Finalized(&finalized));
    SA_CHECK(!finalized, "make_mpi_comm: MPI was already finalised and cannot start again");
    SA_MPI_CHECK(MPI_Initialized(&initialized));
    if (!initialized) {
      // FUNNELED: OpenMP threads compute, only the main thread talks to MPI.
      int provided = 0;
      SA_MPI_CHECK(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided));
      owns_mpi_ = true;
    }
    try {
      SA_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
      SA_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &comm_));  // inherits MPI_ERRORS_RETURN
      SA_MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
      SA_MPI_CHECK(MPI_Comm_size(comm_, &size_));
      // Ranks that share this host (and its GPUs), whatever launched them: mpirun, srun, hydra.
      MPI_Comm host = MPI_COMM_NULL;
      SA_MPI_CHECK(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &host));
      SA_MPI_CHECK(MPI_Comm_rank(host, &local_rank_));
      SA_MPI_CHECK(MPI_Comm_size(host, &local_size_));
      SA_MPI_CHECK(MPI_Comm_free(&host));
      int* tag_ub = nullptr;
      int flag = 0;
      SA_MPI_CHECK(MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &tag_ub, &flag));
      if (flag && tag_ub) tag_ub_ = *tag_ub;
    } catch (...) {
      release();
      throw;
    }
  }
  ~MpiComm() override { release(); }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  int local_size() const override { return local_size_; }
  void barrier() override { SA_MPI_CHECK(MPI_Barrier(comm_)); }

  void broadcast(void* data, size_t bytes, int root) override {
    check_rank("broadcast", "root", root);
    check_ptr("broadcast", data, bytes);
    auto* p = static_cast<char*>(data);
    for (size_t off = 0; off < bytes; off += chunk_) {
      SA_MPI_CHECK(MPI_Bcast(p + off, piece(bytes - off, chunk_), MPI_BYTE, root, comm_));
    }
  }

  void broadcast_patiently(void* data, size_t bytes, int root) override {
    check_rank("broadcast_patiently", "root", root);
    check_ptr("broadcast_patiently", data, bytes);
    SA_CHECK(bytes <= chunk_, "Comm::broadcast_patiently: ", bytes,
             " bytes is more than one piece");
    MPI_Request req = MPI_REQUEST_NULL;
    SA_MPI_CHECK(MPI_Ibcast(data, static_cast<int>(bytes), MPI_BYTE, root, comm_, &req));
    // Poll quickly at first (the next order usually follows at once), then back off to 2 ms.
    int done = 0;
    for (int wait_us = 20; !done; wait_us = std::min(2 * wait_us, 2000)) {
      SA_MPI_CHECK(MPI_Test(&req, &done, MPI_STATUS_IGNORE));
      if (!done) std::this_thread::sleep_for(std::chrono::microseconds(wait_us));
    }
  }

  void allreduce_max(float* data, size_t count) override {
    allreduce("allreduce_max", data, count, MPI_MAX);
  }

  void allgather(const void* send, void* recv, size_t bytes_each) override {
    check_ptr("allgather", send, bytes_each);
    check_ptr("allgather", recv, bytes_each);
    const auto* s = static_cast<const char*>(send);
    auto* r = static_cast<char*>(recv);
    const bool in_place = bytes_each > 0 && s == r + rank_ * bytes_each;  // MPI forbids aliasing
    for (size_t off = 0; off < bytes_each; off += chunk_) {
      const int n = piece(bytes_each - off, chunk_);
      const BlockType block(static_cast<size_t>(n), bytes_each);
      SA_MPI_CHECK(MPI_Allgather(in_place ? MPI_IN_PLACE : s + off, n, MPI_BYTE, r + off,
                                 block.count(), block.type(), comm_));
    }
  }

  // One nonblocking allgather, tested until it completes or the deadline passes.
  bool allgather_within(const void* send, void* recv, size_t bytes_each, double seconds) override {
    check_ptr("allgather_within", send, bytes_each);
    check_ptr("allgather_within", recv, bytes_each);
    SA_CHECK(bytes_each <= static_cast<size_t>(INT_MAX), "Comm::allgather_within: ", bytes_each,
             " bytes per rank is more than one MPI call carries");
    const auto* s = static_cast<const char*>(send);
    auto* r = static_cast<char*>(recv);
    const bool in_place = bytes_each > 0 && s == r + rank_ * bytes_each;
    const int n = static_cast<int>(bytes_each);
    MPI_Request req = MPI_REQUEST_NULL;
    SA_MPI_CHECK(
        MPI_Iallgather(in_place ? MPI_IN_PLACE : s, n, MPI_BYTE, r, n, MPI_BYTE, comm_, &req));
    using clock = std::chrono::steady_clock;
    const auto start = clock::now();
    for (;;) {
      int done = 0;
      SA_MPI_CHECK(MPI_Test(&req, &done, MPI_STATUS_IGNORE));
      if (done) return true;
      if (std::chrono::duration<double>(clock::now() - start).count() > seconds) return false;
      // Waiting here is for start-up and failures, not the hot path: a short sleep keeps the
      // CPU free for ranks still at work on this host.
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }

  // Nonblocking pieces, then one wait: no rank waits for its `to` before its `from` is served, so
  // any ring order completes. Receives are posted first so large messages land without staging.
  void sendrecv(const void* send, size_t send_bytes, int to, void* recv, size_t recv_bytes,
                int from, int tag) override {
    check_p2p("sendrecv", to, tag);
    check_rank("sendrecv", "from", from);
    check_ptr("sendrecv", send, send_bytes);
    check_ptr("sendrecv", recv, recv_bytes);
    SA_CHECK(!overlap(send, send_bytes, recv, recv_bytes),
             "Comm::sendrecv: send and recv buffers overlap on rank ", rank_);
    std::vector<MPI_Request> reqs;
    std::vector<int> expected;  // bytes of each receive piece
    auto* r = static_cast<char*>(recv);
    size_t off = 0;
    do {
      const int n = piece(recv_bytes - off, chunk_);
      reqs.emplace_back();
      SA_MPI_CHECK(MPI_Irecv(r + off, n, MPI_BYTE, from, tag, comm_, &reqs.back()));
      expected.push_back(n);
      off += static_cast<size_t>(n);
    } while (off < recv_bytes);
    const auto* s = static_cast<const char*>(send);
    off = 0;
    do {
      const int n = piece(send_bytes - off, chunk_);
      reqs.emplace_back();
      SA_MPI_CHECK(MPI_Isend(s + off, n, MPI_BYTE, to, tag, comm_, &reqs.back()));
      off += static_cast<size_t>(n);
    } while (off < send_bytes);

    // One wait per request rather than MPI_Waitall: OpenMPI 4.1's Waitall can wait forever when
    // one of the receives fails (a message longer than posted), where MPI_Wait returns the error.
    // Every request is waited for before the first error is reported, so none is left pending.
    std::vector<MPI_Status> st(reqs.size());
    int first_error = MPI_SUCCESS;
    for (size_t i = 0; i < reqs.size(); ++i) {
      const int rc = MPI_Wait(&reqs[i], &st[i]);
      if (rc != MPI_SUCCESS && first_error == MPI_SUCCESS) first_error = rc;
    }
    SA_MPI_CHECK(first_error);
    for (size_t i = 0; i < expected.size(); ++i) {
      check_received("sendrecv", st[i], expected[i], recv_bytes, from, tag);
    }
  }

  [[noreturn]] void abort_all(const std::string& msg, int code) override {
    std::fflush(stdout);
    std::fprintf(stderr, "starattn: fatal error on rank %d of %d: %s\n", rank_, size_, msg.c_str());
    std::fflush(stderr);
    // An aborted job must never look successful to a script, so code 0 becomes 1.
    const int exit_code = code != 0 ? code : 1;
    MPI_Abort(MPI_COMM_WORLD, exit_code);
    std::_Exit(exit_code);  // MPI_Abort does not return; this only satisfies [[noreturn]]
  }

 private:
  // Size of the next piece: what is left, at most `limit` (<= INT_MAX by construction).
  static int piece(size_t left, size_t limit) { return static_cast<int>(std::min(left, limit)); }

  void allreduce(const char* op_name, float* data, size_t count, MPI_Op op) {
    check_ptr(op_name, data, count);
    const size_t step = chunk_ / sizeof(float);
    for (size_t off = 0; off < count; off += step) {
      SA_MPI_CHECK(
          MPI_Allreduce(MPI_IN_PLACE, data + off, piece(count - off, step), MPI_FLOAT, op, comm_));
    }
  }

  void check_rank(const char* op, const char* what, int r) const {
    SA_CHECK(r >= 0 && r < size_, "Comm::", op, ": ", what, " ", r, " out of range [0, ", size_,
             ") on rank ", rank_);
  }
  void check_p2p(const char* op, int peer, int tag) const {
    check_rank(op, "peer", peer);
    SA_CHECK(tag >= 0 && tag <= tag_ub_, "Comm::", op, ": tag ", tag, " outside [0, ", tag_ub_,
             "] on rank ", rank_);
  }
  void check_ptr(const char* op, const void* p, size_t n) const {
    SA_CHECK(p != nullptr || n == 0, "Comm::", op, ": null buffer for ", n, " elements on rank ",
             rank_);
  }
  // A shorter message than posted arrives without an MPI error; the sizes must match exactly.
  void check_received(const char* op, const MPI_Status& st, int want, size_t total, int peer,
                      int tag) const {
    int got = 0;
    SA_MPI_CHECK(MPI_Get_count(&st, MPI_BYTE, &got));
    SA_CHECK(got == want, "Comm::", op, ": rank ", rank_, " expected ", total, " bytes from rank ",
             peer, " (tag ", tag, ") but the sender sent fewer (a piece of ", got,
             " bytes instead of ", want, ")");
  }

  // Destructors must not throw, so errors here are ignored; after an error the job is ending.
  void release() noexcept {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) return;  // someone else finalised first; our communicator is gone with it
    if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
    if (owns_mpi_) MPI_Finalize();
  }

  size_t chunk_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  bool owns_mpi_ = false;
  int rank_ = 0;
  int size_ = 1;
  int local_rank_ = 0, local_size_ = 1;
  int tag_ub_ = 32767;  // the least MPI guarantees; replaced by the real bound
};

}  // namespace

std::unique_ptr<Comm> make_mpi_comm(const MpiCommOptions& options) {
  return std::make_unique<MpiComm>(options);
}

}  // namespace starattn
