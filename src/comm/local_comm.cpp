// LocalComm: one process, no MPI calls, so single-rank runs need neither mpirun nor MPI_Init.
// Argument checks match the MPI comm's, so a bad root or peer fails the same way on 1 rank as on 8.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
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
  void allreduce_sum(float* data, size_t count) override {
    check_ptr("allreduce_sum", data, count);
  }
  void allreduce_max(float* data, size_t count) override {
    check_ptr("allreduce_max", data, count);
  }
  void reduce_sum(float* data, size_t count, int root) override {
    check_rank("reduce_sum", "root", root);
    check_ptr("reduce_sum", data, count);
  }

  bool allgather_within(const void* send, void* recv, size_t bytes_each, double) override {
    copy("allgather", send, recv, bytes_each);
    return true;
  }
  void allgather(const void* send, void* recv, size_t bytes_each) override {
    copy("allgather", send, recv, bytes_each);
  }
  void gather(const void* send, void* recv, size_t bytes_each, int root) override {
    check_rank("gather", "root", root);
    copy("gather", send, recv, bytes_each);
  }

  // With one process the only possible peer is ourselves: the message waits in a mailbox.
  void send(const void* data, size_t bytes, int peer, int tag) override {
    check_p2p("send", peer, tag);
    check_ptr("send", data, bytes);
    const auto* p = static_cast<const unsigned char*>(data);
    mailbox_[tag].emplace_back(p, p + bytes);
  }
  void recv(void* data, size_t bytes, int peer, int tag) override {
    check_p2p("recv", peer, tag);
    check_ptr("recv", data, bytes);
    auto it = mailbox_.find(tag);
    SA_CHECK(it != mailbox_.end() && !it->second.empty(),
             "Comm::recv (local): no message with tag ", tag,
             " was sent; with one rank it would never arrive");
    std::vector<unsigned char>& msg = it->second.front();
    SA_CHECK(msg.size() == bytes, "Comm::recv (local): message with tag ", tag, " has ", msg.size(),
             " bytes, expected ", bytes);
    if (bytes > 0) std::memcpy(data, msg.data(), bytes);
    it->second.pop_front();
    if (it->second.empty()) mailbox_.erase(it);
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

  std::map<int, std::deque<std::vector<unsigned char>>> mailbox_;  // tag -> pending messages
};

}  // namespace

std::unique_ptr<Comm> make_local_comm() {
  return std::make_unique<LocalComm>();
}

}  // namespace starattn
