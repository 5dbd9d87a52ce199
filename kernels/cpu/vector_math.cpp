// See vector_math.h. exp: x = n·ln2 + r with |r| <= ln2/2 (Cody–Waite split of
// ln2, n·ln2_hi exact for |n| < 2^11), e^r by its Taylor series to r^13 (truncation
// < 5e-18 relative), times 2^n built in the exponent bits. Branch-free, so the
// loops below vectorise; each array function is compiled for AVX-512, AVX2 and
// the baseline, picked at load time (target_clones). Compiled without FMA
// contraction (kernels/CMakeLists.txt): every clone rounds the same operations,
// so results do not depend on the CPU.
#include "kernels/cpu/vector_math.h"

#include <bit>
#include <cmath>
#include <limits>

namespace t2v::ops::cpu {
namespace {

// Above kExpHigh exp overflows double; below kExpLow the result is < 2^-1019
// (far below any fp32 subnormal): returned as 0.
constexpr double kExpHigh = 709.782712893384;
constexpr double kExpLow = -707.0;

inline double exp_lanes(double x) {
  constexpr double kLog2e = 1.4426950408889634;
  constexpr double kLn2Hi = 6.93147180369123816490e-01;  // 32 significant bits: n·kLn2Hi exact
  constexpr double kLn2Lo = 1.90821492927058770002e-10;
  constexpr double kShifter = 6755399441055744.0;  // 1.5·2^52: adding it rounds to an integer in the low bits
  // Clamped so that n stays in [-1020, 1024]; the out-of-range results are
  // selected at the end. A NaN passes the clamps (comparisons false).
  const double xc = x < kExpLow ? kExpLow : (x > kExpHigh ? kExpHigh : x);
  const double t = xc * kLog2e + kShifter;
  const double n = t - kShifter;  // nearest integer to x·log2(e)
  const double r = (xc - n * kLn2Hi) - n * kLn2Lo;
  double p = 1.0 / 6227020800.0;  // 1/13!
  p = p * r + 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  // The low bits of t hold n (two's complement). 2^n as 2^(n-1)·2, (n - 1 + 1023) << 52,
  // so that n = 1024 (x up to kExpHigh) has a finite exponent; both products are exact.
  const int64_t ni = std::bit_cast<int64_t>(t) - std::bit_cast<int64_t>(kShifter);
  const double half_scale = std::bit_cast<double>(static_cast<int64_t>(static_cast<uint64_t>(ni + 1022) << 52));
  const double e = p * half_scale * 2.0;
  return x > kExpHigh ? std::numeric_limits<double>::infinity() : (x < kExpLow ? 0.0 : e);
}

}  // namespace

double exp_double(double x) { return exp_lanes(x); }

__attribute__((target_clones("avx512f", "avx2", "default"))) void gelu_tanh_array(const float* x, float* y,
                                                                                    int64_t n) {
  const double k2 = 2.0 * std::sqrt(2.0 / M_PI);  // folded at compile time, as in the scalar form
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[i];
    y[i] = static_cast<float>(v / (1.0 + exp_lanes(-k2 * (v + 0.044715 * v * v * v))));
  }
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void silu_array(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[i];
    y[i] = static_cast<float>(v / (1.0 + exp_lanes(-v)));
  }
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void exp_shifted_array(float* s, int64_t n,
                                                                                      float shift) {
  for (int64_t i = 0; i < n; ++i) s[i] = static_cast<float>(exp_lanes(static_cast<double>(s[i] - shift)));
}

}  // namespace t2v::ops::cpu
