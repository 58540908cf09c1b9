// The CUDA backend's device memory: cudaMalloc with a cache of small released blocks. The engine's
// attention hooks take and drop their scratch every decode step, and cudaMalloc/cudaFree (which
// waits for the device) per step would cost more than the step's small kernels, so released
// blocks up to kCacheBlock bytes (kCacheTotal in all) are kept and handed out again. All use of
// the memory is on one stream, so a block reused while earlier work still reads it is safe (stream
// order). Plain C++ (the CUDA runtime only).
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <unordered_map>

namespace starattn::cuda {

class CachingAllocator {
 public:
  static constexpr size_t kCacheBlock = size_t{64} << 20, kCacheTotal = size_t{256} << 20;

  CachingAllocator() = default;
  // Frees the cached blocks; blocks still handed out are their owners' to release first.
  ~CachingAllocator() { drop_cache(); }
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // The device to allocate on, and its name for messages ("cuda:0 (NVIDIA H200)"); before any
  // alloc().
  void attach(int device, std::string who);

  // A block of at least `bytes` (nullptr for 0): a cached block of up to twice the size, else a
  // new one. When the device is full the cache is dropped and the allocation tried again, then
  // starattn::Error says how much was asked and how much is free.
  void* alloc(size_t bytes);
  // Caches the block when it is small enough and the cache has room, else frees it (cudaFree waits
  // for the device, so no queued work can still read it). Null is ignored.
  void release(void* p) noexcept;
  // Frees every cached block.
  void drop_cache() noexcept;
  // Bytes of released blocks kept for reuse: free memory to the model, though cudaMemGetInfo does
  // not count it.
  size_t cached_bytes() const { return cached_bytes_; }

 private:
  int device_ = 0;
  std::string who_ = "cuda";
  std::unordered_map<void*, size_t> live_;  // alloc()'d and not released: size
  std::multimap<size_t, void*> cached_;     // released, for reuse: size -> block
  size_t cached_bytes_ = 0;
};

}  // namespace starattn::cuda
