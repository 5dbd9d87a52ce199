// CPU-side logic of the CUDA backend, tested without a GPU: error mapping of
// the check macros, the no-device path of init(), argument checks of the CUDA
// ops (which run before any device work), and broadcast bookkeeping.
#ifdef T2V_HAVE_CUDA
#include <gtest/gtest.h>

#include <span>
#include <string>
#include <vector>

#include "core/error.h"
#include "kernels/backend.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/runtime.h"
#include "kernels/cuda/tensor_util.h"

namespace t2v::ops::cuda {
namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(CudaCheck, StickyErrorsExitWithTempFail) {
  EXPECT_TRUE(cuda_error_is_sticky(cudaErrorIllegalAddress));
  EXPECT_TRUE(cuda_error_is_sticky(cudaErrorECCUncorrectable));
  EXPECT_TRUE(cuda_error_is_sticky(cudaErrorLaunchFailure));
  EXPECT_FALSE(cuda_error_is_sticky(cudaErrorMemoryAllocation));
  EXPECT_FALSE(cuda_error_is_sticky(cudaErrorInvalidValue));
  EXPECT_EQ(cuda_error_exit_code(cudaErrorIllegalAddress), kExitTempFail);
  EXPECT_EQ(cuda_error_exit_code(cudaErrorMemoryAllocation), kExitUnavailable);
  EXPECT_EQ(cuda_error_exit_code(cudaErrorNoDevice), kExitUnavailable);
  EXPECT_EQ(cuda_error_exit_code(cudaErrorInvalidValue), kExitSoftware);
}

TEST(CudaCheck, MessageNamesStatementFileAndLine) {
  // The macro's argument is any expression of type cudaError_t; no device needed.
  const int line = __LINE__ + 2;
  try {
    T2V_CUDA_CHECK(cudaErrorIllegalAddress);
    FAIL() << "expected a throw";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_EQ(e.code(), kExitTempFail);
    EXPECT_TRUE(contains(m, "cudaErrorIllegalAddress")) << m;
    EXPECT_TRUE(contains(m, "`cudaErrorIllegalAddress`")) << m;
    EXPECT_TRUE(contains(m, "test_cuda_runtime.cpp:" + std::to_string(line))) << m;
    EXPECT_TRUE(contains(m, "hint:")) << m;
  }
  try {
    T2V_CUBLAS_CHECK(CUBLAS_STATUS_INVALID_VALUE);
    FAIL() << "expected a throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), kExitSoftware);
    EXPECT_TRUE(contains(e.what(), "CUBLAS_STATUS_INVALID_VALUE")) << e.what();
  }
  T2V_CUDA_CHECK(cudaSuccess);  // success passes silently
}

TEST(CudaRuntime, InitWithoutDeviceIsUnavailable) {
  std::string reason;
  if (device_available(&reason)) GTEST_SKIP() << "a CUDA device is present; this checks the no-device path";
  EXPECT_FALSE(reason.empty());
  try {
    init(0);
    FAIL() << "init must throw without a device";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), kExitUnavailable);
    EXPECT_TRUE(contains(e.what(), "no CUDA device")) << e.what();
  }
  EXPECT_FALSE(initialized());
  EXPECT_THROW(context(), Error);
}

