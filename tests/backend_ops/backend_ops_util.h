// Helpers of the backend-ops tests (tests/cuda, tests/device): fresh random
// inputs, upload in a storage dtype, and the comparison rule of a device result
// against the CPU reference (kernels/ops.h on CPU F32 tensors).
//
// The rule, written once here:
//  - F32 storage: NMSE(device, cpu_ref) <= 1e-7 (the test device, which runs
//    the CPU kernels, must match bit for bit: expect_exact).
//  - BF16/F16 storage: the CPU reference runs on the same rounded inputs in
//    fp32; the unavoidable error of a half-precision result is rounding that
//    reference once (the "naive" result: exact maths, half-precision storage).
//    The device result must be within 3x of that error: NMSE(dev, ref) <= 3 *
//    NMSE(round(ref), ref) + 1e-12 (the floor covers outputs that are exactly
//    representable, where both errors are zero).
//  - Data movement (permute, concat, slice, embedding, upsample, casts):
//    bit-exact.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace t2v::test_backend {

// Fresh random data: a per-process seed (T2V_TEST_SEED overrides; printed once)
// advanced per call, so no two inputs are alike and no input is all zeros.
class Rng {
 public:
  Rng();
  Tensor uniform(const Shape& s, float lo = -1.0f, float hi = 1.0f);  // CPU F32
  Tensor normal(const Shape& s, float stddev = 1.0f);                   // CPU F32
  Tensor ints(const Shape& s, int lo, int hi, DType dt);               // CPU integers in [lo, hi]
  Tensor small_ints(const Shape& s, int lo, int hi);                   // CPU F32 holding integers
  // A rope_3d table [n, pairs, 2]: (cos, sin) of random angles in [-pi, pi] (CPU F32).
  Tensor rotation_table(int64_t n, int64_t pairs);
  std::mt19937_64& engine() { return g_; }

 private:
  std::mt19937_64 g_;
};

// CPU F32 -> storage dtype on `dev`; and the same values rounded, as CPU F32
// (the reference's input).
Tensor to_device(const Tensor& cpu_f32, DType dt, Device dev);
Tensor rounded(const Tensor& cpu_f32, DType dt);
// Any tensor (CPU or device, any float dtype) -> host floats.
std::vector<float> host_floats(const Tensor& t);

struct ErrorStats {
  double nmse = 0.0;        // sum (a-b)^2 / sum b^2
  double max_abs = 0.0;
  int64_t nan_count = 0;    // NaN/inf in `got` where the reference is finite
  int64_t worst_index = -1;
};
ErrorStats compare(const std::vector<float>& got, const std::vector<float>& ref);

// Checks the device result `out` (dtype dt, not on the CPU) against the CPU
// F32 reference by the rule above; prints one summary line per case
// ("[backend-ops] ...") for the logs. `naive_nmse` (>= 0): the NMSE of an
// emulated naive half-precision computation of the same op against cpu_ref,
// for ops whose naive form rounds intermediates too (attention: logits and
// probabilities in bf16); the baseline is then the larger of it and one
// output rounding.
void expect_close(const Tensor& out, const Tensor& cpu_ref, const std::string& what, double naive_nmse = -1.0);
// Bit-exact check (both compared as raw bytes after bringing `out` to the host;
// dtypes and shapes must match).
void expect_exact(const Tensor& out, const Tensor& cpu_ref, const std::string& what);

std::string dtype_str(DType dt);

}  // namespace t2v::test_backend
