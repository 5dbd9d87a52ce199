// CachingAllocator bookkeeping (see allocator.h). No CUDA in this file.
#include "kernels/cuda/allocator.h"

#include <algorithm>
#include <bit>

#include <fmt/format.h>

#include "core/error.h"

namespace t2v::ops::cuda {

namespace {
constexpr size_t kMinBlock = 512;
constexpr size_t kSmallLimit = size_t{1} << 20;  // 1 MiB
}  // namespace

CachingAllocator::CachingAllocator(RawAlloc raw_alloc, RawFree raw_free)
    : raw_alloc_(std::move(raw_alloc)), raw_free_(std::move(raw_free)) {
  T2V_ASSERT(raw_alloc_ && raw_free_, "CachingAllocator needs raw alloc/free functions");
}

CachingAllocator::~CachingAllocator() { release_all(); }

size_t CachingAllocator::round_size(size_t nbytes) {
  if (nbytes <= kMinBlock) return kMinBlock;
  if (nbytes <= kSmallLimit) return (nbytes + kMinBlock - 1) / kMinBlock * kMinBlock;
  // Quarter steps of the power of two at or below nbytes: [2^k, 2^k*1.25, 1.5, 1.75].
  const size_t p = std::bit_floor(nbytes);
  const size_t step = p / 4;
  return (nbytes + step - 1) / step * step;
}

void* CachingAllocator::raw_allocate_locked(size_t size) {
  void* p = raw_alloc_(size);
  if (p) ++st_.raw_allocations;
  return p;
}

void* CachingAllocator::allocate(size_t nbytes) {
  const size_t size = round_size(nbytes);
  std::lock_guard<std::mutex> lock(mu_);
  ++st_.allocations;
  void* p = nullptr;
  auto it = bins_.find(size);
  if (it != bins_.end() && !it->second.empty()) {
    p = it->second.back();
    it->second.pop_back();
    st_.cached_bytes -= size;
    ++st_.cache_hits;
  } else {
    p = raw_allocate_locked(size);
    if (!p && st_.cached_bytes > 0) {
      // Out of memory with blocks of other sizes parked in the bins: give them
      // back and try once more (fragmentation across size classes).
      release_cached_locked();
      p = raw_allocate_locked(size);
    }
    if (!p)
      throw Error(kExitUnavailable,
                  fmt::format("out of GPU memory allocating {} bytes ({:.1f} MiB); in use {:.1f} MiB, peak {:.1f} MiB",
                              nbytes, size / 1048576.0, st_.in_use_bytes / 1048576.0,
                              st_.peak_in_use_bytes / 1048576.0),
                  "use a smaller size or frame count, or a GPU with more memory");
    st_.reserved_bytes += size;
  }
  live_.emplace(p, size);
  st_.in_use_bytes += size;
  st_.peak_in_use_bytes = std::max(st_.peak_in_use_bytes, st_.in_use_bytes);
  st_.peak_reserved_bytes = std::max(st_.peak_reserved_bytes, st_.reserved_bytes);
  return p;
}

void CachingAllocator::free(void* p) {
  if (!p) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(p);
  T2V_ASSERT(it != live_.end(), "CachingAllocator::free of a pointer it did not hand out ({})", p);
  const size_t size = it->second;
  live_.erase(it);
  st_.in_use_bytes -= size;
  st_.cached_bytes += size;
  bins_[size].push_back(p);
}

void CachingAllocator::release_cached_locked() {
  for (auto& [size, blocks] : bins_) {
    for (void* p : blocks) {
      raw_free_(p);
      ++st_.raw_frees;
      st_.reserved_bytes -= size;
    }
  }
  bins_.clear();
  st_.cached_bytes = 0;
}

void CachingAllocator::release_cached() {
  std::lock_guard<std::mutex> lock(mu_);
  release_cached_locked();
}

size_t CachingAllocator::release_all() {
  std::lock_guard<std::mutex> lock(mu_);
  release_cached_locked();
  const size_t live = live_.size();
  for (auto& [p, size] : live_) {
    raw_free_(p);
    ++st_.raw_frees;
    st_.reserved_bytes -= size;
  }
  live_.clear();
  st_.in_use_bytes = 0;
  return live;
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return st_;
}

void CachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mu_);
  st_.peak_in_use_bytes = st_.in_use_bytes;
  st_.peak_reserved_bytes = st_.reserved_bytes;
}

size_t CachingAllocator::block_size(void* p) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(p);
  return it == live_.end() ? 0 : it->second;
}

}  // namespace t2v::ops::cuda
