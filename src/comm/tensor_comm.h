// TensorComm: moves tensors that live in a backend's memory between ranks: the phase-2 partial
// results, the ring's KV shards and the broadcast anchor. Comm (comm.h) stays the control plane
// (token ids, argument agreement, failure); TensorComm is the data plane, with two implementations:
//   - host-staged (here): backend -> host -> Comm -> host -> backend. Any backend, any Comm; the
//     CPU backend's "staging" is a memcpy. Every call completes before it returns.
//   - NCCL (backend/cuda/nccl_comm.h): GPU memory to GPU memory on a stream of its own, fenced by
//     events against the backend's stream; the host never waits.
// Ordering contract, the same for both: an operation sees all backend work queued before the call,
// and backend work queued after the call (after wait(), for the ring's exchange) sees its result.
// Calls are collective like Comm's: every rank, the same order, the same sizes.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "backend/backend.h"
#include "comm/comm.h"

namespace starattn {

class TensorComm {
 public:
  virtual ~TensorComm() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string name() const = 0;  // "host-staged" or "nccl"

  // recv: [size * bytes_each], rank r's block at r * bytes_each.
  virtual void allgather(const void* send, void* recv, size_t bytes_each) = 0;
  virtual void broadcast(void* data, size_t bytes, int root) = 0;  // root only reads data
  // One ring step that may run while the backend computes: sends `send` to rank `to`, receives
  // `recv` from rank `from`. Neither buffer may be touched by backend work queued before
  // wait_exchange(); the next start_exchange may only come after it.
  virtual void start_exchange(const void* send, size_t send_bytes, int to, void* recv,
                              size_t recv_bytes, int from) = 0;
  virtual void wait_exchange() = 0;

  // Seconds spent in transfers so far (for the "share of time communicating" figures). The NCCL
  // implementation measures its stream with events, so this may wait for queued work.
  virtual double seconds() = 0;
};

// Host-staged transfers through `comm`. Keeps references to both.
std::unique_ptr<TensorComm> make_host_tensor_comm(Comm& comm, Backend& backend);

// How this job's ranks move tensors (collective: every rank calls it, all get the same kind):
// NCCL when every rank has a GPU of its own, else staging through the host over `comm` (CPU
// ranks, a single rank, or several ranks sharing a GPU, which NCCL refuses; then *note, when
// given, says so).
std::unique_ptr<TensorComm> make_tensor_comm(Comm& comm, Backend& backend,
                                             std::string* note = nullptr);

}  // namespace starattn
