// Elementwise kernels: activations and scalar ops (unary), NumPy-broadcast
// arithmetic with up to three operands (add/sub/mul, modulate, gated residual),
// and dtype casts. Loads widen to fp32, the result rounds once to the output
// dtype. Grid-stride loops over int64 indices (N*C of real activations exceeds
// 2^31 for the VAE).
// lincomb (the scheduler step) sums its terms in fp64 and rounds once, as the
// CPU reference.
// Test: tests/cuda/test_backend_ops.cpp (Unary*, Binary*, Modulate, AddGated, Cast, Lincomb).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kernels/cuda/check.h"
#include "kernels/cuda/common.cuh"

namespace t2v::ops::cuda {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float unary_apply(UnaryOp op, float x, float a, float b) {
  switch (op) {
    case UnaryOp::GeluTanh: {
      // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), accurate tanhf (not the approx instruction).
      const float k0 = 0.7978845608028654f;
      return 0.5f * x * (1.0f + tanhf(k0 * (x + 0.044715f * x * x * x)));
    }
    case UnaryOp::GeluErf: return 0.5f * x * (1.0f + erff(x * 0.7071067811865476f));
    case UnaryOp::Silu: return x / (1.0f + expf(-x));
    case UnaryOp::Scale: return x * a;
    case UnaryOp::AddScalar: return x + a;
    case UnaryOp::Clamp: return fminf(fmaxf(x, a), b);
  }
  return x;
}

template <class T>
__global__ void unary_kernel(UnaryOp op, T* __restrict__ y, const T* __restrict__ x, int64_t n, float a, float b) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    y[i] = from_f32<T>(unary_apply(op, to_f32<T>(x[i]), a, b));
}

__device__ __forceinline__ float nary_apply(NaryOp op, float a, float b, float c) {
  switch (op) {
    case NaryOp::Add: return a + b;
    case NaryOp::Sub: return a - b;
    case NaryOp::Mul: return a * b;
    case NaryOp::Modulate: return a * (1.0f + c) + b;  // x * (1 + scale) + shift
    case NaryOp::AddGated: return a + b * c;           // x + y * gate
  }
  return a;
}

template <class T>
__global__ void nary_kernel(NaryOp op, T* __restrict__ out, OutShape shape, BView in0, BView in1, BView in2,
                            int64_t n, int nin) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t idx[kMaxBroadcastDims];
    unflatten(shape, i, idx);  // one set of divisions for all operands
    const float a = load_elem(in0.p, in0.dt, dot_stride(idx, in0.stride));
    const float b = load_elem(in1.p, in1.dt, dot_stride(idx, in1.stride));
    const float c = nin > 2 ? load_elem(in2.p, in2.dt, dot_stride(idx, in2.stride)) : 0.0f;
    out[i] = from_f32<T>(nary_apply(op, a, b, c));
  }
}

__device__ __forceinline__ double cast_load(const void* p, CastCode c, int64_t i) {
  switch (c) {
    case CastCode::F32: return static_cast<const float*>(p)[i];
    case CastCode::BF16: return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
    case CastCode::F16: return __half2float(static_cast<const __half*>(p)[i]);
    case CastCode::I64: return static_cast<double>(static_cast<const int64_t*>(p)[i]);
    case CastCode::I32: return static_cast<const int32_t*>(p)[i];
    case CastCode::U8: return static_cast<const uint8_t*>(p)[i];
  }
  return 0.0;
}

