// The choice of TensorComm for a job: NCCL where it can work, host staging everywhere else.
#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

#include "comm/tensor_comm.h"
#ifdef STARATTN_HAVE_CUDA
#include "backend/cuda/cuda_factory.h"
#include "comm/nccl_comm.h"
#endif

namespace starattn {

std::unique_ptr<TensorComm> make_tensor_comm(Comm& comm, Backend& backend, std::string* note) {
  if (comm.size() == 1) return make_host_tensor_comm(comm, backend);
  // Each rank's (host, GPU); NCCL needs a GPU on every rank and no GPU twice.
  struct Where {
    uint64_t host = 0;
    int device = -1;
  } me;
#ifdef STARATTN_HAVE_CUDA
  me.device = cuda_backend_device(backend);
#endif
  char name[256] = {};
  (void)gethostname(name, sizeof name - 1);
  me.host = std::hash<std::string>{}(name);
  std::vector<Where> all(static_cast<size_t>(comm.size()));
  comm.allgather(&me, all.data(), sizeof me);
  bool every_gpu = true, shared = false;
  for (size_t i = 0; i < all.size(); ++i) {
    every_gpu = every_gpu && all[i].device >= 0;
    for (size_t j = 0; j < i; ++j)
      shared = shared || (all[i].host == all[j].host && all[i].device == all[j].device);
  }
#ifdef STARATTN_HAVE_CUDA
  if (every_gpu && !shared) return make_nccl_tensor_comm(comm, backend);
#endif
  if (every_gpu && shared && note)
    *note = "several ranks share a GPU, so tensors between ranks are staged through host memory "
            "(NCCL needs one GPU per rank)";
  return make_host_tensor_comm(comm, backend);
}

}  // namespace starattn
