// Normalisation kernels: layer_norm (optionally fused with the DiT's
// modulate, x̂·(1+scale)+shift), rms_norm, the VAE's channel RMS norm, softmax.
// Row ops use one block per row: pass 1 reduces (mean / sum of squares / max),
// pass 2 (layer_norm: the centred second moment, re-read from L2) and the
// write pass re-read the row, so the variance is two-pass like the fp32
// reference instead of E[x²]−E[x]² (which cancels badly for large means).
// Test: tests/cuda/test_backend_ops.cpp (LayerNorm*, RmsNorm*, Softmax).
#include "kernels/cuda/check.h"
#include "kernels/cuda/common.cuh"

namespace t2v::ops::cuda {
namespace {

constexpr int kRowThreads = 256;

template <class T>
__global__ void layer_norm_kernel(T* __restrict__ y, const T* __restrict__ x, int64_t C, const void* weight,
                                  Elem wdt, const void* bias, Elem bdt, float eps, OutShape xshape, BView shift,
                                  BView scale) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const T* xr = x + row * C;
  T* yr = y + row * C;
  float s = 0.0f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) s += to_f32<T>(xr[c]);
  const float mean = block_sum(s, scratch) / (float)C;
  float ss = 0.0f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const float d = to_f32<T>(xr[c]) - mean;
    ss += d * d;
  }
  const float rstd = rsqrtf(block_sum(ss, scratch) / (float)C + eps);  // biased variance, as PyTorch
  const bool mod = shift.p != nullptr;
  int64_t sh_base = 0, sc_base = 0, sh_last = 0, sc_last = 0;
  if (mod) {
    sh_base = bview_offset(xshape, shift.stride, row * C);
    sc_base = bview_offset(xshape, scale.stride, row * C);
    sh_last = shift.stride[xshape.nd - 1];
    sc_last = scale.stride[xshape.nd - 1];
  }
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    float v = (to_f32<T>(xr[c]) - mean) * rstd;
    if (weight) v *= load_elem(weight, wdt, c);
    if (bias) v += load_elem(bias, bdt, c);
    if (mod)
      v = v * (1.0f + load_elem(scale.p, scale.dt, sc_base + c * sc_last)) +
          load_elem(shift.p, shift.dt, sh_base + c * sh_last);
    yr[c] = from_f32<T>(v);
  }
}

template <class T>
__global__ void rms_norm_kernel(T* __restrict__ y, const T* __restrict__ x, int64_t C, const void* weight, Elem wdt,
                                float eps) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const T* xr = x + row * C;
  T* yr = y + row * C;
  float ss = 0.0f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const float v = to_f32<T>(xr[c]);
    ss += v * v;
  }
  const float rinv = rsqrtf(block_sum(ss, scratch) / (float)C + eps);
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    // Normalised value first, then times the weight (the order of both references).
    float v = to_f32<T>(xr[c]) * rinv;
    if (weight) v *= load_elem(weight, wdt, c);
    yr[c] = from_f32<T>(v);
  }
}

// One thread per (b, s) position; threads of a warp take consecutive s, so each
// channel's loads are coalesced. The channel loop runs twice (sum, then write).
template <class T>
__global__ void rms_norm_channels_kernel(T* __restrict__ y, const T* __restrict__ x, int64_t B, int64_t C, int64_t S,
                                         const void* gamma, Elem gdt, float eps, float root_c) {
  const int64_t total = B * S;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t b = i / S, sp = i % S;
    const T* xb = x + b * C * S + sp;
    T* yb = y + b * C * S + sp;
    float ss = 0.0f;
    for (int64_t c = 0; c < C; ++c) {
      const float v = to_f32<T>(xb[c * S]);
      ss += v * v;
    }
    const float inv = 1.0f / fmaxf(sqrtf(ss), eps);  // F.normalize: x / max(||x||, eps)
    for (int64_t c = 0; c < C; ++c)
      yb[c * S] = from_f32<T>(to_f32<T>(xb[c * S]) * inv * root_c * load_elem(gamma, gdt, c));
  }
}

template <class T>
__global__ void softmax_kernel(T* __restrict__ y, const T* __restrict__ x, int64_t C) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const T* xr = x + row * C;
  T* yr = y + row * C;
  float mx = -INFINITY;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) mx = fmaxf(mx, to_f32<T>(xr[c]));
  mx = block_max(mx, scratch);
  if (mx == -INFINITY) {  // every logit -inf: zeros, as the reference
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) yr[c] = from_f32<T>(0.0f);
    return;
  }
  float s = 0.0f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) s += expf(to_f32<T>(xr[c]) - mx);
  const float inv = 1.0f / block_sum(s, scratch);
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) yr[c] = from_f32<T>(expf(to_f32<T>(xr[c]) - mx) * inv);
}

