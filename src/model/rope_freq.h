// RoPE inverse frequencies of a model, [head_dim / 2], as Hugging Face transformers computes them
// (fp32 arithmetic), with Llama 3.1's frequency scaling. Header-only and C++17 so both backends
// (the CUDA sources are C++17) rotate by exactly the same angles.
#pragma once

#include <cmath>
#include <vector>

#include "model/config.h"

namespace starattn {

inline std::vector<float> rope_inv_freq(const ModelConfig& c) {
  const int half = c.head_dim / 2;
  std::vector<float> f(half);
  for (int i = 0; i < half; ++i)
    f[i] =
        1.0f / std::pow(c.rope_theta, static_cast<float>(2 * i) / static_cast<float>(c.head_dim));
  const RopeScaling& s = c.rope_scaling;
  if (!s.llama3) return f;
  // Llama 3.1 scaling: long wavelengths are slowed by `factor`, short ones kept, and the band
  // between is interpolated smoothly (transformers' _compute_llama3_parameters).
  const float pi = 3.14159265358979323846f;
  const float old_len = static_cast<float>(s.original_max_positions);
  const float low_wavelen = old_len / s.low_freq_factor;
  const float high_wavelen = old_len / s.high_freq_factor;
  for (int i = 0; i < half; ++i) {
    const float wavelen = 2.0f * pi / f[i];
    if (wavelen > low_wavelen) {
      f[i] = f[i] / s.factor;
    } else if (wavelen >= high_wavelen) {
      const float smooth =
          (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      f[i] = (1.0f - smooth) * f[i] / s.factor + smooth * f[i];
    }
  }
  return f;
}

}  // namespace starattn
