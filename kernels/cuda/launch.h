// Launchers of the CUDA kernels: plain C++ declarations over raw device
// pointers, shared by the .cu files (which define them) and the Tensor-level
// wrappers (ops_*.cpp, which check shapes and dtypes and then call them). Keeping
// Tensor, fmt and the rest of core out of the .cu files keeps nvcc on kernels.
//
// Element codes: float data is F32, BF16 or F16 (Elem); "main" tensors (x and
// the output) share one code, side tensors (weights, shift/scale, tables) carry
// their own. All launches go to `s`, the context's stream, and are checked.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace t2v::ops::cuda {

enum class Elem : int { F32 = 0, BF16 = 1, F16 = 2 };
// Cast codes: the float Elems plus integers (converted by value).
enum class CastCode : int { F32 = 0, BF16 = 1, F16 = 2, I64 = 3, I32 = 4, U8 = 5 };

constexpr int kMaxBroadcastDims = 5;

// A read-only operand broadcast to the output shape: element (i0..i4) of the
// output reads p[sum(ik * stride[k])]; stride 0 on broadcast dims.
struct BView {
  const void* p = nullptr;
  Elem dt = Elem::F32;
  int64_t stride[kMaxBroadcastDims] = {0, 0, 0, 0, 0};
};
struct OutShape {
  int nd = 0;
  int64_t size[kMaxBroadcastDims] = {1, 1, 1, 1, 1};
};

// ---- elementwise (elementwise.cu) ------------------------------------------------
enum class UnaryOp : int { GeluTanh, GeluErf, Silu, Scale, AddScalar, Clamp };
// y[i] = op(x[i]) with parameters a, b (scale: a; add_scalar: a; clamp: [a, b]).
void launch_unary(UnaryOp op, void* y, const void* x, Elem dt, int64_t n, float a, float b, cudaStream_t s);

enum class NaryOp : int { Add, Sub, Mul, Modulate, AddGated };
// out = op(in0, in1[, in2]) over `shape`: Add/Sub/Mul use in0, in1; Modulate:
// in0 * (1 + in2) + in1 (x, shift, scale); AddGated: in0 + in1 * in2 (x, y, gate).
void launch_nary(NaryOp op, void* out, Elem out_dt, const OutShape& shape, const BView& in0, const BView& in1,
                 const BView& in2, cudaStream_t s);

// n elements from src (code sc) to dst (code dc). Float -> int truncates toward zero.
void launch_cast(void* dst, CastCode dc, const void* src, CastCode sc, int64_t n, cudaStream_t s);

// dst[j] = float(sum_t coef[t] * double(src[t][j])), t < k: fp64 accumulation,
// one rounding. dst may be one of the sources (each element is read before it
// is written, by the same thread). Passed by value: k <= kLincombMaxTerms.
constexpr int kLincombMaxTerms = 16;
struct LincombArgs {
  const float* src[kLincombMaxTerms] = {};
  double coef[kLincombMaxTerms] = {};
  int k = 0;
};
void launch_lincomb(float* dst, const LincombArgs& a, int64_t n, cudaStream_t s);

// ---- normalisation (norm.cu) -----------------------------------------------------
// Row-wise over the last dim C of `rows` rows. weight/bias may be nullptr.
// With modulate: y = LN(x) * (1 + scale) + shift, shift/scale broadcast over x's
// shape `xshape` (its last dim is C); pass shift.p == nullptr for plain LN.
void launch_layer_norm(void* y, const void* x, Elem dt, int64_t rows, int64_t C, const void* weight, Elem wdt,
                       const void* bias, Elem bdt, float eps, const OutShape& xshape, const BView& shift,
                       const BView& scale, cudaStream_t s);
void launch_rms_norm(void* y, const void* x, Elem dt, int64_t rows, int64_t C, const void* weight, Elem wdt,
                     float eps, cudaStream_t s);
// x [B, C, S]: y = x / max(||x[b, :, s]||, eps) * sqrt(C) * gamma[c].
void launch_rms_norm_channels(void* y, const void* x, Elem dt, int64_t B, int64_t C, int64_t S, const void* gamma,
                              Elem gdt, float eps, cudaStream_t s);
