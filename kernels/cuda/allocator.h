// CachingAllocator: the device-memory cache behind CUDA tensors. Plain C++ with
// no CUDA dependency: the raw allocate/release functions are injected, so the
// bookkeeping (size classes, reuse, statistics, release on OOM and shutdown) is
// unit-tested on the CPU with a fake backend (tests/cuda/test_allocator.cpp).
//
// Why a cache: a DiT step allocates and frees hundreds of activations of a few
// recurring sizes; cudaMalloc/cudaFree synchronise the device and cost tens of
// microseconds each. Freed blocks go to a bin keyed by their rounded size and
// are handed out again for a request of the same class. All work runs on one
// stream per pipeline, so a block freed by the host can be reused by the next
// launch on that stream without extra synchronisation (stream order).
//
// Size classes: requests round up to 512 bytes below 1 MiB; from 1 MiB up each
// power of two is split into 4 classes (at most 25% waste), which keeps the
// number of distinct bins small while big activations still fit closely.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace t2v::ops::cuda {

struct AllocatorStats {
  size_t in_use_bytes = 0;        // bytes of blocks handed out (rounded sizes)
  size_t peak_in_use_bytes = 0;   // high-water mark of in_use_bytes
  size_t cached_bytes = 0;        // bytes of free blocks kept in the bins
  size_t reserved_bytes = 0;      // in_use + cached: what the device has given us
  size_t peak_reserved_bytes = 0;
  uint64_t allocations = 0;       // calls to allocate()
  uint64_t cache_hits = 0;        // allocate() served from a bin
  uint64_t raw_allocations = 0;   // calls to the raw allocator
  uint64_t raw_frees = 0;
};

class CachingAllocator {
 public:
  // raw_alloc returns nullptr when the device is out of memory (it must not throw
  // for that case); raw_free releases a pointer raw_alloc returned.
  using RawAlloc = std::function<void*(size_t)>;
  using RawFree = std::function<void(void*)>;

  CachingAllocator(RawAlloc raw_alloc, RawFree raw_free);
  ~CachingAllocator();  // releases cached blocks; live blocks are released too (and counted)
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // The size class a request of `nbytes` is served from (>= nbytes, >= 512).
  static size_t round_size(size_t nbytes);

  // Never returns nullptr: on a failed raw allocation, all cached blocks are
  // released and the request is retried once; if that fails too it throws
  // t2v::Error(69) naming the request and the reserved/in-use bytes.
  void* allocate(size_t nbytes);
  // Returns a block to its bin. nullptr is ignored; an unknown pointer is a bug (T2V_ASSERT).
  void free(void* p);
  // Releases every cached (free) block to the raw allocator.
  void release_cached();
  // Releases everything, live blocks included (shutdown). Returns how many live
  // blocks there were (tensors still alive at shutdown: their pointers dangle).
  size_t release_all();

  AllocatorStats stats() const;
  void reset_peak();  // peak_* := current values (per-stage peak measurement)
  size_t block_size(void* p) const;  // rounded size of a live block; 0 if unknown

 private:
  void* raw_allocate_locked(size_t size);
  void release_cached_locked();

  RawAlloc raw_alloc_;
  RawFree raw_free_;
  mutable std::mutex mu_;
  std::map<size_t, std::vector<void*>> bins_;  // rounded size -> free blocks
  std::unordered_map<void*, size_t> live_;     // block -> rounded size
  AllocatorStats st_;
};

}  // namespace t2v::ops::cuda
