// Helpers for the CUDA backend's tests (ops_test.cu, backend_test.cpp): the GPU skip, device
// buffers, bf16 conversions on the host, and fixture paths that also work on the GPU machine,
// where the tree is copied elsewhere (STARATTN_SOURCE_DIR in the environment wins there).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "test_util.h"

namespace starattn::test {

inline bool gpu_present() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return n > 0;
}

#define SA_REQUIRE_GPU()                                                               \
  do {                                                                                 \
    if (!::starattn::test::gpu_present())                                              \
      GTEST_SKIP() << "no CUDA device: GPU test skipped (it runs on the GPU machine)"; \
  } while (0)

inline std::string source_dir() {
  const char* env = std::getenv("STARATTN_SOURCE_DIR");
  return env && *env ? std::string(env) : std::string(STARATTN_SOURCE_DIR);
}
inline std::string tiny_model_dir(const std::string& name) {
  return source_dir() + "/tests/fixtures/tiny/" + name;
}
inline std::string smollm2_path() {
  return source_dir() + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
}

// A device buffer of `count` T, poisoned with 0xFF bytes (NaN for fp32 and bf16) so that an element
// a kernel fails to write shows up as NaN.
template <typename T>
class DevBuf {
 public:
  explicit DevBuf(size_t count) : n_(count) {
    SA_CUDA(cudaMalloc(&p_, (count ? count : 1) * sizeof(T)));
    poison();
  }
  explicit DevBuf(const std::vector<T>& host) : DevBuf(host.size()) { upload(host); }
  ~DevBuf() { (void)cudaFree(p_); }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;

  T* get() const { return p_; }
  size_t size() const { return n_; }
  void poison() { SA_CUDA(cudaMemset(p_, 0xFF, (n_ ? n_ : 1) * sizeof(T))); }
  void upload(const std::vector<T>& host) {
    if (n_) SA_CUDA(cudaMemcpy(p_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<T> host() const {
    SA_CUDA(cudaDeviceSynchronize());
    std::vector<T> h(n_);
    if (n_) SA_CUDA(cudaMemcpy(h.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

inline __nv_bfloat16 to_bf16(float f) {
  const uint16_t b = bf16_bits(f);
  __nv_bfloat16 r;
  std::memcpy(&r, &b, 2);
  return r;
}
inline float to_float(__nv_bfloat16 x) {
  uint16_t b;
  std::memcpy(&b, &x, 2);
  return bf16_value(b);
}
inline std::vector<__nv_bfloat16> to_bf16(const std::vector<float>& v) {
  std::vector<__nv_bfloat16> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = to_bf16(v[i]);
  return r;
}
inline std::vector<float> to_float(const std::vector<__nv_bfloat16>& v) {
  std::vector<float> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = to_float(v[i]);
  return r;
}
// Rounds every value to bf16 (the inputs both backends then see exactly).
inline std::vector<float> bf16_round(std::vector<float> v) {
  for (float& x : v) x = bf16_value(bf16_bits(x));
  return v;
}

inline std::vector<float> random_vec(size_t n, std::mt19937& rng, float stddev = 1.0f,
                                     float mean = 0.0f) {
  std::normal_distribution<float> d(mean, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

}  // namespace starattn::test