void launch_softmax(void* y, const void* x, Elem dt, int64_t rows, int64_t C, cudaStream_t s);

// ---- layout (layout.cu) ------------------------------------------------------------
// out (contiguous, out_shape) element i0..i4 = in[sum(ik * in_stride[k])], elements of esize bytes.
void launch_permute(void* out, const void* in, int esize, const OutShape& out_shape,
                    const int64_t in_stride[kMaxBroadcastDims], cudaStream_t s);
// Rows of `table` [V, C] gathered by ids (I64 if ids_i64 else I32) -> out [n, C].
// An id outside [0, V) writes its position + 1 into *flag (first one wins) and a zero row.
void launch_embedding(void* out, const void* table, int esize, int64_t V, int64_t C, const void* ids, bool ids_i64,
                      int64_t n, int* flag, cudaStream_t s);
// [P, H, W] -> [P, 2H, 2W], elements of esize bytes.
void launch_upsample_nearest2x(void* out, const void* in, int esize, int64_t P, int64_t H, int64_t W,
                               cudaStream_t s);
// x, y [B, N, NH, D] (dt), table [N, D/2, 2] (tdt): interleaved pair rotation.
void launch_rope_3d(void* y, const void* x, Elem dt, int64_t B, int64_t N, int64_t NH, int64_t D,
                    const void* table, Elem tdt, cudaStream_t s);

// ---- attention (attention_flash.cu) ------------------------------------------------
struct AttentionArgs {
  const void* q = nullptr;  // [B, Nq, NH, D]
  const void* k = nullptr;  // [B, Nk, NH, D]
  const void* v = nullptr;  // [B, Nk, NH, Dv]
  void* o = nullptr;        // [B, Nq, NH, Dv]
  Elem dt = Elem::F32;      // q, k, v, o
  int64_t B = 0, Nq = 0, Nk = 0, NH = 0, D = 0, Dv = 0;
  float scale = 1.0f;
  // Additive bias broadcast to [B, NH, Nq, Nk] through these element strides (0 = broadcast).
  const void* bias = nullptr;
  Elem bias_dt = Elem::F32;
  int64_t bias_stride[4] = {0, 0, 0, 0};
  const uint8_t* keep = nullptr;  // [B, Nk], nonzero = keep; nullptr = all keys
};
constexpr int kAttentionMaxHeadDim = 128;
// Tiled flash attention (online softmax, fp32 accumulation). D, Dv <= 128.
void launch_attention_flash(const AttentionArgs& a, cudaStream_t s);
// Tensor-core flash attention (attention_mma.cu): bf16, D = Dv in {64, 128},
// 16-byte aligned q/k/v/o. attention_mma_supported says whether `a` qualifies.
bool attention_mma_supported(const AttentionArgs& a);
void launch_attention_mma(const AttentionArgs& a, cudaStream_t s);
// Key mask of any integer/float code -> keep flags (nonzero).
void launch_mask_to_keep(uint8_t* keep, const void* mask, CastCode mc, int64_t n, cudaStream_t s);

// ---- convolution (conv.cu) -----------------------------------------------------------
struct ConvArgs {
  const void* x = nullptr;  // [B, Cin, T, H, W]
  const void* w = nullptr;  // [Cout, Cin, kt, kh, kw] (same dtype as x)
  const void* bias = nullptr;  // [Cout] or nullptr
  Elem bias_dt = Elem::F32;
  void* y = nullptr;  // [B, Cout, To, Ho, Wo]
  Elem dt = Elem::F32;
  int64_t B = 0, Cin = 0, T = 0, H = 0, W = 0;
  int64_t Cout = 0, kt = 1, kh = 1, kw = 1;
  int64_t To = 0, Ho = 0, Wo = 0;
  int st = 1, sh = 1, sw = 1;
  int pt = 0, ph = 0, pw = 0;  // front/top/left padding (the back/bottom/right side follows from To/Ho/Wo)
};
// Implicit GEMM: M = Cout, N = B*To*Ho*Wo, K = Cin*kt*kh*kw; fp32 accumulation.
void launch_conv3d_implicit_gemm(const ConvArgs& a, cudaStream_t s);

}  // namespace t2v::ops::cuda