// Rows go on grid.x (up to 2^31 - 1), enough for any activation here.
dim3 row_grid(int64_t rows) { return dim3(static_cast<unsigned>(rows)); }

}  // namespace

void launch_layer_norm(void* y, const void* x, Elem dt, int64_t rows, int64_t C, const void* weight, Elem wdt,
                       const void* bias, Elem bdt, float eps, const OutShape& xshape, const BView& shift,
                       const BView& scale, cudaStream_t s) {
  if (rows == 0 || C == 0) return;
  switch (dt) {
    case Elem::F32:
      layer_norm_kernel<float><<<row_grid(rows), kRowThreads, 0, s>>>(
          static_cast<float*>(y), static_cast<const float*>(x), C, weight, wdt, bias, bdt, eps, xshape, shift, scale);
      break;
    case Elem::BF16:
      layer_norm_kernel<__nv_bfloat16><<<row_grid(rows), kRowThreads, 0, s>>>(
          static_cast<__nv_bfloat16*>(y), static_cast<const __nv_bfloat16*>(x), C, weight, wdt, bias, bdt, eps, xshape,
          shift, scale);
      break;
    case Elem::F16:
      layer_norm_kernel<__half><<<row_grid(rows), kRowThreads, 0, s>>>(
          static_cast<__half*>(y), static_cast<const __half*>(x), C, weight, wdt, bias, bdt, eps, xshape, shift, scale);
      break;
  }
  T2V_CUDA_LAUNCH_CHECK("layer_norm_kernel");
}

void launch_rms_norm(void* y, const void* x, Elem dt, int64_t rows, int64_t C, const void* weight, Elem wdt,
                     float eps, cudaStream_t s) {
  if (rows == 0 || C == 0) return;
  switch (dt) {
    case Elem::F32:
      rms_norm_kernel<float><<<row_grid(rows), kRowThreads, 0, s>>>(static_cast<float*>(y),
                                                                     static_cast<const float*>(x), C, weight, wdt, eps);
      break;
    case Elem::BF16:
      rms_norm_kernel<__nv_bfloat16><<<row_grid(rows), kRowThreads, 0, s>>>(
          static_cast<__nv_bfloat16*>(y), static_cast<const __nv_bfloat16*>(x), C, weight, wdt, eps);
      break;
    case Elem::F16:
      rms_norm_kernel<__half><<<row_grid(rows), kRowThreads, 0, s>>>(static_cast<__half*>(y),
                                                                      static_cast<const __half*>(x), C, weight, wdt, eps);
      break;
  }
  T2V_CUDA_LAUNCH_CHECK("rms_norm_kernel");
}

void launch_rms_norm_channels(void* y, const void* x, Elem dt, int64_t B, int64_t C, int64_t S, const void* gamma,
                              Elem gdt, float eps, cudaStream_t s) {
  if (B * C * S == 0) return;
  const float root_c = sqrtf(static_cast<float>(C));
  const unsigned g = grid_1d(B * S, kRowThreads);
  switch (dt) {
    case Elem::F32:
      rms_norm_channels_kernel<float><<<g, kRowThreads, 0, s>>>(static_cast<float*>(y), static_cast<const float*>(x),
                                                                 B, C, S, gamma, gdt, eps, root_c);
      break;
    case Elem::BF16:
      rms_norm_channels_kernel<__nv_bfloat16><<<g, kRowThreads, 0, s>>>(
          static_cast<__nv_bfloat16*>(y), static_cast<const __nv_bfloat16*>(x), B, C, S, gamma, gdt, eps, root_c);
      break;
    case Elem::F16:
      rms_norm_channels_kernel<__half><<<g, kRowThreads, 0, s>>>(static_cast<__half*>(y), static_cast<const __half*>(x),
                                                                  B, C, S, gamma, gdt, eps, root_c);
      break;
  }
  T2V_CUDA_LAUNCH_CHECK("rms_norm_channels_kernel");
}

void launch_softmax(void* y, const void* x, Elem dt, int64_t rows, int64_t C, cudaStream_t s) {
  if (rows == 0 || C == 0) return;
  switch (dt) {
    case Elem::F32:
      softmax_kernel<float><<<row_grid(rows), kRowThreads, 0, s>>>(static_cast<float*>(y),
                                                                    static_cast<const float*>(x), C);
      break;
    case Elem::BF16:
      softmax_kernel<__nv_bfloat16><<<row_grid(rows), kRowThreads, 0, s>>>(static_cast<__nv_bfloat16*>(y),
                                                                            static_cast<const __nv_bfloat16*>(x), C);
      break;
    case Elem::F16:
      softmax_kernel<__half><<<row_grid(rows), kRowThreads, 0, s>>>(static_cast<__half*>(y),
                                                                     static_cast<const __half*>(x), C);
      break;
  }
  T2V_CUDA_LAUNCH_CHECK("softmax_kernel");
}

}  // namespace t2v::ops::cuda
