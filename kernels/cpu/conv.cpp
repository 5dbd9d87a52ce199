// conv3d / conv2d as im2col + sgemm, and nearest x2 upsampling.
// Work is cut into (batch, output frame, block of output rows) tasks, so the
// column buffers stay under kColumnBudget floats in all whatever the video size
// (a 3x3x3 conv over 384 channels has K = 10368 rows per output pixel). With
// enough tasks, each OpenMP thread runs whole tasks (its own im2col and a
// single-threaded GEMM); measured on 2 shared cores (Wan VAE decoder shapes),
// 96 channels at 256x256: 17% less CPU time than one multi-threaded GEMM per
// block, and less wall time for every shape, since no thread waits inside a
// GEMM for one the machine has descheduled (docs/PERFORMANCE.md). Otherwise the
// tasks run in turn with multi-threaded im2col and GEMMs.
// 1x1(x1) convs with stride 1 and no spatial padding skip im2col entirely.
// Test: tests/kernels/test_conv.cpp (naive double loops; causal padding equals
// an explicit zero-frame concat).
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/backend_cpu.h"

namespace t2v::ops::cpu {
namespace {

constexpr int64_t kColumnBudget = int64_t(8) << 20;  // 32 MiB of fp32 columns
constexpr int64_t kTaskColumnBudget = int64_t(2) << 20;  // at most 8 MiB per thread in the task-parallel path

// A 3-D convolution with independent front/back padding on every axis.
struct ConvGeometry {
  int64_t B, Cin, T, H, W;
  int64_t Cout, kt, kh, kw;
  int64_t st, sh, sw;
  int64_t pt0, pt1, ph0, ph1, pw0, pw1;
  int64_t To() const { return (T + pt0 + pt1 - kt) / st + 1; }
  int64_t Ho() const { return (H + ph0 + ph1 - kh) / sh + 1; }
  int64_t Wo() const { return (W + pw0 + pw1 - kw) / sw + 1; }
};

// Fills cols [K, nrows·Wo] for output frame `to`, output rows [oy0, oy0 + nrows).
void im2col_rows(const float* xb, const ConvGeometry& g, int64_t to, int64_t oy0, int64_t nrows, float* cols,
                 bool parallel) {
  const int64_t Wo = g.Wo(), K = g.Cin * g.kt * g.kh * g.kw, np = nrows * Wo;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t k = 0; k < K; ++k) {
    const int64_t dw = k % g.kw, dh = (k / g.kw) % g.kh, dt = (k / (g.kw * g.kh)) % g.kt, ci = k / (g.kw * g.kh * g.kt);
    float* dst = cols + k * np;
    const int64_t it = to * g.st - g.pt0 + dt;
    if (it < 0 || it >= g.T) {
      std::fill(dst, dst + np, 0.0f);
      continue;
    }
    const float* frame = xb + (ci * g.T + it) * g.H * g.W;
    // Output columns whose input column ix = ox·sw - pw0 + dw lies inside [0, W).
    const int64_t lo_num = g.pw0 - dw;
    const int64_t ox_lo = lo_num <= 0 ? 0 : std::min(Wo, (lo_num + g.sw - 1) / g.sw);
    const int64_t hi_num = g.W - 1 + g.pw0 - dw;  // ox·sw <= hi_num
    const int64_t ox_hi = hi_num < 0 ? 0 : std::min(Wo, hi_num / g.sw + 1);
    for (int64_t r = 0; r < nrows; ++r) {
      float* d = dst + r * Wo;
      const int64_t iy = (oy0 + r) * g.sh - g.ph0 + dh;
      if (iy < 0 || iy >= g.H || ox_hi <= ox_lo) {
        std::fill(d, d + Wo, 0.0f);
        continue;
      }
      const float* src = frame + iy * g.W;
      std::fill(d, d + ox_lo, 0.0f);
      if (g.sw == 1) {
        std::memcpy(d + ox_lo, src + ox_lo - g.pw0 + dw, sizeof(float) * (ox_hi - ox_lo));
      } else {
        for (int64_t ox = ox_lo; ox < ox_hi; ++ox) d[ox] = src[ox * g.sw - g.pw0 + dw];
      }
      std::fill(d + ox_hi, d + Wo, 0.0f);
    }
  }
}

// y [B, Cout, To, Ho, Wo] = conv(x [B, Cin, T, H, W], w [Cout, Cin, kt, kh, kw]) + bias.
Tensor conv_im2col(const Tensor& x, const Tensor& w, const Tensor& bias, const ConvGeometry& g) {
  const int64_t To = g.To(), Ho = g.Ho(), Wo = g.Wo(), P = Ho * Wo;
  Tensor y = Tensor::empty(Shape{g.B, g.Cout, To, Ho, Wo}, DType::F32);
  float* yp = y.data<float>();
  const float* xp = x.data<float>();
  const float* wp = w.data<float>();
  const int64_t planes = g.B * g.Cout * To;
  // Output starts as the bias (or zero); the GEMMs accumulate onto it (beta = 1).
  const float* bp = bias.defined() ? bias.data<float>() : nullptr;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < planes; ++i) std::fill(yp + i * P, yp + (i + 1) * P, bp ? bp[(i / To) % g.Cout] : 0.0f);
  const int64_t K = g.Cin * g.kt * g.kh * g.kw;
  if (P == 0 || K == 0) return y;

