// The CUDA side of the backend-ops test (test_backend_ops*.cpp): the GPU gate,
// upload to the GPU, and the comparison rule of tests/backend_ops (reused, not
// restated) plus the guard-zone check. Every GPU output is born NaN-poisoned
// with a 0xFF guard zone after it (cuda::set_debug_poison): a NaN in the result
// means an element was never written, a changed guard byte means a write past
// the end.
#pragma once

#ifdef T2V_HAVE_CUDA
#include <gtest/gtest.h>

#include <string>

#include "core/tensor.h"
#include "tests/backend_ops/backend_ops_util.h"

namespace t2v::test_cuda {

using test_backend::compare;
using test_backend::dtype_str;
using test_backend::ErrorStats;
using test_backend::host_floats;
using test_backend::Rng;
using test_backend::rounded;

// True when a device is usable (init done once, poison on); else `why` says why.
bool gpu_ready(std::string* why);
// Large real-size Wan cases run only with T2V_CUDA_TEST_LARGE=1 (tools/gpu/run.sh sets it).
bool large_cases();

#define T2V_REQUIRE_CUDA()                                                   \
  do {                                                                       \
    std::string t2v_why_;                                                    \
    if (!::t2v::test_cuda::gpu_ready(&t2v_why_)) GTEST_SKIP() << "no CUDA device: " << t2v_why_; \
  } while (0)

// CPU F32 -> storage dtype on the GPU.
inline Tensor to_gpu(const Tensor& cpu_f32, DType dt) { return test_backend::to_device(cpu_f32, dt, Device::CUDA); }

// True when the kDebugGuardBytes after a freshly allocated GPU tensor are intact.
bool guard_intact(const Tensor& gpu_out);

// test_backend's rule on a CUDA result, after the guard-zone check.
void expect_close(const Tensor& gpu_out, const Tensor& cpu_ref, const std::string& what, double naive_nmse = -1.0);
void expect_exact(const Tensor& gpu_out, const Tensor& cpu_ref, const std::string& what);

}  // namespace t2v::test_cuda
#endif  // T2V_HAVE_CUDA
