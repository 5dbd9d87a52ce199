// The test device's memory (kernels/test_device/test_device.h): host access
// without a transfer fails as on a GPU, transfers round-trip bytes exactly,
// allocations are counted, and the op-level device and dtype rules hold.
#include <gtest/gtest.h>

#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "kernels/backend.h"
#include "kernels/ops.h"
#include "kernels/test_device/test_device.h"
#include "tests/backend_ops/backend_ops_util.h"

namespace t2v::test_backend {
namespace {

Device test_device() {
  ops::open_test_device();
  return Device::Test;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(TestDeviceMemory, TypedHostAccessIsRefused) {
  const Device dev = test_device();
  const Tensor t = Tensor::empty(Shape{3, 5}, DType::F32, dev);
  EXPECT_EQ(t.device(), Device::Test);
  EXPECT_EQ(t.str(), "F32[3, 5] test");
  try {
    (void)t.data<float>();
    FAIL() << "data<float>() on a test-device tensor must throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), kExitSoftware);
    EXPECT_TRUE(contains(e.what(), "to(Device::CPU)")) << e.what();
  }
  EXPECT_THROW((void)Tensor::empty(Shape{2}, DType::BF16, dev).data<uint16_t>(), Error);
  EXPECT_THROW((void)Tensor::empty(Shape{2}, DType::I64, dev).data<int64_t>(), Error);
  EXPECT_THROW((void)t.item(0), Error);
  EXPECT_THROW((void)t.to(DType::BF16), Error);  // a dtype change on a device is ops::cast
}

// The address a test-device tensor reports is not host memory: reading it
// without a transfer faults, as a GPU pointer would.
TEST(TestDeviceMemory, RawHostReadFaults) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const Device dev = test_device();
  const Tensor t = Tensor::zeros(Shape{16}, DType::F32, dev);
  EXPECT_EXIT(
      {
        volatile float v = *static_cast<const volatile float*>(t.raw());
        (void)v;
        std::exit(0);
      },
      ::testing::KilledBySignal(SIGSEGV), "");
}

TEST(TestDeviceMemory, TransfersRoundTripBytesExactly) {
  const Device dev = test_device();
  Rng rng;
  const Tensor f = rng.normal(Shape{7, 13});
  for (const Tensor& host : {f, f.to(DType::BF16), f.to(DType::F16), rng.ints(Shape{3, 11}, -1000, 1000, DType::I64),
                             rng.ints(Shape{257}, 0, 255, DType::U8)}) {
    const Tensor d = host.to(dev);
    ASSERT_EQ(d.device(), Device::Test);
    ASSERT_EQ(d.dtype(), host.dtype());
    ASSERT_NE(d.raw(), host.raw());
    const Tensor back = d.to(Device::CPU);
    ASSERT_EQ(back.nbytes(), host.nbytes());
    EXPECT_EQ(std::memcmp(back.raw(), host.raw(), host.nbytes()), 0) << host.str();
    // Device-to-device copies (clone, copy_from) and views (narrow0) keep the bytes too.
    const Tensor c = d.clone();
    EXPECT_EQ(std::memcmp(c.to(Device::CPU).raw(), host.raw(), host.nbytes()), 0) << host.str();
    Tensor dst = Tensor::empty(host.shape(), host.dtype(), dev);
    dst.copy_from(host);
    EXPECT_EQ(std::memcmp(dst.to(Device::CPU).raw(), host.raw(), host.nbytes()), 0) << host.str();
    const Tensor row = d.narrow0(1, 2).to(Device::CPU);
    EXPECT_EQ(std::memcmp(row.raw(), host.narrow0(1, 2).raw(), row.nbytes()), 0) << host.str();
  }
  const Tensor z = Tensor::zeros(Shape{5, 3}, DType::F32, dev).to(Device::CPU);
  for (float v : z.to_vector()) EXPECT_EQ(v, 0.0f);
  // to_vector() transfers on its own.
  EXPECT_EQ(f.to(dev).to_vector(), f.to_vector());
}

// A new allocation reads NaN until written, so an op that leaves outputs unwritten shows.
TEST(TestDeviceMemory, NewAllocationsArePoisoned) {
  const Device dev = test_device();
  for (float v : Tensor::empty(Shape{9}, DType::F32, dev).to_vector()) EXPECT_TRUE(std::isnan(v));
  for (float v : Tensor::empty(Shape{9}, DType::BF16, dev).to(Device::CPU).to_vector()) EXPECT_TRUE(std::isnan(v));
}

TEST(TestDeviceMemory, BytesInUseAndPeakAreCounted) {
  const Device dev = test_device();
  ops::reset_test_device_peak_memory();
  const ops::TestDeviceMemoryStats s0 = ops::test_device_memory_stats();
  EXPECT_EQ(s0.peak_in_use_bytes, s0.in_use_bytes);
  {
    const Tensor a = Tensor::empty(Shape{1000}, DType::F32, dev);   // 4000 bytes
    const Tensor b = Tensor::empty(Shape{3, 7}, DType::BF16, dev);  // 42 bytes
    const ops::TestDeviceMemoryStats s1 = ops::test_device_memory_stats();
    EXPECT_EQ(s1.in_use_bytes, s0.in_use_bytes + 4042);
    EXPECT_EQ(s1.live_allocations, s0.live_allocations + 2);
    EXPECT_EQ(s1.allocations, s0.allocations + 2);
    const Tensor view = a.narrow0(10, 20);  // views allocate nothing
    EXPECT_EQ(ops::test_device_memory_stats().in_use_bytes, s1.in_use_bytes);
  }
  const ops::TestDeviceMemoryStats s2 = ops::test_device_memory_stats();
  EXPECT_EQ(s2.in_use_bytes, s0.in_use_bytes);
  EXPECT_EQ(s2.live_allocations, s0.live_allocations);
  EXPECT_EQ(s2.peak_in_use_bytes, s0.in_use_bytes + 4042);
  // An op's output is device memory; its host staging is not.
  const Tensor x = Tensor::full(Shape{64, 64}, 0.5f).to(dev);
  ops::reset_test_device_peak_memory();
  const size_t before = ops::test_device_memory_stats().in_use_bytes;
  const Tensor y = ops::silu(x);
  EXPECT_EQ(ops::test_device_memory_stats().in_use_bytes, before + y.nbytes());
  EXPECT_EQ(ops::test_device_memory_stats().peak_in_use_bytes, before + y.nbytes());
  ops::reset_test_device_peak_memory();
  EXPECT_EQ(ops::test_device_memory_stats().peak_in_use_bytes, ops::test_device_memory_stats().in_use_bytes);
  // The table's device hooks (app/device.cpp peak_memory_bytes / reset_peak_memory) read the same counters.
  const ops::Backend& b = ops::backend(Device::Test);
  {
    const Tensor big = Tensor::empty(Shape{4096}, DType::F32, dev);
    EXPECT_EQ(b.peak_memory_bytes(), ops::test_device_memory_stats().in_use_bytes);
  }
  EXPECT_EQ(b.peak_memory_bytes(), ops::test_device_memory_stats().in_use_bytes + 4096 * 4);
  b.reset_peak_memory();
  EXPECT_EQ(b.peak_memory_bytes(), ops::test_device_memory_stats().in_use_bytes);
}

TEST(TestDeviceOps, OperandsMustShareTheDevice) {
  const Device dev = test_device();
  const Tensor a = Tensor::full(Shape{2, 3}, 1.0f);
  try {
    (void)ops::add(a.to(dev), a);
    FAIL() << "mixed devices must be refused";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), kExitSoftware);
    EXPECT_TRUE(contains(e.what(), "different devices")) << e.what();
  }
  Tensor dst = Tensor::empty(Shape{2, 3}, DType::F32, dev);
  EXPECT_THROW(ops::lincomb(dst, {{1.0, &a}}), Error);
}

