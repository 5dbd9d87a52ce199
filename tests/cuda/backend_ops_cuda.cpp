// The CUDA side of the backend-ops test (see backend_ops_cuda.h).
#ifdef T2V_HAVE_CUDA
#include "tests/cuda/backend_ops_cuda.h"

#include <cuda_runtime_api.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels/cuda/runtime.h"

namespace t2v::test_cuda {

bool gpu_ready(std::string* why) {
  static std::string reason;
  static const bool ok = [] {
    if (!ops::cuda::device_available(&reason)) return false;
    try {
      ops::cuda::init(0);
    } catch (const std::exception& e) {
      reason = e.what();
      return false;
    }
    ops::cuda::set_debug_poison(true);
    const auto& info = ops::cuda::context().info;
    std::printf("[backend-ops] device %d: %s (sm_%d%d, %d SMs, %.1f GiB)\n", info.device, info.name.c_str(),
                info.cc_major, info.cc_minor, info.sm_count, info.total_memory / 1073741824.0);
    return true;
  }();
  if (!ok && why) *why = reason;
  return ok;
}

bool large_cases() {
  const char* v = std::getenv("T2V_CUDA_TEST_LARGE");
  return v && std::strcmp(v, "1") == 0;
}

bool guard_intact(const Tensor& gpu_out) {
  if (!ops::cuda::debug_poison()) return true;
  std::vector<uint8_t> g(ops::cuda::kDebugGuardBytes);
  const char* end = static_cast<const char*>(gpu_out.raw()) + gpu_out.nbytes();
  ops::cuda::synchronize();
  if (cudaMemcpy(g.data(), end, g.size(), cudaMemcpyDeviceToHost) != cudaSuccess) return false;
  for (uint8_t b : g)
    if (b != 0xFF) return false;
  return true;
}

void expect_close(const Tensor& gpu_out, const Tensor& cpu_ref, const std::string& what, double naive_nmse) {
  ASSERT_EQ(gpu_out.device(), Device::CUDA) << what;
  EXPECT_TRUE(guard_intact(gpu_out)) << what << ": write past the end of the output";
  test_backend::expect_close(gpu_out, cpu_ref, what, naive_nmse);
}

void expect_exact(const Tensor& gpu_out, const Tensor& cpu_ref, const std::string& what) {
  ASSERT_EQ(gpu_out.device(), Device::CUDA) << what;
  EXPECT_TRUE(guard_intact(gpu_out)) << what << ": write past the end of the output";
  test_backend::expect_exact(gpu_out, cpu_ref, what);
}

}  // namespace t2v::test_cuda
#endif  // T2V_HAVE_CUDA
