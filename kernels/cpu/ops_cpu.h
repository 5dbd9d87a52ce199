// The fp32 CPU reference of the op set (kernels/ops.h). Same names and
// signatures as ops.h without default arguments; kernels/ops.cpp checks the
// arguments (shapes, dtypes F32, devices) before calling these, so the functions
// here assume valid, contiguous CPU F32 inputs.
//
// GEMMs go through OpenBLAS (cblas_sgemm); everything else is OpenMP loops.
// Reductions (norms, softmax sums) accumulate in double so that results agree
// with PyTorch's CPU kernels to ~1e-6 relative.
//
// Choices where PyTorch has no finite answer: a softmax row (or an attention row)
// whose logits are all -inf gives zeros instead of NaN; clamp keeps NaN.
//
// Files: gemm.cpp (linear, matmul), norm.cpp (layer/rms norms, softmax),
// attention.cpp, elementwise.cpp (activations, broadcast arithmetic),
// conv.cpp (conv3d, conv2d, upsample), rope.cpp, layout.cpp (concat, slice,
// permute, embedding, cast). Tests: tests/kernels/.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/ops.h"

namespace t2v::ops::cpu {

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias);
Tensor matmul(const Tensor& a, const Tensor& b);

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps);
Tensor rms_norm(const Tensor& x, const Tensor& weight, float eps);
Tensor rms_norm_channels(const Tensor& x, const Tensor& gamma, float eps);
Tensor softmax(const Tensor& x);

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p);

Tensor gelu_tanh(const Tensor& x);
Tensor gelu_erf(const Tensor& x);
Tensor silu(const Tensor& x);
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor scale(const Tensor& x, float s);
Tensor add_scalar(const Tensor& x, float s);
Tensor clamp(const Tensor& x, float lo, float hi);
Tensor modulate(const Tensor& x, const Tensor& shift, const Tensor& scale);
Tensor add_gated(const Tensor& x, const Tensor& y, const Tensor& gate);

Tensor conv3d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv3dParams& p);
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p);
Tensor upsample_nearest2x(const Tensor& x);

Tensor rope_3d_table(int64_t T, int64_t H, int64_t W, int64_t head_dim, double theta);
Tensor rope_3d(const Tensor& x, const Tensor& table);

Tensor concat(const std::vector<Tensor>& xs, int dim);
Tensor slice(const Tensor& x, int dim, int64_t start, int64_t end);
Tensor permute(const Tensor& x, const std::vector<int>& perm);
Tensor contiguous_copy(const Tensor& x);
Tensor embedding(const Tensor& table, const Tensor& ids);
Tensor cast(const Tensor& x, DType dt);

}  // namespace t2v::ops::cpu
