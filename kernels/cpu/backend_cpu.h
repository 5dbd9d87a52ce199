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

// Applies f(x, y, n) (kernels/cpu/vector_math.h) to x[0, n) in blocks spread over
// the OpenMP threads; y may be x.
void apply_in_blocks(void (*f)(const float*, float*, int64_t), const float* x, float* y, int64_t n);

}  // namespace t2v::ops::cpu
