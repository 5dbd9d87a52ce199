// Helpers of the backend-ops test (test_backend_ops*.cpp): the GPU gate, fresh
// random inputs, upload in a storage dtype, and the comparison rule.
//
// The rule (docs/conventions.md §3, written once here):
//  - F32 storage: NMSE(gpu, cpu_ref) <= 1e-7.
//  - BF16/F16 storage: the CPU reference runs on the same rounded inputs in
//    fp32; the unavoidable error of a half-precision result is rounding that
//    reference once (the "naive" result: exact maths, half-precision storage).
//    The GPU result must be within 3x of that error: NMSE(gpu, ref) <= 3 *
//    NMSE(round(ref), ref) + 1e-12 (the floor covers outputs that are exactly
//    representable, where both errors are zero).
//  - Data movement (permute, concat, slice, embedding, upsample, casts):
//    bit-exact.
// Every GPU output is born NaN-poisoned with a 0xFF guard zone after it
// (cuda::set_debug_poison): a NaN in the result means an element was never
// written, a changed guard byte means a write past the end.
#pragma once

#ifdef T2V_HAVE_CUDA
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace t2v::test_cuda {

// True when a device is usable (init done once, poison on); else `why` says why.
bool gpu_ready(std::string* why);
// Large real-size Wan cases run only with T2V_CUDA_TEST_LARGE=1 (tools/gpu/run.sh sets it).
bool large_cases();

#define T2V_REQUIRE_CUDA()                                                   \
  do {                                                                       \
    std::string t2v_why_;                                                    \
    if (!::t2v::test_cuda::gpu_ready(&t2v_why_)) GTEST_SKIP() << "no CUDA device: " << t2v_why_; \
  } while (0)

// Fresh random data: a per-process seed (T2V_TEST_SEED overrides; printed once)
// advanced per call, so no two inputs are alike and no input is all zeros.
class Rng {
 public:
  Rng();
  Tensor uniform(const Shape& s, float lo = -1.0f, float hi = 1.0f);  // CPU F32
  Tensor normal(const Shape& s, float stddev = 1.0f);                   // CPU F32
  Tensor ints(const Shape& s, int lo, int hi, DType dt);               // CPU integers in [lo, hi]
  Tensor small_ints(const Shape& s, int lo, int hi);                   // CPU F32 holding integers
  std::mt19937_64& engine() { return g_; }

 private:
  std::mt19937_64 g_;
};

// CPU F32 -> storage dtype on the GPU; and the same values rounded, as CPU F32
// (the reference's input).
Tensor to_gpu(const Tensor& cpu_f32, DType dt);
Tensor rounded(const Tensor& cpu_f32, DType dt);
// Any tensor (CPU or GPU, any float dtype) -> host floats.
std::vector<float> host_floats(const Tensor& t);

struct ErrorStats {
  double nmse = 0.0;        // sum (a-b)^2 / sum b^2
  double max_abs = 0.0;
  int64_t nan_count = 0;    // NaN/inf in `got` where the reference is finite
  int64_t worst_index = -1;
};
ErrorStats compare(const std::vector<float>& got, const std::vector<float>& ref);

// True when the kDebugGuardBytes after a freshly allocated GPU tensor are intact.
bool guard_intact(const Tensor& gpu_out);

// Checks `gpu_out` (dtype dt) against the CPU F32 reference by the rule above;
// prints one summary line per case ("[backend-ops] ...") for the logs.
// `naive_nmse` (>= 0): the NMSE of an emulated naive half-precision computation
// of the same op against cpu_ref, for ops whose naive form rounds
// intermediates too (attention: logits and probabilities in bf16); the
// baseline is then the larger of it and one output rounding.
void expect_close(const Tensor& gpu_out, const Tensor& cpu_ref, const std::string& what, double naive_nmse = -1.0);
// Bit-exact check of a data-movement op (both compared as raw bytes after
// bringing the GPU tensor back; dtypes must match).
void expect_exact(const Tensor& gpu_out, const Tensor& cpu_ref, const std::string& what);

std::string dtype_str(DType dt);

}  // namespace t2v::test_cuda
#endif  // T2V_HAVE_CUDA
