// The device argmax (backend/cuda/argmax.h) against the host's (backend/argmax.h), which greedy
// decoding on the CPU uses.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "backend/argmax.h"
#include "backend/cuda/argmax.h"
#include "cuda/cuda_test_util.h"
#include "test_util.h"

namespace starattn {
namespace {

using test::DevBuf;

TEST(CudaArgmax, MatchesHostArgmax) {
  SA_REQUIRE_GPU();
  std::mt19937 rng(8);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int vocab : {1, 37, 49152, 128256}) {
    const int n = 5;
    std::vector<float> x = test::random_vec(size_t{1} * n * vocab, rng);
    if (vocab > 2) {
      x[1] = 50.0f;  // row 0: a tie, the lower index wins
      x[vocab - 1] = 50.0f;
      x[vocab + 0] = nan;  // row 1: NaN never wins
      x[vocab + 2] = 60.0f;
      x[vocab + 1] = nan;
    }
    DevBuf<float> dx(x);
    DevBuf<int> out(n);
    cuda::argmax({dx.get(), vocab, n, vocab, out.get()}, nullptr);
    const std::vector<int> got = out.host();
    for (int i = 0; i < n; ++i)
      EXPECT_EQ(got[i], argmax(x.data() + int64_t{i} * vocab, vocab))
          << "row " << i << " of " << vocab;
  }
}

}  // namespace
}  // namespace starattn
