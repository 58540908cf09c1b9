// TensorComm over NCCL (nccl_comm.cpp), built only with the CUDA backend (STARATTN_HAVE_CUDA).
#pragma once

#include <memory>

#include "backend/backend.h"
#include "comm/comm.h"
#include "comm/tensor_comm.h"

namespace starattn {

// Tensor transfers between CUDA backends over NCCL, one process per GPU. Every rank of `control`
// must call it (it is collective: rank 0 makes the NCCL id and sends it over `control`). `backend`
// must be a CUDA backend; no two ranks may share a GPU (NCCL refuses).
std::unique_ptr<TensorComm> make_nccl_tensor_comm(Comm& control, Backend& backend);

}  // namespace starattn
