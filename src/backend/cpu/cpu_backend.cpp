#include "backend/cpu/cpu_backend.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>
#include <vector>

#include "attention/merge.h"
#include "starattn/error.h"

namespace starattn {

void* CpuBackend::alloc(size_t bytes) {
  if (bytes == 0) return nullptr;
  // 64-byte alignment keeps rows of KV and activations on cache lines for the BLAS kernels.
  void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  SA_CHECK(p != nullptr, "out of host memory: could not allocate ", bytes >> 20, " MiB");
  return p;
}

size_t CpuBackend::memory_available() const {
  std::FILE* f = std::fopen("/proc/meminfo", "r");
  if (!f) return 0;
  char line[256];
  unsigned long long kib = 0;
  while (std::fgets(line, sizeof line, f)) {
    if (std::sscanf(line, "MemAvailable: %llu kB", &kib) == 1) break;
  }
  std::fclose(f);
  return static_cast<size_t>(kib) << 10;
}

void CpuBackend::release(void* p) noexcept {
  std::free(p);
}

void CpuBackend::copy(void* dst, const void* src, size_t bytes) {
  if (bytes) std::memmove(dst, src, bytes);
}

void CpuBackend::write_kv_rows(void* k_dst, void* v_dst, const KvRowFormat& f, int64_t row,
                               const void* k, const void* v, int n) {
  const size_t rb = f.row_bytes();
  char* kd = static_cast<char*>(k_dst) + row * rb;
  char* vd = static_cast<char*>(v_dst) + row * rb;
  const int grid = kv_type_has_scales(f.type) ? 0 : kv_int8_grid_group(f.head_dim);
  if (f.type == KvType::Act) {
    copy(kd, k, n * rb);
    copy(vd, v, n * rb);
    if (grid > 0) {
      for (char* d : {kd, vd})
        round_kv_rows_int8_grid(reinterpret_cast<float*>(d), n, f.n_kv_heads, f.head_dim, grid);
    }
    return;
  }
  if (f.type == KvType::Bf16) {
    std::vector<float> tmp;
    for (auto [src, dst] : {std::pair{k, kd}, std::pair{v, vd}}) {
      const auto* x = static_cast<const float*>(src);
      if (grid > 0) {
        tmp.assign(x, x + n * f.kv_dim());
        round_kv_rows_int8_grid(tmp.data(), n, f.n_kv_heads, f.head_dim, grid);
        x = tmp.data();
      }
      round_kv_rows_bf16(x, n, f.kv_dim(), dst);
    }
    return;
  }
  if (f.type == KvType::Int8) {
    quantize_kv_rows_int8(f, static_cast<const float*>(k), n, kd);
    quantize_kv_rows_int8(f, static_cast<const float*>(v), n, vd);
    return;
  }
  SA_CHECK(f.type == KvType::Fp8, "write_kv_rows: unknown KV type ", kv_type_name(f.type));
  quantize_kv_rows_fp8(f, static_cast<const float*>(k), n, kd);
  quantize_kv_rows_fp8(f, static_cast<const float*>(v), n, vd);
}

void CpuBackend::merge(void* out_a, float* lse_a, const void* out_b, const float* lse_b, int rows,
                       int heads, int head_dim) {
  merge_attention(static_cast<float*>(out_a), lse_a, static_cast<const float*>(out_b), lse_b, rows,
                  heads, head_dim);
}

}  // namespace starattn
