// The emulator behind emu.h: fibers with a hand-written context switch (x86-64 System V), a
// round-robin scheduler per block, the warp collectives, and the CUDA runtime calls the kernels'
// host code and the tests make, over host memory.
#include "emu.h"

#include <cublas_v2.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

// Saves the callee-saved registers and the stack pointer in *save_sp, then resumes the fiber
// whose stack pointer is new_sp (pushed by an earlier emu_switch, or built by run_grid).
extern "C" void emu_switch(void** save_sp, void* new_sp);
asm(R"(
.text
.globl emu_switch
.type emu_switch, @function
emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
)");

namespace emu {
namespace {

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "emu: %s\n", what);
  std::abort();
}

struct Copy {
  void* dst;
  const void* src;
  bool valid;
};

struct Barrier {
  int arrived = 0;
  uint64_t gen = 0;
};

struct Fiber {
  void* sp = nullptr;
  uint3 tid;
  bool done = false;
  Barrier* waiting = nullptr;  // blocked until waiting->gen != wait_gen
  uint64_t wait_gen = 0;
  std::vector<std::vector<Copy>> groups;  // committed cp.async groups, oldest first
  std::vector<Copy> open;                 // issued since the last commit
};

struct Block {
  std::vector<Fiber> fibers;
  int alive = 0;
  std::vector<int> warp_alive;
  Barrier block_bar;
  std::vector<Barrier> warp_bar;
  std::vector<std::vector<unsigned char>> slots;
  void* sched = nullptr;
  int cur = -1;
  const std::function<void()>* body = nullptr;
};

constexpr size_t kStack = 128 * 1024;
constexpr size_t kSmem = 256 * 1024;
Block* g_block = nullptr;
uint3 g_bidx;
dim3 g_bdim, g_gdim;
alignas(128) unsigned char g_smem[kSmem];
std::vector<char*> g_stacks;  // reused by every block
const bool g_late = [] {
  const char* e = std::getenv("EMU_CP_ASYNC");
  return e && std::string(e) == "late";
}();

Fiber& cur() {
  return g_block->fibers[g_block->cur];
}

void land(const Copy& c) {
  if (c.valid)
    std::memcpy(c.dst, c.src, 16);
  else
    std::memset(c.dst, 0, 16);
}

void wait_on(Barrier& b, int need) {
  if (++b.arrived >= need) {
    b.arrived = 0;
    ++b.gen;
    return;
  }
  Fiber& f = cur();
  f.waiting = &b;
  f.wait_gen = b.gen;
  emu_switch(&f.sp, g_block->sched);
}

// A thread that exits no longer counts: a barrier the others already reached opens.
void release_if_complete(Barrier& b, int need) {
  if (b.arrived > 0 && b.arrived >= need) {
    b.arrived = 0;
    ++b.gen;
  }
}

void fiber_entry() {
  Block& b = *g_block;
  const int idx = b.cur;
  (*b.body)();
  Fiber& f = b.fibers[idx];
  for (auto& g : f.groups)
    for (auto& c : g) land(c);
  for (auto& c : f.open) land(c);
  f.done = true;
  --b.alive;
  const int w = static_cast<int>(f.tid.x / 32);
  --b.warp_alive[w];
  release_if_complete(b.block_bar, b.alive);
  release_if_complete(b.warp_bar[w], b.warp_alive[w]);
  emu_switch(&f.sp, b.sched);  // never resumed
}

bool in_smem(const void* p, size_t bytes) {
  const auto* c = static_cast<const unsigned char*>(p);
  return c >= g_smem && c + bytes <= g_smem + kSmem;
}