// The CUDA table's entries check their arguments before touching the device,
// so a CPU tensor handed to them fails the same way with or without a GPU.
TEST(CudaOpsArguments, RefuseHostTensorsNamingOpAndArgument) {
  const Backend& cu = backend(Device::CUDA);
  const Tensor a = Tensor::full(Shape{2, 3}, 1.0f);
  const Tensor b = Tensor::full(Shape{3}, 2.0f);
  try {
    (void)cu.add(a, b);
    FAIL() << "expected a throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), kExitSoftware);
    EXPECT_TRUE(contains(e.what(), "add: argument 'a'")) << e.what();
    EXPECT_TRUE(contains(e.what(), "cpu")) << e.what();
  }
  EXPECT_THROW((void)cu.layer_norm(a, Tensor(), Tensor(), 1e-6f), Error);
  EXPECT_THROW((void)cu.linear(a, b, Tensor()), Error);
  EXPECT_THROW((void)cu.attention(a, a, a, AttentionParams{}), Error);
  EXPECT_THROW((void)cu.conv3d(a, a, Tensor(), Conv3dParams{}), Error);
  EXPECT_THROW((void)cu.cast(a, DType::BF16), Error);
  EXPECT_THROW((void)cu.concat({}, 0), Error);
  Tensor dst = Tensor::full(Shape{2, 3}, 0.0f);
  const LinTerm t{1.0, &a};
  EXPECT_THROW(cu.lincomb(dst, std::span<const LinTerm>(&t, 1)), Error);
}

// The CUDA table has every CPU op; anything missing is a regression.
TEST(CudaTable, CoversTheCpuTable) {
  const std::vector<OpEntry> cpu = op_entries(backend(Device::CPU)), cu = op_entries(backend(Device::CUDA));
  ASSERT_EQ(cpu.size(), cu.size());
  std::vector<std::string> missing;
  for (size_t i = 0; i < cpu.size(); ++i)
    if (cpu[i].present && !cu[i].present) missing.push_back(cpu[i].name);
  EXPECT_EQ(missing, std::vector<std::string>{});
  EXPECT_STREQ(backend(Device::CUDA).name, "cuda");
  EXPECT_NE(backend(Device::CUDA).open, nullptr);
}

TEST(CudaBroadcast, ShapesAndStrides) {
  EXPECT_EQ(broadcast_shapes(Shape{2, 1, 5}, Shape{3, 1}, "t"), (Shape{2, 3, 5}));
  EXPECT_EQ(broadcast_shapes(Shape{1}, Shape{1023}, "t"), (Shape{1023}));
  EXPECT_THROW(broadcast_shapes(Shape{2, 3}, Shape{4}, "t"), Error);
  // shift [B, 1, C] against x [B, N, C]: stride 0 on N, C innermost.
  const Tensor shift = Tensor::full(Shape{2, 1, 7}, 0.5f);
  const BView v = broadcast_view(shift, Shape{2, 113, 7}, "modulate", "shift");
  EXPECT_EQ(v.stride[0], 7);
  EXPECT_EQ(v.stride[1], 0);
  EXPECT_EQ(v.stride[2], 1);
  EXPECT_EQ(v.dt, Elem::F32);
  // Right-aligned: [7] against [2, 113, 7].
  const BView w = broadcast_view(Tensor::full(Shape{7}, 1.0f), Shape{2, 113, 7}, "t", "w");
  EXPECT_EQ(w.stride[0], 0);
  EXPECT_EQ(w.stride[1], 0);
  EXPECT_EQ(w.stride[2], 1);
  EXPECT_THROW(broadcast_view(Tensor::full(Shape{3}, 1.0f), Shape{2, 7}, "t", "w"), Error);
  const Tensor i64 = Tensor::zeros(Shape{2}, DType::I64);
  EXPECT_THROW(broadcast_view(i64, Shape{2}, "t", "ids"), Error);
  const OutShape o = out_shape(Shape{4, 5, 6});
  EXPECT_EQ(o.nd, 3);
  EXPECT_EQ(o.size[2], 6);
}

TEST(CudaDtypes, CodesRoundTrip) {
  for (DType dt : {DType::F32, DType::BF16, DType::F16}) EXPECT_EQ(to_dtype(to_elem(dt)), dt);
  EXPECT_EQ(cast_code(DType::I64, "cast"), CastCode::I64);
  EXPECT_EQ(cast_code(DType::U8, "cast"), CastCode::U8);
  EXPECT_THROW(cast_code(DType::F8_E4M3, "cast"), Error);
}

}  // namespace
}  // namespace t2v::ops::cuda
#endif  // T2V_HAVE_CUDA
