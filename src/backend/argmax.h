// Greedy choice over logits, shared by the host sampler and the backends' greedy forward.
#pragma once

#include <cmath>

namespace starattn {

// Lowest index of the maximum; NaN never wins.
inline int argmax(const float* x, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i)
    if (x[i] > x[best] || std::isnan(x[best])) best = i;
  return best;
}

}  // namespace starattn