  const bool pointwise = g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph0 == 0 && g.ph1 == 0 &&
                         g.pw0 == 0 && g.pw1 == 0 && g.kt == 1;
  const int threads = omp_get_max_threads();
  const int64_t task_budget = std::min(kTaskColumnBudget, kColumnBudget / std::max(1, threads));
  const int64_t rows_task = std::clamp<int64_t>(task_budget / std::max<int64_t>(1, K * Wo), 1, Ho);
  const int64_t row_blocks = (Ho + rows_task - 1) / rows_task, tasks = g.B * To * row_blocks;
  if (!pointwise && threads > 1 && tasks >= threads) {
    // Whole tasks per thread, single-threaded GEMMs (restored afterwards).
    const int blas_threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
#pragma omp parallel
    {
      std::vector<float> tcols(K * rows_task * Wo);
#pragma omp for schedule(dynamic, 1)
      for (int64_t t = 0; t < tasks; ++t) {
        const int64_t b = t / (To * row_blocks), to = (t / row_blocks) % To, oy0 = (t % row_blocks) * rows_task;
        if (to * g.st - g.pt0 + g.kt <= 0 || to * g.st - g.pt0 >= g.T) continue;
        const float* xb = xp + b * g.Cin * g.T * g.H * g.W;
        float* yf = yp + (b * g.Cout * To + to) * P;
        const int64_t nrows = std::min(rows_task, Ho - oy0), np = nrows * Wo;
        im2col_rows(xb, g, to, oy0, nrows, tcols.data(), /*parallel=*/false);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)g.Cout, (int)np, (int)K, 1.0f, wp, (int)K,
                    tcols.data(), (int)np, 1.0f, yf + oy0 * Wo, (int)(To * P));
      }
    }
    openblas_set_num_threads(blas_threads);
    return y;
  }
  const int64_t rows_per_block = std::clamp<int64_t>(kColumnBudget / std::max<int64_t>(1, K * Wo), 1, Ho);
  std::vector<float> cols(pointwise ? 0 : K * rows_per_block * Wo);
  for (int64_t b = 0; b < g.B; ++b) {
    const float* xb = xp + b * g.Cin * g.T * g.H * g.W;
    for (int64_t to = 0; to < To; ++to) {
      float* yf = yp + (b * g.Cout * To + to) * P;  // channel co at yf + co·To·P
      if (pointwise) {
        // [Cout, Cin] · x[b, :, it] with the input frame read in place (rows T·H·W apart).
        const int64_t it = to * g.st - g.pt0;
        if (it < 0 || it >= g.T) continue;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)g.Cout, (int)P, (int)K, 1.0f, wp, (int)K,
                    xb + it * P, (int)(g.T * P), 1.0f, yf, (int)(To * P));
        continue;
      }
      // Skip frames whose whole temporal window is padding (their output is the bias).
      if (to * g.st - g.pt0 + g.kt <= 0 || to * g.st - g.pt0 >= g.T) continue;
      for (int64_t oy0 = 0; oy0 < Ho; oy0 += rows_per_block) {
        const int64_t nrows = std::min(rows_per_block, Ho - oy0), np = nrows * Wo;
        im2col_rows(xb, g, to, oy0, nrows, cols.data(), /*parallel=*/true);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)g.Cout, (int)np, (int)K, 1.0f, wp, (int)K,
                    cols.data(), (int)np, 1.0f, yf + oy0 * Wo, (int)(To * P));
      }
    }
  }
  return y;
}

Tensor conv3d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv3dParams& p) {
  const ConvGeometry g{x.size(0), x.size(1), x.size(2), x.size(3), x.size(4), w.size(0), w.size(2), w.size(3),
                       w.size(4), p.stride[0], p.stride[1], p.stride[2], p.pad_t_front, p.pad_t_back, p.pad_h,
                       p.pad_h, p.pad_w, p.pad_w};
  return conv_im2col(x, w, bias, g);
}

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p) {
  const int64_t B = x.size(0), Cin = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t Cout = w.size(0), kh = w.size(2), kw = w.size(3);
  const ConvGeometry g{B, Cin, 1, H, W, Cout, 1, kh, kw, 1, p.stride[0], p.stride[1], 0, 0, p.pad_top,
                       p.pad_bottom, p.pad_left, p.pad_right};
  const Tensor y = conv_im2col(x.reshape(Shape{B, Cin, 1, H, W}), w.reshape(Shape{Cout, Cin, 1, kh, kw}), bias, g);
  return y.reshape(Shape{B, Cout, g.Ho(), g.Wo()});
}

Tensor upsample_nearest2x(const Tensor& x) {
  const int nd = x.dim();
  const int64_t H = x.size(-2), W = x.size(-1);
  const int64_t planes = (H * W == 0) ? 0 : x.numel() / (H * W);
  std::vector<int64_t> dims = x.shape().vec();
  dims[nd - 2] = 2 * H;
  dims[nd - 1] = 2 * W;
  Tensor y = Tensor::empty(Shape(dims), DType::F32);
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < planes * H; ++r) {  // one input row -> two output rows
    const float* s = xp + r * W;
    float* d = yp + r * 4 * W;
    for (int64_t i = 0; i < W; ++i) d[2 * i] = d[2 * i + 1] = s[i];
    std::memcpy(d + 2 * W, d, sizeof(float) * 2 * W);
  }
  return y;
}

}  // namespace

void register_conv(Backend& b) {
  b.conv3d = conv3d;
  b.conv2d = conv2d;
  b.upsample_nearest2x = upsample_nearest2x;
}

}  // namespace t2v::ops::cpu
