// CUDA implementations of the op set in kernels/ops.h. kernels/ops.cpp calls these
// for tensors on Device::CUDA (under T2V_HAVE_CUDA); the names and signatures are
// those of kernels/ops.h without default arguments, so the dispatch is mechanical.
//
// Dtype rule: float inputs may be F32 or BF16 (mixed is allowed; the first tensor
// argument decides). Arithmetic is fp32 (loads widen to fp32, reductions and GEMM
// accumulate in fp32); the output has the dtype of the first tensor argument.
// Side tensors (weights, bias, shift/scale/gate, rope tables, attention bias) may
// be F32 or BF16 independently of x. Everything must live on the CUDA device that
// kernels/cuda/runtime.h initialised. Shape problems throw t2v::Error(70), like the
// CPU path. Extra CUDA-only fused ops live at the bottom of this file.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/ops.h"

namespace t2v::ops::cuda {

// ---- GEMM (cuBLASLt: bf16/fp32 in, fp32 accumulate, bias epilogue) ----------------
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias);
Tensor matmul(const Tensor& a, const Tensor& b);

// ---- normalisation ------------------------------------------------------------------
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps);
Tensor rms_norm(const Tensor& x, const Tensor& weight, float eps);
Tensor rms_norm_channels(const Tensor& x, const Tensor& gamma, float eps);
Tensor softmax(const Tensor& x);

// ---- attention (tiled flash attention; online softmax, fp32 accumulation) ----------
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p);

// ---- activations / elementwise ------------------------------------------------------
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

// ---- convolution / resampling ---------------------------------------------------------
Tensor conv3d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv3dParams& p);
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p);
Tensor upsample_nearest2x(const Tensor& x);

// ---- rotary embedding -------------------------------------------------------------------
// The table is computed on the CPU in fp64 (as the reference) and copied to the device.
Tensor rope_3d_table(int64_t T, int64_t H, int64_t W, int64_t head_dim, double theta);
Tensor rope_3d(const Tensor& x, const Tensor& table);

// ---- layout -------------------------------------------------------------------------------
Tensor concat(const std::vector<Tensor>& xs, int dim);
Tensor slice(const Tensor& x, int dim, int64_t start, int64_t end);
Tensor permute(const Tensor& x, const std::vector<int>& perm);
Tensor contiguous_copy(const Tensor& x);
Tensor embedding(const Tensor& table, const Tensor& ids);
// Float pairs among F32/BF16/F16 and integer<->float by value on the device.
Tensor cast(const Tensor& x, DType dt);

// ---- fused, CUDA only (no ops.h counterpart) ----------------------------------------
// modulate(layer_norm(x, weight, bias, eps), shift, scale) in one pass over x:
// x [..., C]; weight/bias [C] or undefined; shift/scale broadcast to x.
Tensor layer_norm_modulate(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps,
                           const Tensor& shift, const Tensor& scale);

// gelu_tanh(linear(x, w, bias)) with the GELU applied in cuBLASLt's epilogue
// (one pass over the output instead of two; the DiT FFN's first layer).
Tensor linear_gelu_tanh(const Tensor& x, const Tensor& w, const Tensor& bias);

}  // namespace t2v::ops::cuda
