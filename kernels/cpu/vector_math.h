// exp and the exp-based activations over arrays, in double and rounded once to
// fp32, written so the compiler vectorises them (no libm call per element):
// glibc's scalar exp inside the GELU of the DiT's FFN took 0.45 of 4.7 CPU-s of
// a 1.3B step (docs/PERFORMANCE.md). The double results are within 2 ulp (double)
// of the exact values, so the fp32 results equal those of the libm expressions
// they replace except where the exact value lies within ~1e-16 of a rounding
// boundary between two floats.
// Test: tests/kernels/test_vector_math.cpp (against std::exp in double and the
// scalar expressions, random and edge inputs).
#pragma once

#include <cstdint>

namespace t2v::ops::cpu {

// exp(x) in double: ≤ 2 ulp for x in [-707, 709.78]; +inf above, 0 below -707
// (results there are far below the smallest fp32 subnormal), NaN for NaN.
double exp_double(double x);

// y[i] = fp32 of the double expression, for i < n (x and y may be the same array).
// gelu_tanh: v / (1 + exp(-2·sqrt(2/π)·(v + 0.044715·v³))) == 0.5·v·(1 + tanh(u)).
void gelu_tanh_array(const float* x, float* y, int64_t n);
// silu: v / (1 + exp(-v)).
void silu_array(const float* x, float* y, int64_t n);
// s[i] = fp32 of exp(s[i] - shift), the difference taken in fp32 (softmax rows).
void exp_shifted_array(float* s, int64_t n, float shift);

}  // namespace t2v::ops::cpu
