// The host-staged TensorComm: every transfer goes backend -> host buffer -> Comm -> backend and is
// finished when the call returns (so start_exchange does the whole exchange and wait_exchange has
// nothing left to do).
#include "comm/tensor_comm.h"

#include <chrono>
#include <vector>

namespace starattn {
namespace {

class HostTensorComm : public TensorComm {
 public:
  HostTensorComm(Comm& comm, Backend& backend) : comm_(comm), b_(backend) {}

  int rank() const override { return comm_.rank(); }
  int size() const override { return comm_.size(); }
  std::string name() const override { return "host-staged"; }

  void allgather(const void* send, void* recv, size_t bytes_each) override {
    out_.resize(bytes_each);
    in_.resize(bytes_each * comm_.size());
    b_.to_host(out_.data(), send, bytes_each);
    timed([&] { comm_.allgather(out_.data(), in_.data(), bytes_each); });
    b_.from_host(recv, in_.data(), in_.size());
  }

  void broadcast(void* data, size_t bytes, int root) override {
    out_.resize(bytes);
    if (comm_.rank() == root) b_.to_host(out_.data(), data, bytes);
    timed([&] { comm_.broadcast(out_.data(), bytes, root); });
    if (comm_.rank() != root) b_.from_host(data, out_.data(), bytes);
  }

  void start_exchange(const void* send, size_t send_bytes, int to, void* recv, size_t recv_bytes,
                      int from) override {
    out_.resize(send_bytes);
    in_.resize(recv_bytes);
    b_.to_host(out_.data(), send, send_bytes);
    timed([&] {
      comm_.sendrecv(out_.data(), send_bytes, to, in_.data(), recv_bytes, from, /*tag=*/0);
    });
    b_.from_host(recv, in_.data(), recv_bytes);
  }
  void wait_exchange() override {}

  double seconds() override { return seconds_; }

 private:
  template <typename F>
  void timed(F&& f) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  Comm& comm_;
  Backend& b_;
  std::vector<char> out_, in_;
  double seconds_ = 0.0;
};

}  // namespace

std::unique_ptr<TensorComm> make_host_tensor_comm(Comm& comm, Backend& backend) {
  return std::make_unique<HostTensorComm>(comm, backend);
}

}  // namespace starattn