// linear/matmul/conv refuse an activation and a weight of different dtypes on every
// backend (kernels/ops.h); a bias may be F32 or the activation's dtype.
TEST(TestDeviceOps, GemmRefusesMixedDtypesNamingThem) {
  const Device dev = test_device();
  Rng rng;
  const Tensor x16 = to_device(rng.normal(Shape{5, 8}), DType::BF16, dev);
  const Tensor w32 = to_device(rng.normal(Shape{3, 8}), DType::F32, dev);
  const Tensor w16 = to_device(rng.normal(Shape{3, 8}), DType::BF16, dev);
  const auto expect_refused = [](const std::function<void()>& f, const std::vector<std::string>& needles) {
    try {
      f();
      ADD_FAILURE() << "accepted (expected " << needles[0] << ")";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), kExitSoftware) << e.what();
      for (const std::string& n : needles) EXPECT_TRUE(contains(e.what(), n)) << e.what();
    }
  };
  expect_refused([&] { (void)ops::linear(x16, w32); }, {"linear", "'x' is BF16", "'w' is F32"});
  expect_refused([&] { (void)ops::linear_gelu_tanh(x16, w32); }, {"linear_gelu_tanh", "BF16", "F32"});
  expect_refused([&] { (void)ops::matmul(x16, to_device(rng.normal(Shape{8, 2}), DType::F16, dev)); },
                 {"matmul", "'a' is BF16", "'b' is F16"});
  const Tensor b32 = to_device(rng.normal(Shape{3}), DType::F32, dev);
  expect_refused([&] { (void)ops::linear(ops::cast(x16, DType::F32), w32, ops::cast(b32, DType::BF16)); },
                 {"linear", "'bias'", "BF16"});
  EXPECT_EQ(ops::linear(x16, w16, b32).dtype(), DType::BF16);
  EXPECT_EQ(ops::linear(x16, w16, ops::cast(b32, DType::BF16)).dtype(), DType::BF16);
  // Convolutions too: the VAE's weights are stored in the dtype it computes in.
  const Tensor v16 = to_device(rng.normal(Shape{1, 2, 3, 4, 4}), DType::BF16, dev);
  expect_refused([&] { (void)ops::conv3d(v16, to_device(rng.normal(Shape{2, 2, 1, 3, 3}), DType::F32, dev), Tensor(), {}); },
                 {"conv3d", "'x' is BF16", "'w' is F32"});
  expect_refused([&] {
    (void)ops::conv2d(ops::cast(v16, DType::F32).reshape(Shape{2, 3, 4, 4}),
                      to_device(rng.normal(Shape{2, 3, 3, 3}), DType::F16, dev), Tensor(), {});
  }, {"conv2d", "'x' is F32", "'w' is F16"});
  // On the CPU the same call fails on the F32-only rule first, still naming the weight.
  expect_refused([&] { (void)ops::linear(rng.normal(Shape{5, 8}), rng.normal(Shape{3, 8}).to(DType::BF16)); },
                 {"linear", "'w'", "BF16"});
}

TEST(TestDeviceOps, NonFloatInputsOfFloatOpsAreRefused) {
  const Device dev = test_device();
  const Tensor ids = Tensor::zeros(Shape{4}, DType::I64, dev);
  try {
    (void)ops::silu(ids);
    FAIL() << "silu of I64 must be refused";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), kExitSoftware);
    EXPECT_TRUE(contains(e.what(), "silu")) << e.what();
    EXPECT_TRUE(contains(e.what(), "I64")) << e.what();
  }
  EXPECT_THROW((void)ops::cast(Tensor::zeros(Shape{4}, DType::F32, dev), DType::F8_E4M3), Error);
}

}  // namespace
}  // namespace t2v::test_backend
