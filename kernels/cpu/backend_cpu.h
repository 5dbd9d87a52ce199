// The fp32 CPU reference backend: each op-family file fills its entries of the
// CPU table (kernels/backend.h); kernels/backend.cpp collects them. The entries
// assume arguments checked by kernels/ops.cpp (shapes, devices, F32 for float
// ops) and contiguous CPU inputs.
//
// GEMMs go through OpenBLAS (cblas_sgemm); everything else is OpenMP loops.
// Reductions (norms, softmax sums) accumulate in double so that results agree
// with PyTorch's CPU kernels to ~1e-6 relative.
//
// Choices where PyTorch has no finite answer: a softmax row (or an attention row)
// whose logits are all -inf gives zeros instead of NaN; clamp keeps NaN.
//
// Files: gemm.cpp (linear, linear_gelu_tanh, matmul), norm.cpp (layer/rms norms,
// layer_norm_modulate, softmax), attention.cpp, elementwise.cpp (activations,
// broadcast arithmetic, lincomb), conv.cpp (conv3d, conv2d, upsample), rope.cpp,
// layout.cpp (concat, slice, permute, embedding, cast).
// Tests: tests/kernels/.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/backend.h"

namespace t2v::ops::cpu {

void register_gemm(Backend& b);
void register_norm(Backend& b);
void register_attention(Backend& b);
void register_elementwise(Backend& b);
void register_conv(Backend& b);
void register_rope(Backend& b);
void register_layout(Backend& b);

// The output of a Linear for x [..., K] and N outputs: y [..., N] F32 holding the
// bias rows (beta 1: the GEMM adds x·Wᵀ onto them, one rounding, as addmm) or,
// without a bias, beta 0 and y uninitialised unless K = 0 (then zeros: y is
// complete). rows = the product of x's leading dims. Shared by linear and
// linear_packed so both treat empty and bias-only shapes alike.
struct LinearOutput {
  Tensor y;
  int64_t rows = 0;
  float beta = 0.0f;
};
LinearOutput linear_output(const Tensor& x, int64_t n, const Tensor& bias);

// GELU, tanh form, of one value: 0.5 v (1 + tanh u) == v / (1 + exp(-2u)), one
// exp instead of tanh (which costs an expm1 and more: 19% of the default
// model's generation time went here), and no cancellation in 1 + tanh u for
// negative v. Evaluated in double, rounded once. Shared by gelu_tanh and
// linear_gelu_tanh so that the fused op equals the composition bit for bit.
inline float gelu_tanh_value(float x) {
  const double k2 = 2.0 * std::sqrt(2.0 / M_PI);  // folded at compile time
  const double v = x;
  return static_cast<float>(v / (1.0 + std::exp(-k2 * (v + 0.044715 * v * v * v))));
}

}  // namespace t2v::ops::cpu