__global__ void cast_kernel(void* __restrict__ dst, CastCode dc, const void* __restrict__ src, CastCode sc,
                            int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    if (sc == CastCode::I64 && dc == CastCode::I32) {  // exact integer path (no double round trip)
      static_cast<int32_t*>(dst)[i] = static_cast<int32_t>(static_cast<const int64_t*>(src)[i]);
      continue;
    }
    if (sc == CastCode::I32 && dc == CastCode::I64) {
      static_cast<int64_t*>(dst)[i] = static_cast<const int32_t*>(src)[i];
      continue;
    }
    // Floats convert through fp32 (a direct bf16 <-> f16 goes through fp32 too,
    // as on the CPU); integers by value, float -> int truncating toward zero.
    const double v = cast_load(src, sc, i);
    switch (dc) {
      case CastCode::F32: static_cast<float*>(dst)[i] = static_cast<float>(v); break;
      case CastCode::BF16: static_cast<__nv_bfloat16*>(dst)[i] = __float2bfloat16_rn(static_cast<float>(v)); break;
      case CastCode::F16: static_cast<__half*>(dst)[i] = __float2half_rn(static_cast<float>(v)); break;
      case CastCode::I64: static_cast<int64_t*>(dst)[i] = static_cast<int64_t>(v); break;
      case CastCode::I32: static_cast<int32_t*>(dst)[i] = static_cast<int32_t>(v); break;
      case CastCode::U8: static_cast<uint8_t*>(dst)[i] = static_cast<uint8_t>(static_cast<int32_t>(v)); break;
    }
  }
}

// No __restrict__: dst may alias a source. Terms are summed in order t = 0..k-1,
// as the CPU loop, so the result is bit-identical to it (no FMA contraction:
// __dmul_rn / __dadd_rn).
__global__ void lincomb_kernel(float* dst, LincombArgs a, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    double acc = 0.0;
    for (int t = 0; t < a.k; ++t) acc = __dadd_rn(acc, __dmul_rn(a.coef[t], static_cast<double>(a.src[t][i])));
    dst[i] = static_cast<float>(acc);
  }
}

}  // namespace

void launch_lincomb(float* dst, const LincombArgs& a, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  lincomb_kernel<<<grid_1d(n, kThreads), kThreads, 0, s>>>(dst, a, n);
  T2V_CUDA_LAUNCH_CHECK("lincomb_kernel");
}

void launch_unary(UnaryOp op, void* y, const void* x, Elem dt, int64_t n, float a, float b, cudaStream_t s) {
  if (n == 0) return;
  const unsigned g = grid_1d(n, kThreads);
  switch (dt) {
    case Elem::F32:
      unary_kernel<float><<<g, kThreads, 0, s>>>(op, static_cast<float*>(y), static_cast<const float*>(x), n, a, b);
      break;
    case Elem::BF16:
      unary_kernel<__nv_bfloat16><<<g, kThreads, 0, s>>>(op, static_cast<__nv_bfloat16*>(y),
                                                          static_cast<const __nv_bfloat16*>(x), n, a, b);
      break;
    case Elem::F16:
      unary_kernel<__half><<<g, kThreads, 0, s>>>(op, static_cast<__half*>(y), static_cast<const __half*>(x), n, a, b);
      break;
  }
  T2V_CUDA_LAUNCH_CHECK("unary_kernel");
}

void launch_nary(NaryOp op, void* out, Elem out_dt, const OutShape& shape, const BView& in0, const BView& in1,
                 const BView& in2, cudaStream_t s) {
  int64_t n = 1;
  for (int d = 0; d < shape.nd; ++d) n *= shape.size[d];
  if (n == 0) return;
  const int nin = (op == NaryOp::Modulate || op == NaryOp::AddGated) ? 3 : 2;
  const unsigned g = grid_1d(n, kThreads);
  switch (out_dt) {
    case Elem::F32:
      nary_kernel<float><<<g, kThreads, 0, s>>>(op, static_cast<float*>(out), shape, in0, in1, in2, n, nin);
      break;
    case Elem::BF16:
      nary_kernel<__nv_bfloat16><<<g, kThreads, 0, s>>>(op, static_cast<__nv_bfloat16*>(out), shape, in0, in1, in2,
                                                         n, nin);
      break;
    case Elem::F16:
      nary_kernel<__half><<<g, kThreads, 0, s>>>(op, static_cast<__half*>(out), shape, in0, in1, in2, n, nin);
      break;
  }
  T2V_CUDA_LAUNCH_CHECK("nary_kernel");
}

void launch_cast(void* dst, CastCode dc, const void* src, CastCode sc, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  cast_kernel<<<grid_1d(n, kThreads), kThreads, 0, s>>>(dst, dc, src, sc, n);
  T2V_CUDA_LAUNCH_CHECK("cast_kernel");
}

}  // namespace t2v::ops::cuda
