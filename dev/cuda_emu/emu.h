// A CPU emulation of the CUDA the attention kernels use, so that their logic (fragment indices,
// masks, pipelines, epilogues, the host launch code) can be checked on a machine without a GPU,
// against the same tests the GPU runs. Not a simulator of timing or of the memory model:
//  - every CUDA thread is a fiber; blocks run one after another; device memory is host memory;
//  - __syncthreads / __syncwarp are barriers over the block's / warp's threads that have not
//    exited; between two of them a warp's lanes run one after another, so code that relies on
//    a warp running converged without saying so (__syncwarp) fails here;
//  - __shfl_xor_sync, ldmatrix.x4 (.trans) and mma.sync m16n8k16 bf16 (fp32 accumulate) are
//    warp collectives with the fragment layouts of the PTX ISA;
//  - cp.async copies land at issue or, with EMU_CP_ASYNC=late, at the cp.async.wait_group that
//    covers them: the first catches a stage overwritten too early, the second a tile read
//    before its wait;
//  - shared memory is filled with 0xFF (NaN in bf16 and fp32) before each block.
// The emulated device has EMU_SMS SMs (default 132) of compute capability 8.0, so the wgmma
// kernels are never chosen. prep.py turns the sources into code g++ compiles with this header
// forced in (-include); build.sh builds the attention tests that way.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

#define __launch_bounds__(...)

namespace emu {

uint3& tidx();
uint3& bidx();
dim3& bdim();
dim3& gdim();
unsigned char* smem();  // the block's dynamic shared memory
void sync_block();
void sync_warp();
void* warp_slots();  // 32 lanes x 64 bytes of scratch for the current warp's collectives
int lane();
void cp_async16(void* dst, const void* src, bool valid);
void cp_async_commit();
void cp_async_wait(int newest_pending);
void ldmatrix_x4(uint32_t (&r)[4], const void* row_address, bool trans);
void mma_bf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);

template <class T>
T shfl_xor(T v, int x) {
  static_assert(sizeof(T) <= 64);
  auto* s = static_cast<unsigned char*>(warp_slots());
  std::memcpy(s + 64 * lane(), &v, sizeof(T));
  sync_warp();
  T r;
  std::memcpy(&r, s + 64 * (lane() ^ x), sizeof(T));
  sync_warp();
  return r;
}

// kernel<<<grid, block, smem, stream>>>(args) becomes launch(Cfg(grid, block, smem, stream),
// kernel, args): the arguments are converted to the kernel's parameter types once, and every
// thread of every block calls the kernel with them.
struct Cfg {
  dim3 grid, block;
  size_t smem;
  Cfg(dim3 g, dim3 b, size_t s = 0, cudaStream_t = nullptr) : grid(g), block(b), smem(s) {}
};
void run_grid(const Cfg& c, const std::function<void()>& body);

template <class... P, class... A>
void launch(const Cfg& c, void (*k)(P...), A&&... a) {
  const std::tuple<std::decay_t<P>...> params(std::forward<A>(a)...);
  run_grid(c, [&]() { std::apply(k, params); });
}

}  // namespace emu

#define threadIdx (::emu::tidx())
#define blockIdx (::emu::bidx())
#define blockDim (::emu::bdim())
#define gridDim (::emu::gdim())
inline void __syncthreads() {
  emu::sync_block();
}
inline void __syncwarp(unsigned = 0xffffffffu) {
  emu::sync_warp();
}
template <class T>
inline T __shfl_xor_sync(unsigned, T v, int x, int = 32) {
  return emu::shfl_xor(v, x);
}
inline float __log2f(float x) {
  return std::log2(x);
}
inline float __expf(float x) {
  return std::exp(x);
}
inline float cospif(float x) {
  return static_cast<float>(std::cos(M_PI * double(x)));
}
inline int min(int a, int b) {
  return a < b ? a : b;
}
inline int max(int a, int b) {
  return a > b ? a : b;
}

// The runtime's template overloads that take a kernel, which cuda_runtime.h has only for nvcc.
template <class... P>
inline cudaError_t cudaFuncSetAttribute(void (*f)(P...), cudaFuncAttribute a, int v) {
  return cudaFuncSetAttribute(reinterpret_cast<const void*>(f), a, v);
}
template <class... P>
inline cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* n, void (*f)(P...), int b,
                                                                 size_t s) {
  return cudaOccupancyMaxActiveBlocksPerMultiprocessor(n, reinterpret_cast<const void*>(f), b, s);
}
