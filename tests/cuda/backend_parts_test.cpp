// The CUDA backend's parts on their own: recorded steps (step_graph.h) and the caching allocator
// (caching_allocator.h). CudaBackend's tests (backend_test.cpp) run them inside the model.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "backend/cuda/caching_allocator.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/step_graph.h"
#include "cuda/cuda_test_util.h"
#include "starattn/error.h"

namespace starattn {
namespace {

// A stream and one device int that each step sets to `value`.
struct StepFixture {
  cudaStream_t stream = nullptr;
  int* cell = nullptr;
  int calls = 0;  // times the step's code ran (op by op or under capture)
  StepFixture() {
    SA_CUDA(cudaStreamCreate(&stream));
    SA_CUDA(cudaMalloc(&cell, sizeof(int)));
  }
  ~StepFixture() {
    (void)cudaFree(cell);
    (void)cudaStreamDestroy(stream);
  }
  // The step: a memset, which a graph captures. Queues work only.
  void queue(unsigned char byte) {
    ++calls;
    SA_CUDA(cudaMemsetAsync(cell, byte, sizeof(int), stream));
  }
  int read() {
    int v = 0;
    SA_CUDA(cudaMemcpyAsync(&v, cell, sizeof v, cudaMemcpyDeviceToHost, stream));
    SA_CUDA(cudaStreamSynchronize(stream));
    return v;
  }
  void clear() { SA_CUDA(cudaMemsetAsync(cell, 0, sizeof(int), stream)); }
};

TEST(CudaStepGraph, RunsOpByOpThenRecordsThenReplays) {
  SA_REQUIRE_GPU();
  StepFixture f;
  cuda::StepGraph g;
  cuda::StepKey key;
  key.replay_key = 7;
  key.workspace = f.cell;
  key.workspace_rows = 1;
  const auto step = [&] { f.queue(0x11); };

  g.run(key, f.stream, step);  // a key's first call: op by op
  EXPECT_EQ(f.calls, 1);
  EXPECT_EQ(g.replayed(), 0);
  EXPECT_EQ(f.read(), 0x11111111);
  g.run(key, f.stream, step);  // the second: recorded, and the recording launched
  EXPECT_EQ(f.calls, 2);
  EXPECT_EQ(g.replayed(), 1);
  f.clear();
  g.run(key, f.stream, step);  // then replayed: the step's code does not run, its work does
  EXPECT_EQ(f.calls, 2);
  EXPECT_EQ(g.replayed(), 2);
  EXPECT_EQ(f.read(), 0x11111111);

  // Any other part of the key (here the workspace's rows) records again, without a warm-up call:
  // the buffers are sized for the replay key already.
  cuda::StepKey moved = key;
  moved.workspace_rows = 2;
  g.run(moved, f.stream, step);
  EXPECT_EQ(f.calls, 3);
  EXPECT_EQ(g.replayed(), 3);
  // A new replay key runs op by op first.
  cuda::StepKey other = key;
  other.replay_key = 8;
  g.run(other, f.stream, step);
  EXPECT_EQ(f.calls, 4);
  EXPECT_EQ(g.replayed(), 3);

  // A step that throws while it is captured: the error comes out, the stream leaves capture mode,
  // and the next call records afresh.
  cuda::StepKey greedy = other;
  greedy.greedy = true;
  EXPECT_THROW(g.run(greedy, f.stream, [&] { fail("step failed"); }), Error);
  f.clear();
  EXPECT_EQ(f.read(), 0);
  g.run(other, f.stream, [&] { f.queue(0x22); });
  EXPECT_EQ(g.replayed(), 4);
  EXPECT_EQ(f.read(), 0x22222222);
  g.drop();
  g.run(other, f.stream, step);  // dropped: recorded again (the key is warm)
  EXPECT_EQ(g.replayed(), 5);
  EXPECT_EQ(f.read(), 0x11111111);
}

TEST(CudaCachingAllocator, ReusesSmallBlocksFreesLargeOnesAndNamesTheDeviceWhenFull) {
  SA_REQUIRE_GPU();
  cuda::CachingAllocator m;
  m.attach(0, "cuda:0 (test)");
  EXPECT_EQ(m.alloc(0), nullptr);
  const size_t mib = size_t{1} << 20;
  void* a = m.alloc(mib);
  ASSERT_NE(a, nullptr);
  m.release(a);
  EXPECT_EQ(m.cached_bytes(), mib);
  void* b = m.alloc(mib - 100);  // a cached block of up to twice the size is handed out again
  EXPECT_EQ(b, a);
  EXPECT_EQ(m.cached_bytes(), 0u);
  m.release(b);
  void* c = m.alloc(mib / 4);  // the cached MiB is more than twice this: a new block
  EXPECT_NE(c, a);
  EXPECT_EQ(m.cached_bytes(), mib);
  void* big = m.alloc(cuda::CachingAllocator::kCacheBlock + 1);
  m.release(big);  // too large to cache: freed
  EXPECT_EQ(m.cached_bytes(), mib);
  m.release(c);
  EXPECT_EQ(m.cached_bytes(), mib + mib / 4);
  m.drop_cache();
  EXPECT_EQ(m.cached_bytes(), 0u);
  try {
    (void)m.alloc(size_t{1} << 50);
    FAIL() << "a petabyte was allocated";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("cuda:0 (test): out of GPU memory"), std::string::npos) << msg;
    EXPECT_NE(msg.find("--kv-type fp8"), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace starattn
