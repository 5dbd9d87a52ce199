// The op set. Every op takes and returns Tensors and dispatches on the device of
// its first tensor argument: CPU runs the fp32 reference (kernels/cpu), CUDA runs
// kernels/cuda (bf16 storage, fp32 accumulation). Model code calls only these.
//
// Conventions: shapes in PyTorch order, outermost first. Symbols: B batch,
// N tokens, C channels, NH heads, D head dim, T frames, H/W height/width.
// Outputs are freshly allocated, contiguous, on the input's device. On CPU every
// float op takes and returns F32; other dtypes are refused with a clear error.
// Shape problems throw t2v::Error(70) naming the op and the shapes.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace t2v::ops {

// ---- GEMM ---------------------------------------------------------------------
// y = x·wᵀ + b.  x [..., K], w [N, K] (PyTorch Linear layout), bias [N] or undefined -> [..., N]
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias = {});
// Batched matrix product: a [..., M, K], b [..., K, N] -> [..., M, N]; leading dims must match exactly.
Tensor matmul(const Tensor& a, const Tensor& b);

// ---- normalisation ------------------------------------------------------------
// Over the last dim C: (x - mean)/sqrt(var + eps) [* weight + bias]. weight/bias [C] or undefined.
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps);
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
// Wan 3D RoPE table for a T x H x W token grid (token n = (f*H + y)*W + x) and head
// dim D: [N, D/2, 2] F32 holding (cos, sin) per complex pair. Pairs [0, d_t/2) rotate
// by frame, then d_h/2 by row, then d_w/2 by column, with d_t = D - 4*(D/6),
// d_h = d_w = 2*(D/6), omega_j = theta^(-2j/d_axis); angles in fp64 (docs/wan.md §2.8).
Tensor rope_3d_table(int64_t T, int64_t H, int64_t W, int64_t head_dim, double theta = 10000.0);
// Rotates interleaved pairs (x[2k], x[2k+1]) of x [B, N, NH, D] by the table [N, D/2, 2].
Tensor rope_3d(const Tensor& x, const Tensor& table);

// ---- layout ---------------------------------------------------------------------
Tensor concat(const std::vector<Tensor>& xs, int dim);
Tensor slice(const Tensor& x, int dim, int64_t start, int64_t end);  // [start, end) along dim
Tensor permute(const Tensor& x, const std::vector<int>& perm);      // output dim i = input dim perm[i]
Tensor contiguous_copy(const Tensor& x);                             // plain copy
// Gathers rows: table [V, C], ids [...] (I64/I32) -> [..., C]. (Embedding lookup.)
Tensor embedding(const Tensor& table, const Tensor& ids);
// Cast to another dtype on the same device (CPU: any pair; see core/dtype.h).
Tensor cast(const Tensor& x, DType dt);

}  // namespace t2v::ops