float bf16_value(uint16_t h) {
  const uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace

uint3& tidx() {
  return cur().tid;
}
uint3& bidx() {
  return g_bidx;
}
dim3& bdim() {
  return g_bdim;
}
dim3& gdim() {
  return g_gdim;
}
unsigned char* smem() {
  return g_smem;
}
int lane() {
  return static_cast<int>(cur().tid.x % 32);
}

void sync_block() {
  wait_on(g_block->block_bar, g_block->alive);
}
void sync_warp() {
  const int w = static_cast<int>(cur().tid.x / 32);
  wait_on(g_block->warp_bar[w], g_block->warp_alive[w]);
}
void* warp_slots() {
  return g_block->slots[cur().tid.x / 32].data();
}

void cp_async16(void* dst, const void* src, bool valid) {
  if (reinterpret_cast<uintptr_t>(dst) % 16 || (valid && reinterpret_cast<uintptr_t>(src) % 16))
    die("misaligned cp.async");
  if (!in_smem(dst, 16)) die("cp.async outside shared memory");
  const Copy c{dst, src, valid};
  if (g_late)
    cur().open.push_back(c);
  else
    land(c);
}
void cp_async_commit() {
  Fiber& f = cur();
  f.groups.push_back(std::move(f.open));
  f.open.clear();
}
void cp_async_wait(int newest_pending) {
  Fiber& f = cur();
  while (static_cast<int>(f.groups.size()) > newest_pending) {
    for (auto& c : f.groups.front()) land(c);
    f.groups.erase(f.groups.begin());
  }
}

// Lanes 8j..8j+7 give the rows of matrix j; lane l receives, of each matrix, row l/4 columns
// 2(l%4), 2(l%4)+1, or with .trans the transposed pair: rows 2(l%4), 2(l%4)+1 of column l/4.
void ldmatrix_x4(uint32_t (&r)[4], const void* row_address, bool trans) {
  if (!in_smem(row_address, 16) || reinterpret_cast<uintptr_t>(row_address) % 16)
    die("ldmatrix row address outside shared memory or misaligned");
  auto* s = static_cast<const uint16_t**>(warp_slots());
  const int l = lane();
  s[l] = static_cast<const uint16_t*>(row_address);
  sync_warp();
  for (int j = 0; j < 4; ++j) {
    uint16_t lo, hi;
    if (!trans) {
      const uint16_t* row = s[8 * j + l / 4];
      lo = row[2 * (l % 4)], hi = row[2 * (l % 4) + 1];
    } else {
      lo = s[8 * j + 2 * (l % 4)][l / 4];
      hi = s[8 * j + 2 * (l % 4) + 1][l / 4];
    }
    r[j] = uint32_t(lo) | (uint32_t(hi) << 16);
  }
  sync_warp();
}

// m16n8k16, g = lane / 4, t = lane % 4. A (16 x 16, row-major): a[0] = (g, 2t..2t+1),
// a[1] = (g+8, 2t..), a[2] = (g, 2t+8..), a[3] = (g+8, 2t+8..). B (16 x 8): b0 = (k 2t..2t+1,
// n g), b1 = (k 2t+8.., n g). C: c[0..1] = (g, 2t..2t+1), c[2..3] = (g+8, 2t..2t+1). The lower
// 16 bits of a register hold the lower index.
void mma_bf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  struct Fragments {
    uint32_t a[4], b[2];
  };
  auto* s = static_cast<Fragments*>(warp_slots());
  const int l = lane();
  s[l] = Fragments{{a[0], a[1], a[2], a[3]}, {b0, b1}};
  sync_warp();
  const auto half = [](uint32_t w, int k) { return bf16_value(uint16_t(k % 2 ? w >> 16 : w)); };
  const auto A = [&](int row, int k) {
    return half(s[(row % 8) * 4 + (k % 8) / 2].a[(row >= 8) + 2 * (k >= 8)], k);
  };
  const auto B = [&](int k, int col) { return half(s[col * 4 + (k % 8) / 2].b[k >= 8], k); };
  const int g = l / 4, t = l % 4;
  for (int i = 0; i < 4; ++i) {
    const int row = g + (i >= 2 ? 8 : 0), col = 2 * t + (i & 1);
    float acc = c[i];
    for (int k = 0; k < 16; ++k) acc += A(row, k) * B(k, col);
    c[i] = acc;
  }
  sync_warp();
}

