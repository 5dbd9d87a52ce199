// CachingAllocator bookkeeping on the CPU with a fake raw allocator: size
// classes, reuse, statistics, release on out-of-memory and at shutdown. No GPU.
#ifdef T2V_HAVE_CUDA
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <vector>

#include "core/error.h"
#include "kernels/cuda/allocator.h"

namespace t2v::ops::cuda {
namespace {

// Hands out malloc'd blocks up to a byte budget (to simulate out-of-memory) and
// records every raw call.
struct FakeDevice {
  size_t budget = SIZE_MAX;
  size_t used = 0;
  std::vector<size_t> allocs;
  std::map<void*, size_t> live;  // raw block -> size
  int frees = 0;

  CachingAllocator make() {
    return CachingAllocator(
        [this](size_t n) -> void* {
          if (used + n > budget) return nullptr;
          void* p = std::malloc(n);
          used += n;
          allocs.push_back(n);
          live[p] = n;
          return p;
        },
        [this](void* p) {
          ASSERT_TRUE(live.count(p)) << "raw free of a pointer not from raw alloc";
          used -= live[p];
          live.erase(p);
          ++frees;
          std::free(p);
        });
  }
};

TEST(CachingAllocator, RoundSizeClasses) {
  EXPECT_EQ(CachingAllocator::round_size(0), 512u);
  EXPECT_EQ(CachingAllocator::round_size(1), 512u);
  EXPECT_EQ(CachingAllocator::round_size(512), 512u);
  EXPECT_EQ(CachingAllocator::round_size(513), 1024u);
  EXPECT_EQ(CachingAllocator::round_size(1 << 20), size_t{1} << 20);
  // Above 1 MiB: quarter steps of the power of two.
  EXPECT_EQ(CachingAllocator::round_size((1 << 20) + 1), (size_t{1} << 20) + (size_t{1} << 18));
  EXPECT_EQ(CachingAllocator::round_size(size_t{3} << 20), size_t{3} << 20);
  EXPECT_EQ(CachingAllocator::round_size((size_t{3} << 20) + 1), (size_t{7} << 19));
  // Waste stays under 25% and the class is never smaller than the request.
  for (size_t n = 1; n < (size_t{1} << 34); n = n * 3 + 7) {
    const size_t r = CachingAllocator::round_size(n);
    EXPECT_GE(r, n);
    if (n > (1 << 20)) {
      EXPECT_LT(static_cast<double>(r - n), 0.25 * static_cast<double>(n)) << n;
    }
    EXPECT_EQ(CachingAllocator::round_size(r), r) << "a class must map to itself: " << n;
  }
}

TEST(CachingAllocator, ReusesFreedBlocksOfTheSameClass) {
  FakeDevice dev;
  CachingAllocator a = dev.make();
  void* p = a.allocate(1000);
  a.free(p);
  void* q = a.allocate(900);  // same 1024-byte class
  EXPECT_EQ(p, q);
  void* r = a.allocate(3000);  // another class: a new raw block
  EXPECT_NE(r, q);
  const AllocatorStats s = a.stats();
  EXPECT_EQ(s.allocations, 3u);
  EXPECT_EQ(s.cache_hits, 1u);
  EXPECT_EQ(s.raw_allocations, 2u);
  EXPECT_EQ(s.in_use_bytes, 1024u + 3072u);
  EXPECT_EQ(s.reserved_bytes, 1024u + 3072u);
  EXPECT_EQ(s.cached_bytes, 0u);
  a.free(q);
  a.free(r);
}

TEST(CachingAllocator, TracksPeakAndCached) {
  FakeDevice dev;
  CachingAllocator a = dev.make();
  void* p1 = a.allocate(4096);
  void* p2 = a.allocate(8192);
  a.free(p1);
  AllocatorStats s = a.stats();
  EXPECT_EQ(s.in_use_bytes, 8192u);
  EXPECT_EQ(s.peak_in_use_bytes, 4096u + 8192u);
  EXPECT_EQ(s.cached_bytes, 4096u);
  EXPECT_EQ(s.reserved_bytes, 4096u + 8192u);
  a.reset_peak();
  s = a.stats();
  EXPECT_EQ(s.peak_in_use_bytes, 8192u);
  EXPECT_EQ(a.block_size(p2), 8192u);
  EXPECT_EQ(a.block_size(p1), 0u);  // freed: no longer live
  a.release_cached();
  s = a.stats();
  EXPECT_EQ(s.cached_bytes, 0u);
  EXPECT_EQ(s.reserved_bytes, 8192u);
  EXPECT_EQ(dev.frees, 1);
  a.free(p2);
}

TEST(CachingAllocator, OutOfMemoryReleasesCacheAndRetries) {
  FakeDevice dev;
  dev.budget = 3 * 4096;
  CachingAllocator a = dev.make();
  void* p1 = a.allocate(4096);
  void* p2 = a.allocate(4096);
  a.free(p1);
  a.free(p2);  // 8 KiB parked in the 4 KiB bin
  // 8 KiB does not fit next to the parked blocks; the cache is flushed and it fits.
  void* big = a.allocate(8192);
  ASSERT_NE(big, nullptr);
  EXPECT_EQ(dev.frees, 2);
  EXPECT_EQ(a.stats().cached_bytes, 0u);
  // Now nothing is cached and 16 KiB cannot fit at all: Error(69) with the sizes.
  try {
    a.allocate(16384);
    FAIL() << "expected an out-of-memory error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), kExitUnavailable);
    EXPECT_NE(std::string(e.what()).find("out of GPU memory allocating 16384 bytes"), std::string::npos) << e.what();
  }
  a.free(big);
}

TEST(CachingAllocator, ReleaseAllFreesLiveBlocksAndCounts) {
  FakeDevice dev;
  {
    CachingAllocator a = dev.make();
    a.allocate(100);
    void* q = a.allocate(200000);
    a.allocate(5 << 20);
    a.free(q);
    EXPECT_EQ(a.release_all(), 2u);
    EXPECT_TRUE(dev.live.empty());
    EXPECT_EQ(a.stats().reserved_bytes, 0u);
    EXPECT_EQ(a.stats().in_use_bytes, 0u);
    a.allocate(64);  // still usable after release_all
  }  // destructor releases the last block
  EXPECT_TRUE(dev.live.empty());
  EXPECT_EQ(dev.used, 0u);
}

TEST(CachingAllocator, FreeOfUnknownPointerIsABug) {
  FakeDevice dev;
  CachingAllocator a = dev.make();
  int x = 0;
  EXPECT_THROW(a.free(&x), Error);
  a.free(nullptr);  // ignored
}

}  // namespace
}  // namespace t2v::ops::cuda
#endif  // T2V_HAVE_CUDA
