// LocalComm: one process, no MPI calls, so single-rank runs need neither mpirun nor MPI_Init.
// Argument checks match the MPI comm's, so a bad root or peer fails the same way on 1 rank as on 8.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "comm/comm.h"
#include "starattn/error.h"

namespace starattn {
namespace {

class LocalComm final : public Comm {
 public:
  int rank() const override { return 0; }
  int local_rank() const override { return 0; }
  int local_size() const override { return 1; }
  int size() const override { return 1; }
  void barrier() override {}

  void broadcast(void* data, size_t bytes, int root) override {
    check_rank("broadcast", "root", root);
    check_ptr("broadcast", data, bytes);
  }
  void allreduce_max(float* data, size_t count) override {
    check_ptr("allreduce_max", data, count);
  }

  bool allgather_within(const void* send, void* recv, size_t bytes_each, double) override {
    copy("allgather", send, recv, bytes_each);
    return true;
  }
  void allgather(const void* send, void* recv, size_t bytes_each) override {
    copy("allgather", send, recv, bytes_each);
  }
  void sendrecv(const void* send, size_t send_bytes, int to, void* recv, size_t recv_bytes,
                int from, int tag) override {
    check_p2p("sendrecv", to, tag);
    check_rank("sendrecv", "from", from);
    SA_CHECK(send_bytes == recv_bytes, "Comm::sendrecv (local): sends ", send_bytes,
             " bytes to itself but expects ", recv_bytes);
    copy("sendrecv", send, recv, send_bytes);
  }

  [[noreturn]] void abort_all(const std::string& msg, int code) override {
    std::fprintf(stderr, "starattn: fatal: %s\n", msg.c_str());
    std::fflush(stderr);
    std::exit(code != 0 ? code : 1);  // as the MPI comm: an aborted run never looks successful
  }

 private:
  static void check_rank(const char* op, const char* what, int r) {
    SA_CHECK(r == 0, "Comm::", op, " (local): ", what, " ", r, " out of range [0, 1)");
  }
  static void check_p2p(const char* op, int peer, int tag) {
    check_rank(op, "peer", peer);
    SA_CHECK(tag >= 0, "Comm::", op, " (local): tag ", tag, " is negative");
  }
  static void check_ptr(const char* op, const void* p, size_t n) {
    SA_CHECK(p != nullptr || n == 0, "Comm::", op, " (local): null buffer for ", n, " elements");
  }
  static void copy(const char* op, const void* send, void* recv, size_t bytes) {
    check_ptr(op, send, bytes);
    check_ptr(op, recv, bytes);
    if (bytes > 0 && send != recv) std::memmove(recv, send, bytes);
  }
};

}  // namespace

std::unique_ptr<Comm> make_local_comm() {
  return std::make_unique<LocalComm>();
}

}  // namespace starattn