void run_grid(const Cfg& c, const std::function<void()>& body) {
  if (c.block.y != 1 || c.block.z != 1) die("only 1-D blocks are emulated");
  if (c.smem > kSmem) die("more dynamic shared memory than the emulator holds");
  g_gdim = c.grid;
  g_bdim = c.block;
  const int n = static_cast<int>(c.block.x);
  const int warps = (n + 31) / 32;
  while (g_stacks.size() < static_cast<size_t>(n))
    g_stacks.push_back(static_cast<char*>(std::malloc(kStack)));
  for (unsigned z = 0; z < c.grid.z; ++z)
    for (unsigned y = 0; y < c.grid.y; ++y)
      for (unsigned x = 0; x < c.grid.x; ++x) {
        g_bidx = make_uint3(x, y, z);
        std::memset(g_smem, 0xFF, c.smem);
        Block b;
        b.fibers.resize(n);
        b.alive = n;
        b.warp_alive.assign(warps, 0);
        b.warp_bar.resize(warps);
        b.slots.assign(warps, std::vector<unsigned char>(32 * 64));
        b.body = &body;
        g_block = &b;
        for (int i = 0; i < n; ++i) {
          Fiber& f = b.fibers[i];
          f.tid = make_uint3(i, 0, 0);
          ++b.warp_alive[i / 32];
          // A fresh stack as emu_switch leaves one: six saved registers, then the return
          // address; 16-byte aligned so fiber_entry starts as if called.
          auto* top = reinterpret_cast<void**>((reinterpret_cast<uintptr_t>(g_stacks[i]) + kStack) &
                                               ~uintptr_t{15});
          void** sp = top - 8;
          for (int r = 0; r < 6; ++r) sp[r] = nullptr;
          sp[6] = reinterpret_cast<void*>(&fiber_entry);
          sp[7] = nullptr;
          f.sp = sp;
        }
        for (int done = 0; done < n;) {
          bool progressed = false;
          done = 0;
          for (int i = 0; i < n; ++i) {
            Fiber& f = b.fibers[i];
            if (f.done) {
              ++done;
              continue;
            }
            if (f.waiting && f.waiting->gen == f.wait_gen) continue;
            f.waiting = nullptr;
            b.cur = i;
            emu_switch(&b.sched, f.sp);
            progressed = true;
          }
          if (!progressed && done < n) die("deadlock: threads wait at different barriers");
        }
        g_block = nullptr;
      }
}

}  // namespace emu

// ---- the CUDA runtime over host memory ----
namespace {
cudaError_t g_last = cudaSuccess;
}

extern "C" {
cudaError_t cudaMalloc(void** p, size_t n) {
  *p = std::aligned_alloc(256, (n + 255) / 256 * 256);
  return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFree(void* p) {
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaMemcpy(void* d, const void* s, size_t n, cudaMemcpyKind) {
  std::memmove(d, s, n);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* d, const void* s, size_t n, cudaMemcpyKind, cudaStream_t) {
  std::memmove(d, s, n);
  return cudaSuccess;
}
cudaError_t cudaMemset(void* d, int v, size_t n) {
  std::memset(d, v, n);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* d, int v, size_t n, cudaStream_t) {
  std::memset(d, v, n);
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() {
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) {
  return cudaSuccess;
}
cudaError_t cudaGetLastError() {
  const cudaError_t e = g_last;
  g_last = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() {
  return g_last;
}
const char* cudaGetErrorString(cudaError_t e) {
  return e == cudaSuccess ? "no error" : "emu";
}
const char* cudaGetErrorName(cudaError_t e) {
  return e == cudaSuccess ? "cudaSuccess" : "emu";
}
cudaError_t cudaGetDevice(int* d) {
  *d = 0;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceCount(int* n) {
  *n = 1;
  return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr a, int) {
  static const int sms = [] {
    const char* e = std::getenv("EMU_SMS");
    return e ? std::atoi(e) : 132;
  }();
  *v = a == cudaDevAttrMultiProcessorCount ? sms : a == cudaDevAttrComputeCapabilityMajor ? 8 : 0;
  return cudaSuccess;
}
cudaError_t cudaFuncSetAttribute(const void*, cudaFuncAttribute a, int v) {
  if (a == cudaFuncAttributeMaxDynamicSharedMemorySize && v > 227 * 1024)
    return g_last = cudaErrorInvalidValue;
  return cudaSuccess;
}
// Two blocks an SM when their shared memory allows it (every kernel here is sized for that).
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* n, const void*, int, size_t smem) {
  *n = smem > 113 * 1024 ? 1 : 2;
  return cudaSuccess;
}
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(int* n, const void* f, int b,
                                                                   size_t s, unsigned) {
  return cudaOccupancyMaxActiveBlocksPerMultiprocessor(n, f, b, s);
}
const char* cublasGetStatusString(cublasStatus_t) {
  return "emu";
}
const char* cublasGetStatusName(cublasStatus_t) {
  return "emu";
}
}
