// The op set. Every op takes and returns Tensors and runs on the device of its
// first tensor argument: kernels/ops.cpp checks the arguments, then calls that
// device's entry in the backend table (kernels/backend.h). Backends: the CPU
// fp32 reference (kernels/cpu), CUDA (kernels/cuda), and the test device
// (kernels/test_device: the CPU kernels behind the device interface). Model
// code calls only these functions.
//
// Conventions: shapes in PyTorch order, outermost first. Symbols: B batch,
// N tokens, C channels, NH heads, D head dim, T frames, H/W height/width.
// Outputs are freshly allocated, contiguous, on the input's device. Shape
// problems throw t2v::Error(70) naming the op and the shapes; an op a device
// does not implement throws Error(69) "<op> is not supported on device <name>".
//
// Dtype rule (every backend):
//  - CPU: float ops take and return F32 only (the reference); other dtypes are
//    refused with Error(70).
//  - Devices (cuda, test): float tensors are F32, BF16 or F16. Loads widen to
//    fp32, arithmetic and accumulation are fp32, and the output has the dtype of
//    the first tensor argument. Side tensors (norm weights and biases,
//    shift/scale/gate, rope tables, attention bias) may be F32 or another float
//    dtype independently of x.
//  - linear, linear_gelu_tanh, matmul, conv3d, conv2d: the activation and the
//    weight (x and w, a and b) must have the same dtype, Error(70) naming both
//    otherwise: no op converts a weight per call, the model stores weights in
//    the dtype it computes in (and casts activations, once per GEMM group, with
//    ops::cast). A bias may be F32 or that same dtype.
//  - Layout ops (concat, slice, permute, contiguous_copy, embedding) move any
//    dtype bit-exactly; cast converts (CPU: any pair; devices: floats and
//    I64/I32/U8).
//  - lincomb: F32 only.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <vector>

#include "core/tensor.h"

namespace t2v::ops {

// ---- GEMM ---------------------------------------------------------------------
// y = x·wᵀ + b.  x [..., K], w [N, K] (PyTorch Linear layout), bias [N] or undefined -> [..., N]
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias = {});
// Batched matrix product: a [..., M, K], b [..., K, N] -> [..., M, N]; leading dims must match exactly.
Tensor matmul(const Tensor& a, const Tensor& b);
// gelu_tanh(linear(x, w, bias)) in one op (the DiT FFN's first layer; CUDA
// applies the GELU in the GEMM epilogue). The CPU result equals the composition
// bit for bit.
Tensor linear_gelu_tanh(const Tensor& x, const Tensor& w, const Tensor& bias = {});

// ---- normalisation ------------------------------------------------------------
// Over the last dim C: (x - mean)/sqrt(var + eps) [* weight + bias]. weight/bias [C] or undefined.
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps);
// modulate(layer_norm(x, weight, bias, eps), shift, scale) in one pass over x:
// x [..., C], weight/bias [C] or undefined, shift/scale broadcast to x (e.g.
// [B, 1, C]). The CPU result equals the composition bit for bit.
Tensor layer_norm_modulate(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps, const Tensor& shift,
                           const Tensor& scale);
// Over the last dim C: x / sqrt(mean(x^2) + eps) [* weight]. (T5 / DiT q-k norm.)
Tensor rms_norm(const Tensor& x, const Tensor& weight, float eps);
// Over dim 1 of a channel-first tensor [B, C, ...]: x / max(||x||_2, eps) * sqrt(C) * gamma,
// gamma [C] (any trailing singleton dims allowed). (Wan VAE RMS_norm.)
Tensor rms_norm_channels(const Tensor& x, const Tensor& gamma, float eps = 1e-12f);
// Softmax over the last dim (max-subtracted, fp32).
Tensor softmax(const Tensor& x);

// ---- attention ----------------------------------------------------------------
struct AttentionParams {
  float scale = 1.0f;  // multiplies q·k (1/sqrt(D) for Wan; 1 for T5)
  // Optional additive bias on the logits, broadcastable to [B, NH, Nq, Nk]
  // (dims of size 1 broadcast); F32. Used for T5's relative position bias.
  Tensor bias;
  // Optional key mask [B, Nk] (I64/I32/U8/F32, nonzero = keep). Masked keys get -inf
  // (a fully masked row yields zeros).
  Tensor key_mask;
};
// Scaled dot-product attention, non-causal. Layout "token-major, heads inside":
// q [B, Nq, NH, D], k [B, Nk, NH, D], v [B, Nk, NH, Dv] -> [B, Nq, NH, Dv].
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p);

