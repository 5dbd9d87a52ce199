// Shared helpers for the op tests: seeded random tensors and a closeness check
// against a reference computed by plain loops in double.
//
// Closeness rule (used by every test, tolerance stated next to each call):
//   |got_i - ref_i| <= rtol * (|ref_i| + rms(ref))
// i.e. relative error per element, with the tensor's RMS as the floor so that
// values near zero after cancellation (GEMM sums, centred norms) are not judged
// by their own tiny magnitude.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace t2v::test {

// Uniform values in [lo, hi) from a seeded generator (never an all-zero input).
inline Tensor random_tensor(const Shape& shape, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(shape.numel());
  for (float& x : v) x = dist(gen);
  return Tensor::from_floats(v, shape);
}

inline std::vector<double> to_doubles(const Tensor& t) {
  const std::vector<float> f = t.to_vector();
  return {f.begin(), f.end()};
}

// Checks `got` against `ref` by the rule above; prints the worst error so the
// log shows how much headroom each op has.
inline void expect_close(const Tensor& got, const std::vector<double>& ref, double rtol, const std::string& what) {
  ASSERT_EQ(got.numel(), (int64_t)ref.size()) << what;
  const std::vector<float> g = got.to_vector();
  double ss = 0.0;
  for (double r : ref) ss += r * r;
  const double rms = ref.empty() ? 0.0 : std::sqrt(ss / (double)ref.size());
  double worst = 0.0;  // max of |err| / (|ref| + rms)
  int64_t worst_i = -1, bad = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double err = std::fabs((double)g[i] - ref[i]);
    const double denom = std::fabs(ref[i]) + rms;
    const double rel = denom > 0 ? err / denom : err;
    if (!(rel <= rtol)) ++bad;  // NaN counts as bad
    if (!(rel <= worst)) {
      worst = rel;
      worst_i = (int64_t)i;
    }
  }
  std::printf("  [%s] %zu values, max rel err %.2e (tol %.0e)\n", what.c_str(), ref.size(), worst, rtol);
  EXPECT_EQ(bad, 0) << what << ": " << bad << " values off; worst at " << worst_i << ": got "
                    << (worst_i >= 0 ? g[worst_i] : 0.0f) << " ref " << (worst_i >= 0 ? ref[worst_i] : 0.0);
}

// Bitwise equality of two F32 tensors of the same shape.
inline void expect_equal(const Tensor& a, const Tensor& b, const std::string& what) {
  ASSERT_EQ(a.shape(), b.shape()) << what << ": " << a.str() << " vs " << b.str();
  const std::vector<float> x = a.to_vector(), y = b.to_vector();
  int64_t bad = 0;
  for (size_t i = 0; i < x.size(); ++i) bad += (x[i] != y[i]);
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << x.size() << " values differ";
}

}  // namespace t2v::test
