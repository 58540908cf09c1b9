// One-token forwards recorded once as a CUDA graph and replayed: without it, launch gaps cost
// about 0.4 ms of an 8 ms decode step at 32K on an H100. A recording is valid while what it
// captured stays as it was, so it is keyed by the hook's replay key (AttentionHook::replay_key),
// the outputs the forward leaves, and the memory it captured (the workspace block and its layout,
// the attention kernels' split-KV workspace). Plain C++ (the CUDA runtime only).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <functional>

namespace starattn::cuda {

// Everything a recorded step depends on; a recording replays only for an equal key.
struct StepKey {
  uint64_t replay_key = 0;  // the hook's; never 0 (0 means "do not record")
  int hidden_rows = 0;      // final hidden rows the step leaves for the host
  bool greedy = false;      // the step ends with the last row's logits and argmax
  const void* workspace = nullptr;
  int workspace_rows = 0;
  uint64_t attn_generation = 0;  // cuda::attention_workspace_generation()
  bool operator==(const StepKey&) const = default;
};

class StepGraph {
 public:
  StepGraph() = default;
  ~StepGraph() { drop(); }
  StepGraph(const StepGraph&) = delete;
  StepGraph& operator=(const StepGraph&) = delete;

  // Runs `step`, which only queues work on `stream`, for `key`: the recording when it was made
  // for an equal key. Otherwise a replay key's first call runs `step` op by op, so that every
  // buffer it touches reaches its size (nothing may be allocated while a graph is captured), and
  // its next call records `step`, replacing any older recording, and launches the recording.
  void run(const StepKey& key, cudaStream_t stream, const std::function<void()>& step);
  // Forgets the recording (before the memory it captured goes away).
  void drop() noexcept;
  // Steps run by launching a recording so far.
  int64_t replayed() const { return replayed_; }

 private:
  StepKey key_;
  cudaGraphExec_t exec_ = nullptr;
  uint64_t warm_key_ = 0;  // the replay key whose first call ran op by op
  int64_t replayed_ = 0;
};

}  // namespace starattn::cuda
