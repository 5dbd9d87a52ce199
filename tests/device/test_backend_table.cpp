// The backend tables (kernels/backend.h): the CPU reference implements every
// op, the test device implements every op the CPU has (so an op added to the
// CPU table without test-device support fails here), a missing entry and a
// backend absent from the build answer Error(69) in one line.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "kernels/backend.h"
#include "kernels/test_device/test_device.h"

namespace t2v::ops {
namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(BackendTable, CpuImplementsEveryOp) {
  const Backend& cpu = backend(Device::CPU);
  EXPECT_STREQ(cpu.name, "cpu");
  const std::vector<OpEntry> e = op_entries(cpu);
  EXPECT_EQ(e.size(), 31u);  // kernels/backend.cpp's count, checked against the struct at compile time
  for (const OpEntry& o : e) EXPECT_TRUE(o.present) << "the CPU table has no '" << o.name << "' entry";
}

TEST(BackendTable, TestDeviceCoversEveryCpuEntry) {
  const std::vector<OpEntry> cpu = op_entries(backend(Device::CPU)), test = op_entries(backend(Device::Test));
  ASSERT_EQ(cpu.size(), test.size());
  for (size_t i = 0; i < cpu.size(); ++i) {
    ASSERT_STREQ(cpu[i].name, test[i].name);
    if (cpu[i].present) {
      EXPECT_TRUE(test[i].present) << cpu[i].name << ": the CPU table has it, the test device's table does not "
                                   << "(kernels/test_device/ops_test_device.cpp)";
    }
  }
  const Backend& t = backend(Device::Test);
  EXPECT_STREQ(t.name, "test");
  EXPECT_NE(t.open, nullptr);
  EXPECT_NE(t.peak_memory_bytes, nullptr);
  EXPECT_NE(t.reset_peak_memory, nullptr);
}

TEST(BackendTable, MissingEntryIsUnavailableNamingOpAndDevice) {
  try {
    unsupported("softmax", backend(Device::Test));
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), kExitUnavailable);
    EXPECT_TRUE(contains(e.what(), "softmax is not supported on device test")) << e.what();
    EXPECT_TRUE(contains(e.what(), "hint:")) << e.what();
    EXPECT_FALSE(contains(e.what(), "\n")) << e.what();
  }
}

// With nvcc at configure time the CUDA table exists (device or not); without
// it, looking the table up is Error(69) with one line and a hint.
TEST(BackendTable, CudaIsATableOrOneLineUnavailable) {
  try {
    const Backend& cu = backend(Device::CUDA);
    EXPECT_STREQ(cu.name, "cuda");
    EXPECT_TRUE(cu.linear && cu.lincomb && cu.layer_norm_modulate && cu.linear_gelu_tanh);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), kExitUnavailable);
    EXPECT_TRUE(contains(e.what(), "cuda: this build has no CUDA backend")) << e.what();
    EXPECT_TRUE(contains(e.what(), "hint:")) << e.what();
    EXPECT_FALSE(contains(e.what(), "\n")) << e.what();
  }
}

}  // namespace
}  // namespace t2v::ops
