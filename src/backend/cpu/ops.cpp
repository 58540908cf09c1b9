#include "backend/cpu/ops.h"

#include "backend/cpu/quant_matmul.h"
#include "backend/cpu/threads.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>

namespace starattn::cpu {
namespace {

// y[n, out] += bias[out] on every row.
void add_bias(float* y, const float* bias, int n, int out) {
#pragma omp parallel for schedule(static) if (n > 16)
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < out; ++j) y[static_cast<int64_t>(i) * out + j] += bias[j];
}

}  // namespace

void linear(const float* x, const float* w, const float* bias, float* y, int n, int in, int out) {
  blas_single_threaded();
  // Each thread computes a slab of output features with a single-threaded GEMM (threads.h). Small
  // products (decode's GEMVs) stay on one thread: waking the team costs more than they do.
  const double macs = static_cast<double>(n) * in * out;
  const int threads = macs < 2e6 ? 1 : std::max(1, std::min(omp_get_max_threads(), out / 16));
  const int slab = (out + threads - 1) / threads;
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int t = 0; t < threads; ++t) {
    const int o0 = t * slab, m = std::min(out, o0 + slab) - o0;
    if (m <= 0) continue;
    const float* ws = w + static_cast<int64_t>(o0) * in;
    if (n == 1) {
      cblas_sgemv(CblasRowMajor, CblasNoTrans, m, in, 1.0f, ws, in, x, 1, 0.0f, y + o0, 1);
    } else {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, m, in, 1.0f, x, in, ws, in, 0.0f,
                  y + o0, out);
    }
  }
  if (bias) add_bias(y, bias, n, out);
}

void linear(const float* x, const WeightMatrix& w, const float* bias, float* y, int n) {
  const int in = static_cast<int>(w.cols()), out = static_cast<int>(w.rows());
  if (w.type() == GgmlType::F32) {
    linear(x, w.f32(), bias, y, n, in, out);
    return;
  }
  linear_blocks(x, w, y, n);
  if (bias) add_bias(y, bias, n, out);
}

void linear_group(const float* x, std::initializer_list<LinearOut> outs, int n) {
  BlockProduct blocks[8];
  int count = 0;
  for (const LinearOut& o : outs) {
    if (o.w->type() == GgmlType::F32 || count == 8) {
      linear(x, *o.w, o.bias, o.y, n);
      continue;
    }
    blocks[count++] = {o.w, o.y};
  }
  linear_blocks_group(x, blocks, count, n);
  for (const LinearOut& o : outs)
    if (o.w->type() != GgmlType::F32 && o.bias)
      add_bias(o.y, o.bias, n, static_cast<int>(o.w->rows()));
}

void rmsnorm(const float* x, const float* w, float* y, int n, int d, float eps) {
#pragma omp parallel for schedule(static) if (n > 16)
  for (int i = 0; i < n; ++i) {
    const float* xi = x + static_cast<int64_t>(i) * d;
    float* yi = y + static_cast<int64_t>(i) * d;
    double ss = 0.0;
    for (int j = 0; j < d; ++j) ss += static_cast<double>(xi[j]) * xi[j];
    const float inv = 1.0f / std::sqrt(static_cast<float>(ss / d) + eps);
    for (int j = 0; j < d; ++j) yi[j] = xi[j] * inv * w[j];
  }
}

RopeTable rope_table(const std::vector<float>& inv_freq, const int* positions, int n) {
  RopeTable t;
  t.half = static_cast<int>(inv_freq.size());
  t.cos.resize(static_cast<size_t>(n) * t.half);
  t.sin.resize(t.cos.size());
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < t.half; ++j) {
      // fp32 product as in transformers, then cos/sin in double for a correctly rounded value.
      const float angle = static_cast<float>(positions[i]) * inv_freq[j];
      t.cos[static_cast<size_t>(i) * t.half + j] = static_cast<float>(std::cos(double{angle}));
      t.sin[static_cast<size_t>(i) * t.half + j] = static_cast<float>(std::sin(double{angle}));
    }
  }
  return t;
}

void apply_rope(float* x, const RopeTable& t, int n, int n_heads, int head_dim) {
  const int half = head_dim / 2;
#pragma omp parallel for schedule(static) if (n > 16)
  for (int i = 0; i < n; ++i) {
    const float* c = t.cos.data() + static_cast<size_t>(i) * half;
    const float* s = t.sin.data() + static_cast<size_t>(i) * half;
    for (int h = 0; h < n_heads; ++h) {
      float* v = x + (static_cast<int64_t>(i) * n_heads + h) * head_dim;
      for (int j = 0; j < half; ++j) {
        const float a = v[j], b = v[j + half];
        v[j] = a * c[j] - b * s[j];
        v[j + half] = b * c[j] + a * s[j];
      }
    }
  }
}

void swiglu(float* gate, const float* up, int64_t count) {
#pragma omp parallel for schedule(static) if (count > 65536)
  for (int64_t i = 0; i < count; ++i) {
    const float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void add_inplace(float* x, const float* y, int64_t count) {
#pragma omp parallel for schedule(static) if (count > 65536)
  for (int64_t i = 0; i < count; ++i) x[i] += y[i];
}

}  // namespace starattn::cpu
