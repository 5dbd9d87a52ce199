// conv3d (and conv2d as a conv3d with T = kt = 1) as an implicit GEMM:
//   Y[co, n] = sum_k W[co, k] · X̃[k, n] + bias[co]
// with M = Cout, N = B·To·Ho·Wo output positions, K = Cin·kt·kh·kw, where the
// im2col matrix X̃ is never stored: each B tile is gathered from x with the
// zero padding applied on the fly (out-of-range taps read 0). fp32 accumulation.
//
// Tiling: 64x64 output tile per block of 256 threads, K in steps of 16; each
// thread owns a 4x4 micro-tile. This is the straightforward SIMT version
// (correctness first; cuDNN or a tensor-core kernel is the fast path).
// Test: tests/cuda/test_backend_ops.cpp (Conv3d*, Conv2d*).
#include "kernels/cuda/check.h"
#include "kernels/cuda/common.cuh"

namespace t2v::ops::cuda {
namespace {

constexpr int kBM = 64, kBN = 64, kBK = 16, kThreads = 256;

template <class T>
__global__ void __launch_bounds__(kThreads) conv_implicit_gemm_kernel(ConvArgs a) {
  __shared__ float As[kBK][kBM];      // weights, k-major so a row of m is contiguous
  __shared__ float Bs[kBK][kBN + 4];  // gathered input columns
  const T* __restrict__ x = static_cast<const T*>(a.x);
  const T* __restrict__ w = static_cast<const T*>(a.w);
  T* __restrict__ y = static_cast<T*>(a.y);

  const int64_t khw = a.kh * a.kw, ktaps = a.kt * khw;
  const int64_t K = a.Cin * ktaps;
  const int64_t S_out = a.To * a.Ho * a.Wo;
  const int64_t N = a.B * S_out;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * kBM, n0 = static_cast<int64_t>(blockIdx.x) * kBN;
  const int tid = threadIdx.x;

  // The B-tile column this thread gathers is fixed (256 threads, 64 columns).
  const int bn = tid % kBN;
  const int bk0 = tid / kBN;  // rows bk0, bk0 + 4, ...
  const int64_t ng = n0 + bn;
  const bool n_ok = ng < N;
  int64_t nb = 0, nt = 0, ny = 0, nx = 0;
  if (n_ok) {
    nb = ng / S_out;
    int64_t sp = ng % S_out;
    nx = sp % a.Wo;
    sp /= a.Wo;
    ny = sp % a.Ho;
    nt = sp / a.Ho;
  }
  const int64_t t_base = nt * a.st - a.pt, y_base = ny * a.sh - a.ph, x_base = nx * a.sw - a.pw;

  const int ty = tid / 16, tx = tid % 16;  // micro-tile rows ty*4.., cols tx*4..
  float acc[4][4] = {};

  for (int64_t k0 = 0; k0 < K; k0 += kBK) {
    // A tile: 64 x 16 weights, 4 per thread.
#pragma unroll
    for (int e = 0; e < (kBM * kBK) / kThreads; ++e) {
      const int i = tid + kThreads * e;
      const int mm = i / kBK, kk = i % kBK;
      const int64_t mg = m0 + mm, kg = k0 + kk;
      As[kk][mm] = (mg < a.Cout && kg < K) ? to_f32<T>(w[mg * K + kg]) : 0.0f;
    }
    // B tile: 16 x 64 gathered taps, 4 per thread.
#pragma unroll
    for (int e = 0; e < (kBK * kBN) / kThreads; ++e) {
      const int kk = bk0 + 4 * e;
      const int64_t kg = k0 + kk;
      float val = 0.0f;
      if (n_ok && kg < K) {
        const int64_t ci = kg / ktaps;
        int64_t r = kg % ktaps;
        const int64_t dt = r / khw;
        r %= khw;
        const int64_t dy = r / a.kw, dx = r % a.kw;
        const int64_t ti = t_base + dt, yi = y_base + dy, xi = x_base + dx;
        if (ti >= 0 && ti < a.T && yi >= 0 && yi < a.H && xi >= 0 && xi < a.W)
          val = to_f32<T>(x[(((nb * a.Cin + ci) * a.T + ti) * a.H + yi) * a.W + xi]);
      }
      Bs[kk][bn] = val;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kBK; ++kk) {
      float av[4], bv[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) av[i] = As[kk][ty * 4 + i];
#pragma unroll
      for (int j = 0; j < 4; ++j) bv[j] = Bs[kk][tx * 4 + j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
    __syncthreads();
  }

#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t co = m0 + ty * 4 + i;
    if (co >= a.Cout) continue;
    const float bias = a.bias ? load_elem(a.bias, a.bias_dt, co) : 0.0f;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t n = n0 + tx * 4 + j;
      if (n >= N) continue;
      const int64_t b = n / S_out, sp = n % S_out;
      y[(b * a.Cout + co) * S_out + sp] = from_f32<T>(acc[i][j] + bias);
    }
  }
}

}  // namespace

void launch_conv3d_implicit_gemm(const ConvArgs& a, cudaStream_t s) {
  const int64_t N = a.B * a.To * a.Ho * a.Wo;
  if (N == 0 || a.Cout == 0) return;
  const int64_t gx = (N + kBN - 1) / kBN, gy = (a.Cout + kBM - 1) / kBM;
  const dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(gy));
  switch (a.dt) {
    case Elem::F32: conv_implicit_gemm_kernel<float><<<grid, kThreads, 0, s>>>(a); break;
    case Elem::BF16: conv_implicit_gemm_kernel<__nv_bfloat16><<<grid, kThreads, 0, s>>>(a); break;
    case Elem::F16: conv_implicit_gemm_kernel<__half><<<grid, kThreads, 0, s>>>(a); break;
  }
  T2V_CUDA_LAUNCH_CHECK("conv_implicit_gemm_kernel");
}

}  // namespace t2v::ops::cuda
