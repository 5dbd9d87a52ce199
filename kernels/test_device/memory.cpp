// Memory of the test device (test_device.h). Each allocation is a host buffer
// plus a PROT_NONE address range of the same size that stands for it: the
// range is what Tensor::raw() returns, so a host read or write without a
// transfer faults like a GPU pointer would, and the copy hooks translate
// addresses inside a range (views have offsets) back to the buffer.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include <fmt/format.h>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/test_device/test_device.h"

namespace t2v::ops {
namespace {

struct Block {
  char* host = nullptr;
  size_t nbytes = 0;    // as requested
  size_t reserved = 0;  // length of the PROT_NONE range
};

std::mutex g_mu;
// By the start of the address range. Never destroyed: tensors held by static
// objects are freed after the other statics are gone.
std::map<uintptr_t, Block>& g_blocks = *new std::map<uintptr_t, Block>;
TestDeviceMemoryStats g_stats;

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

void* dev_alloc(size_t nbytes) {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t reserved = round_up(std::max<size_t>(nbytes, 1), page);
  void* range = mmap(nullptr, reserved, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (range == MAP_FAILED)
    throw Error(kExitUnavailable, fmt::format("test device: no address space for {} bytes", nbytes),
                "free test-device tensors or run a smaller case");
  auto* host = static_cast<char*>(std::aligned_alloc(64, round_up(std::max<size_t>(nbytes, 1), 64)));
  if (!host) {
    munmap(range, reserved);
    throw Error(kExitUnavailable, fmt::format("test device: out of host memory allocating {} bytes", nbytes),
                "free test-device tensors or run a smaller case");
  }
  std::memset(host, 0xFF, nbytes);  // unwritten outputs read NaN
  std::lock_guard<std::mutex> lock(g_mu);
  g_blocks[reinterpret_cast<uintptr_t>(range)] = Block{host, nbytes, reserved};
  g_stats.in_use_bytes += nbytes;
  g_stats.peak_in_use_bytes = std::max(g_stats.peak_in_use_bytes, g_stats.in_use_bytes);
  ++g_stats.live_allocations;
  ++g_stats.allocations;
  return range;
}

void dev_free(void* p) {
  Block b;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = g_blocks.find(reinterpret_cast<uintptr_t>(p));
    T2V_ASSERT(it != g_blocks.end(), "test device: free of an unknown address {}", p);
    b = it->second;
    g_blocks.erase(it);
    g_stats.in_use_bytes -= b.nbytes;
    --g_stats.live_allocations;
  }
  std::free(b.host);
  munmap(p, b.reserved);
}

// The host bytes behind device addresses [p, p + n).
char* host_of(const void* p, size_t n) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = g_blocks.upper_bound(a);
  T2V_ASSERT(it != g_blocks.begin(), "test device: address {} is not device memory", p);
  --it;
  const size_t off = a - it->first;
  T2V_ASSERT(off <= it->second.nbytes && n <= it->second.nbytes - off,
             "test device: {} bytes at {} run past an allocation of {} bytes", n, p, it->second.nbytes);
  return it->second.host + off;
}

// kind: 0 host->device, 1 device->host, 2 device->device (core/tensor.h).
void dev_copy(void* dst, const void* src, size_t nbytes, int kind) {
  if (nbytes == 0) return;
  if (kind == 0) std::memcpy(host_of(dst, nbytes), src, nbytes);
  else if (kind == 1) std::memcpy(dst, host_of(src, nbytes), nbytes);
  else std::memmove(host_of(dst, nbytes), host_of(src, nbytes), nbytes);
}

void dev_memset0(void* dst, size_t nbytes) {
  if (nbytes > 0) std::memset(host_of(dst, nbytes), 0, nbytes);
}

}  // namespace

void open_test_device() {
  static std::once_flag once;
  std::call_once(once, [] {
    DeviceBackend b;
    b.alloc = dev_alloc;
    b.free = dev_free;
    b.copy = dev_copy;
    b.memset0 = dev_memset0;
    register_device_backend(Device::Test, b);
  });
}

TestDeviceMemoryStats test_device_memory_stats() {
  std::lock_guard<std::mutex> lock(g_mu);
  return g_stats;
}

void reset_test_device_peak_memory() {
  std::lock_guard<std::mutex> lock(g_mu);
  g_stats.peak_in_use_bytes = g_stats.in_use_bytes;
}

}  // namespace t2v::ops
