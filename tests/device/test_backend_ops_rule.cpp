// The comparison rule of the backend-ops test itself, on the CPU: a check that
// cannot fail is a defect, so the metric must see NaNs, scale with the error,
// and the bf16 baseline must be the size of one rounding.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "tests/backend_ops/backend_ops_util.h"

namespace t2v::test_backend {
namespace {

TEST(BackendOpsRule, CompareCountsNonFiniteAndMeasuresError) {
  const std::vector<float> ref = {1.0f, -2.0f, 3.0f, 4.0f};
  ErrorStats e = compare(ref, ref);
  EXPECT_EQ(e.nmse, 0.0);
  EXPECT_EQ(e.nan_count, 0);
  std::vector<float> got = ref;
  got[2] = NAN;  // an unwritten (poisoned) element
  e = compare(got, ref);
  EXPECT_EQ(e.nan_count, 1);
  EXPECT_EQ(e.worst_index, 2);
  got = ref;
  got[1] = -2.5f;
  e = compare(got, ref);
  EXPECT_NEAR(e.nmse, 0.25 / 30.0, 1e-12);
  EXPECT_NEAR(e.max_abs, 0.5, 1e-12);
  EXPECT_EQ(e.worst_index, 1);
  // A -inf in the reference (a masked logit) is skipped in the NMSE but a NaN
  // where the reference is finite is still counted.
  const std::vector<float> ref_inf = {-INFINITY, 1.0f};
  e = compare({-INFINITY, 1.0f}, ref_inf);
  EXPECT_EQ(e.nan_count, 0);
  EXPECT_EQ(e.nmse, 0.0);
}

TEST(BackendOpsRule, Bf16BaselineIsOneRounding) {
  Rng rng;
  const Tensor x = rng.normal(Shape{4096});
  const std::vector<float> ref = x.to_vector();
  const std::vector<float> r = rounded(x, DType::BF16).to_vector();
  const double naive = compare(r, ref).nmse;
  // Round-to-nearest with 8 significant bits: relative error uniform in
  // [-2^-9, 2^-9] -> NMSE about 2^-18 / 3 = 1.3e-6 (within a factor ~2 by magnitude spread).
  EXPECT_GT(naive, 3e-7);
  EXPECT_LT(naive, 3e-6);
  // Two roundings' worth of error must fail the 3x limit only when it is bigger than 3 roundings.
  EXPECT_LT(compare(rounded(rounded(x, DType::BF16), DType::BF16).to_vector(), ref).nmse, 3.0 * naive + 1e-12);
  // Fresh draws differ (the data is never reused or all zeros).
  const Tensor y = rng.normal(Shape{4096});
  EXPECT_NE(x.to_vector(), y.to_vector());
}

}  // namespace
}  // namespace t2v::test_backend
