#include "backend/cuda/caching_allocator.h"

#include <cuda_runtime.h>

#include <utility>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/memory_plan.h"
#include "starattn/error.h"

namespace starattn::cuda {

void CachingAllocator::attach(int device, std::string who) {
  device_ = device;
  who_ = std::move(who);
}

void* CachingAllocator::alloc(size_t bytes) {
  if (bytes == 0) return nullptr;
  // A cached block of the size, or up to twice it.
  const auto hit = cached_.lower_bound(bytes);
  if (hit != cached_.end() && hit->first <= 2 * bytes) {
    void* p = hit->second;
    live_[p] = hit->first;
    cached_bytes_ -= hit->first;
    cached_.erase(hit);
    return p;
  }
  SA_CUDA(cudaSetDevice(device_));
  void* p = nullptr;
  cudaError_t e = cudaMalloc(&p, bytes);
  if (e == cudaErrorMemoryAllocation && cached_bytes_ > 0) {
    (void)cudaGetLastError();
    drop_cache();
    e = cudaMalloc(&p, bytes);
  }
  if (e == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    size_t free = 0, total = 0;
    SA_CUDA(cudaMemGetInfo(&free, &total));
    fail(who_, ": out of GPU memory: could not allocate ", gib(bytes), " (", gib(free),
         " free); use more ranks, a smaller --block-size, a shorter context or --kv-type fp8");
  }
  SA_CUDA(e);
  live_[p] = bytes;
  return p;
}

void CachingAllocator::release(void* p) noexcept {
  if (!p) return;
  const auto it = live_.find(p);
  const size_t bytes = it == live_.end() ? 0 : it->second;
  if (it != live_.end()) live_.erase(it);
  if (bytes > 0 && bytes <= kCacheBlock && cached_bytes_ + bytes <= kCacheTotal) {
    cached_.emplace(bytes, p);
    cached_bytes_ += bytes;
    return;
  }
  (void)cudaFree(p);  // waits for the device: no queued work can still read p
}

void CachingAllocator::drop_cache() noexcept {
  for (const auto& [bytes, p] : cached_) (void)cudaFree(p);
  cached_.clear();
  cached_bytes_ = 0;
}

}  // namespace starattn::cuda
