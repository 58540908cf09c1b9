// TensorComm over NCCL: one process per GPU, GPU memory to GPU memory. MPI (the control Comm)
// carries the bootstrap; every transfer runs on a stream of its own, fenced by events against the
// backend's stream, so neither the host nor the backend's queue waits for the network unless a
// later kernel needs the data.
#include <nccl.h>

#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_factory.h"
#include "comm/nccl_comm.h"
#include "starattn/error.h"

namespace starattn {
namespace {

[[noreturn]] void nccl_fail(ncclResult_t r, ncclComm_t comm, const char* call, const char* file,
                            int line) {
  const char* detail = comm ? ncclGetLastError(comm) : "";
  fail(call, " failed at ", file, ":", line, ": ", ncclGetErrorString(r),
       detail && *detail ? std::string(" (") + detail + ")" : std::string());
}

// Inside NcclTensorComm only (it names the member comm_ for NCCL's last-error text).
#define SA_NCCL(call)                                                                       \
  do {                                                                                      \
    const ncclResult_t sa_nccl_r_ = (call);                                                 \
    if (sa_nccl_r_ != ncclSuccess) nccl_fail(sa_nccl_r_, comm_, #call, __FILE__, __LINE__); \
  } while (0)

class NcclTensorComm : public TensorComm {
 public:
  NcclTensorComm(Comm& control, CudaBackend& backend)
      : rank_(control.rank()), size_(control.size()), b_(backend) {
    // NVLink multicast (NVLS) stays off: on shared hosts a program using it can put every GPU
    // out of service. Forced, not defaulted, whatever the caller's environment says.
    setenv("NCCL_NVLS_ENABLE", "0", 1);
    ncclUniqueId id{};
    // ncclCommInitRank waits, with no timeout, until every rank has joined. So every rank first
    // gets ready (its GPU selected, rank 0's unique id made) and all agree that all are: a rank
    // that fails here makes every rank throw the same AgreedFailure, instead of leaving the
    // others inside NCCL waiting for it. A failure inside the init itself ends the job through
    // the app's abort (Comm::abort_all), which mpirun turns into the end of every rank.
    agree_on_success(control, [&] {
      SA_CUDA(cudaSetDevice(b_.device()));
      if (rank_ == 0) SA_NCCL(ncclGetUniqueId(&id));
    });
    control.broadcast(&id, sizeof id, 0);
    SA_NCCL(ncclCommInitRank(&comm_, size_, id, rank_));
    SA_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    SA_CUDA(cudaEventCreateWithFlags(&compute_ready_, cudaEventDisableTiming));
    SA_CUDA(cudaEventCreateWithFlags(&comm_done_, cudaEventDisableTiming));
  }

  ~NcclTensorComm() override {
    if (stream_) (void)cudaStreamSynchronize(stream_);
    for (auto [a, z] : spans_) (void)cudaEventDestroy(a), (void)cudaEventDestroy(z);
    for (cudaEvent_t e : spare_) (void)cudaEventDestroy(e);
    if (compute_ready_) (void)cudaEventDestroy(compute_ready_);
    if (comm_done_) (void)cudaEventDestroy(comm_done_);
    if (stream_) (void)cudaStreamDestroy(stream_);
    if (comm_) (void)ncclCommDestroy(comm_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "nccl"; }

  void allgather(const void* send, void* recv, size_t bytes_each) override {
    begin();
    SA_NCCL(ncclAllGather(send, recv, bytes_each, ncclChar, comm_, stream_));
    end();
    fence();
  }

  void broadcast(void* data, size_t bytes, int root) override {
    begin();
    SA_NCCL(ncclBroadcast(data, data, bytes, ncclChar, root, comm_, stream_));
    end();
    fence();
  }

  void start_exchange(const void* send, size_t send_bytes, int to, void* recv, size_t recv_bytes,
                      int from) override {
    begin();
    SA_NCCL(ncclGroupStart());
    SA_NCCL(ncclSend(send, send_bytes, ncclChar, to, comm_, stream_));
    SA_NCCL(ncclRecv(recv, recv_bytes, ncclChar, from, comm_, stream_));
    SA_NCCL(ncclGroupEnd());
    end();
  }
  void wait_exchange() override { fence(); }

  double seconds() override {
    if (!spans_.empty()) {
      SA_CUDA(cudaEventSynchronize(spans_.back().second));
      for (auto [a, z] : spans_) {
        float ms = 0;
        SA_CUDA(cudaEventElapsedTime(&ms, a, z));
        seconds_ += ms / 1e3;
        spare_.push_back(a);
        spare_.push_back(z);
      }
      spans_.clear();
    }
    return seconds_;
  }

 private:
  // The comm stream waits for the backend's queued work, then a timing event marks the start.
  void begin() {
    SA_CUDA(cudaSetDevice(b_.device()));
    SA_CUDA(cudaEventRecord(compute_ready_, b_.stream()));
    SA_CUDA(cudaStreamWaitEvent(stream_, compute_ready_, 0));
    if (spans_.size() >= kMaxSpans) seconds();  // keep the event pool bounded
    span_start_ = take_event();
    SA_CUDA(cudaEventRecord(span_start_, stream_));
  }
  void end() {
    cudaEvent_t z = take_event();
    SA_CUDA(cudaEventRecord(z, stream_));
    spans_.emplace_back(span_start_, z);
  }
  // The backend's later work waits for the transfers queued so far.
  void fence() {
    SA_CUDA(cudaEventRecord(comm_done_, stream_));
    SA_CUDA(cudaStreamWaitEvent(b_.stream(), comm_done_, 0));
  }
  cudaEvent_t take_event() {
    cudaEvent_t e = nullptr;
    if (!spare_.empty()) {
      e = spare_.back();
      spare_.pop_back();
    } else {
      SA_CUDA(cudaEventCreate(&e));
    }
    return e;
  }

  static constexpr size_t kMaxSpans = 1024;
  int rank_, size_;
  CudaBackend& b_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t compute_ready_ = nullptr, comm_done_ = nullptr;
  std::vector<std::pair<cudaEvent_t, cudaEvent_t>> spans_;  // (start, end) of each transfer
  std::vector<cudaEvent_t> spare_;
  cudaEvent_t span_start_ = nullptr;
  double seconds_ = 0.0;
};

}  // namespace

std::unique_ptr<TensorComm> make_nccl_tensor_comm(Comm& control, Backend& backend) {
  auto* cuda = dynamic_cast<CudaBackend*>(&backend);
  SA_CHECK(cuda, "NCCL moves GPU memory only; backend ", backend.name(), " is not a CUDA backend");
  return std::make_unique<NcclTensorComm>(control, *cuda);
}

}  // namespace starattn
