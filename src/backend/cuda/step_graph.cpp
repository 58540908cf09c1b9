#include "backend/cuda/step_graph.h"

#include "backend/cuda/cuda_check.h"

namespace starattn::cuda {

void StepGraph::run(const StepKey& key, cudaStream_t stream, const std::function<void()>& step) {
  if (exec_ && key_ == key) {
    SA_CUDA(cudaGraphLaunch(exec_, stream));
    ++replayed_;
    return;
  }
  if (warm_key_ != key.replay_key) {
    warm_key_ = key.replay_key;
    step();
    return;
  }
  drop();
  // Relaxed: the warm call already sized every buffer, so nothing unsafe runs while capturing.
  SA_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed));
  cudaGraph_t graph = nullptr;
  try {
    step();
  } catch (...) {
    (void)cudaStreamEndCapture(stream, &graph);  // the stream must leave capture mode
    if (graph) (void)cudaGraphDestroy(graph);
    (void)cudaGetLastError();
    throw;
  }
  SA_CUDA(cudaStreamEndCapture(stream, &graph));
  const cudaError_t e = cudaGraphInstantiate(&exec_, graph, 0);
  (void)cudaGraphDestroy(graph);
  if (e != cudaSuccess) exec_ = nullptr;
  SA_CUDA(e);
  key_ = key;
  SA_CUDA(cudaGraphLaunch(exec_, stream));
  ++replayed_;
}

void StepGraph::drop() noexcept {
  if (exec_) (void)cudaGraphExecDestroy(exec_);
  exec_ = nullptr;
  key_ = StepKey{};
}

}  // namespace starattn::cuda