// ---- activations / elementwise ------------------------------------------------
Tensor gelu_tanh(const Tensor& x);  // 0.5x(1+tanh(sqrt(2/pi)(x+0.044715x^3)))
Tensor gelu_erf(const Tensor& x);   // exact GELU
Tensor silu(const Tensor& x);
// Elementwise with NumPy broadcasting (shapes right-aligned, size-1 dims broadcast).
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor scale(const Tensor& x, float s);  // x * s
Tensor add_scalar(const Tensor& x, float s);
Tensor clamp(const Tensor& x, float lo, float hi);
// x * (1 + scale) + shift; shift/scale broadcast to x (e.g. x [B, N, C], shift [B, 1, C]).
Tensor modulate(const Tensor& x, const Tensor& shift, const Tensor& scale);
// x + y * gate (gated residual); y same shape as x, gate broadcast to x.
Tensor add_gated(const Tensor& x, const Tensor& y, const Tensor& gate);

// ---- linear combination (the scheduler's one numeric primitive) -------------------
struct LinTerm {
  double coef;
  const Tensor* src;  // F32, same shape and device as dst
};
// dst[j] = float(sum_k coef_k * double(src_k[j])), accumulated in double and
// rounded once. Terms whose coefficient is exactly 0 are skipped, so a sigma = 0
// step yields x0 exactly even where the dropped term holds inf. dst may be one of
// the sources (elementwise, read before write). Coefficients must be finite.
void lincomb(Tensor& dst, std::span<const LinTerm> terms);
inline void lincomb(Tensor& dst, std::initializer_list<LinTerm> terms) {
  lincomb(dst, std::span<const LinTerm>(terms.begin(), terms.size()));
}

// ---- convolution / resampling ---------------------------------------------------
struct Conv3dParams {
  std::array<int, 3> stride{1, 1, 1};  // (t, h, w)
  int pad_t_front = 0, pad_t_back = 0;  // causal convs: front only
  int pad_h = 0, pad_w = 0;              // symmetric zero padding
};
// x [B, Cin, T, H, W], w [Cout, Cin, kt, kh, kw], bias [Cout] or undefined -> [B, Cout, T', H', W'].
Tensor conv3d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv3dParams& p);
struct Conv2dParams {
  std::array<int, 2> stride{1, 1};
  int pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
};
// x [B, Cin, H, W], w [Cout, Cin, kh, kw], bias [Cout] or undefined -> [B, Cout, H', W'].
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p);
// Nearest-neighbour x2 upsampling of the last two dims: [..., H, W] -> [..., 2H, 2W].
Tensor upsample_nearest2x(const Tensor& x);

// ---- rotary embedding -------------------------------------------------------------
// Rotates interleaved pairs (x[2k], x[2k+1]) of x [B, N, NH, D] by the table [N, D/2, 2]
// holding (cos, sin) per pair (the Wan DiT builds it: diffusion/wan_dit_geometry.h).
Tensor rope_3d(const Tensor& x, const Tensor& table);

// ---- layout ---------------------------------------------------------------------
Tensor concat(const std::vector<Tensor>& xs, int dim);
Tensor slice(const Tensor& x, int dim, int64_t start, int64_t end);  // [start, end) along dim
Tensor permute(const Tensor& x, const std::vector<int>& perm);      // output dim i = input dim perm[i]
Tensor contiguous_copy(const Tensor& x);                             // plain copy
// Gathers rows: table [V, C], ids [...] (I64/I32) -> [..., C]. (Embedding lookup.)
Tensor embedding(const Tensor& table, const Tensor& ids);
// Cast to another dtype on the same device (CPU: any pair; devices: floats and
// I64/I32/U8; see core/dtype.h).
Tensor cast(const Tensor& x, DType dt);

}  // namespace t2v::ops
