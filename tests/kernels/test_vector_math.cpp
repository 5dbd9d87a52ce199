// The vectorised exp and activations (kernels/cpu/vector_math.h) against libm:
// exp_double within 2 ulp (double) of std::exp; the fp32 array results within
// 1 ulp of the libm expressions they replace, and equal to them for all but a
// few in 10^4 values (only where the double lies next to an fp32 rounding
// boundary). Random inputs, odd lengths (vector remainders), in-place calls and
// the special values (±0, ±inf, NaN, subnormals, overflow/underflow ranges).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/cpu/vector_math.h"

namespace t2v {
namespace {

using ops::cpu::exp_double;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

double ulp_distance(double a, double b) {  // in units of the double spacing at b
  return std::fabs(a - b) / (std::nextafter(std::fabs(b), INFINITY) - std::fabs(b));
}

int64_t float_steps(float a, float b) {  // number of fp32 values between a and b (same sign or zero)
  int32_t ia = 0, ib = 0;
  std::memcpy(&ia, &a, 4);
  std::memcpy(&ib, &b, 4);
  if ((ia < 0) != (ib < 0)) return (a == b) ? 0 : std::numeric_limits<int64_t>::max();
  return std::abs(static_cast<int64_t>(ia) - static_cast<int64_t>(ib));
}

std::vector<float> random_floats(int64_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

const std::vector<float> kSpecials = {0.0f,   -0.0f,  kInf,    -kInf,   kNaN,    1e-40f,  -1e-40f, 1e-30f,
                                      -1e-30f, 88.7f, -88.7f,  103.9f,  -103.9f, 709.0f,  -709.0f, 745.2f,
                                      -745.2f, 1e30f, -1e30f,  3.4e38f, -3.4e38f, 1.0f,   -1.0f,   0.5f};

// got must equal want, or (both finite) lie 1 fp32 step from it; returns the count of unequal values.
int64_t check_close_to_libm(const std::vector<float>& x, const std::vector<float>& got, const std::vector<float>& want,
                            const char* what) {
  int64_t unequal = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(want[i])) {
      EXPECT_TRUE(std::isnan(got[i])) << what << "(" << x[i] << ") = " << got[i] << ", libm NaN";
      continue;
    }
    if (got[i] == want[i] && std::signbit(got[i]) == std::signbit(want[i])) continue;
    ++unequal;
    EXPECT_LE(float_steps(got[i], want[i]), 1) << what << "(" << x[i] << ") = " << got[i] << ", libm " << want[i];
  }
  return unequal;
}

TEST(VectorMath, ExpDoubleWithinTwoUlpOfLibm) {
  std::mt19937_64 gen(11);
  std::uniform_real_distribution<double> wide(-707.0, 709.78), narrow(-1.0, 1.0);
  double worst = 0;
  for (int i = 0; i < 400000; ++i) {
    const double x = (i % 2) ? wide(gen) : narrow(gen);
    const double u = ulp_distance(exp_double(x), std::exp(x));
    worst = std::max(worst, u);
    ASSERT_LE(u, 2.0) << "exp(" << x << ") = " << exp_double(x) << ", libm " << std::exp(x);
  }
  std::printf("  exp_double: worst %.2f ulp over 400000 values\n", worst);
  // The ends of the range and the special values.
  for (double x : {-707.0, -700.5, -1e-300, 0.0, -0.0, 1e-300, 1e-17, -1e-17, 0.34657359027997264, 700.0, 709.0,
                   709.5, 709.78, 709.782712893384})
    EXPECT_LE(ulp_distance(exp_double(x), std::exp(x)), 2.0) << x;
  EXPECT_EQ(exp_double(709.8), INFINITY);
  EXPECT_EQ(exp_double(1e300), INFINITY);
  EXPECT_EQ(exp_double(INFINITY), INFINITY);
  EXPECT_EQ(exp_double(-707.01), 0.0);  // libm: ~1e-307, below every fp32
  EXPECT_EQ(exp_double(-745.2), 0.0);
  EXPECT_EQ(exp_double(-INFINITY), 0.0);
  EXPECT_TRUE(std::isnan(exp_double(NAN)));
}

TEST(VectorMath, ActivationsMatchLibmExpressions) {
  const double k2 = 2.0 * std::sqrt(2.0 / M_PI);
  auto silu_ref = [](float f) {
    const double v = f;
    return static_cast<float>(v / (1.0 + std::exp(-v)));
  };
  auto gelu_ref = [k2](float f) {
    const double v = f;
    return static_cast<float>(v / (1.0 + std::exp(-k2 * (v + 0.044715 * v * v * v))));
  };
  uint32_t seed = 20;
  int64_t total = 0, unequal = 0;
  for (int64_t n : {1, 7, 17, 4097, 300001}) {
    std::vector<float> x = random_floats(n, seed++, -12.0f, 12.0f);
    if (n > 1000) std::copy(kSpecials.begin(), kSpecials.end(), x.begin() + 5);
    std::vector<float> got(n), want(n);
    ops::cpu::silu_array(x.data(), got.data(), n);
    for (int64_t i = 0; i < n; ++i) want[i] = silu_ref(x[i]);
    unequal += check_close_to_libm(x, got, want, "silu");
    ops::cpu::gelu_tanh_array(x.data(), got.data(), n);
    for (int64_t i = 0; i < n; ++i) want[i] = gelu_ref(x[i]);
    unequal += check_close_to_libm(x, got, want, "gelu_tanh");
    std::vector<float> inplace = x;  // y == x, as linear_gelu_tanh calls it
    ops::cpu::gelu_tanh_array(inplace.data(), inplace.data(), n);
    EXPECT_EQ(std::memcmp(inplace.data(), got.data(), sizeof(float) * n), 0) << "in place, n = " << n;
    total += 2 * n;
  }
  std::printf("  silu + gelu_tanh: %lld of %lld values differ from libm (each by 1 fp32 step)\n",
              static_cast<long long>(unequal), static_cast<long long>(total));
  EXPECT_LE(unequal * 10000, total);  // at most 1 in 10^4
}

TEST(VectorMath, ExpShiftedMatchesLibm) {
  uint32_t seed = 40;
  int64_t total = 0, unequal = 0;
  for (int64_t n : {1, 5, 33, 768, 100003}) {
    std::vector<float> s = random_floats(n, seed++, -60.0f, 8.0f);
    if (n > 1000) {
      std::copy(kSpecials.begin(), kSpecials.end(), s.begin() + 3);
      s[1] = -kInf;  // a masked logit
    }
    const float shift = 7.5f;
    std::vector<float> got = s, want(n), as_float(n);
    ops::cpu::exp_shifted_array(got.data(), n, shift);
    for (int64_t i = 0; i < n; ++i) {
      want[i] = static_cast<float>(std::exp(static_cast<double>(s[i] - shift)));
      as_float[i] = std::exp(s[i] - shift);  // the fp32 libm exp it replaces in attention
    }
    unequal += check_close_to_libm(s, got, want, "exp_shifted");
    check_close_to_libm(s, got, as_float, "exp_shifted vs expf");
    total += n;
  }
  EXPECT_LE(unequal * 10000, total);
}

}  // namespace
}  // namespace t2v
