// Normalisations and softmax, fp32 in and out, double accumulation (two-pass
// mean/variance) so results sit within ~1e-6 relative of PyTorch's CPU kernels.
// Test: tests/kernels/test_norm.cpp.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/ops_cpu.h"

namespace t2v::ops::cpu {

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps) {
  const int64_t C = x.size(-1), rows = C == 0 ? 0 : x.numel() / C;
  Tensor y = Tensor::empty(x.shape(), DType::F32);
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  const float* wp = weight.defined() ? weight.data<float>() : nullptr;
  const float* bp = bias.defined() ? bias.data<float>() : nullptr;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = xp + r * C;
    float* yr = yp + r * C;
    double sum = 0.0;
    for (int64_t c = 0; c < C; ++c) sum += xr[c];
    const double mean = sum / (double)C;
    double ss = 0.0;
    for (int64_t c = 0; c < C; ++c) {
      const double d = xr[c] - mean;
      ss += d * d;
    }
    const double rstd = 1.0 / std::sqrt(ss / (double)C + (double)eps);  // biased variance, as PyTorch
    for (int64_t c = 0; c < C; ++c) {
      double v = (xr[c] - mean) * rstd;
      if (wp) v *= wp[c];
      if (bp) v += bp[c];
      yr[c] = (float)v;
    }
  }
  return y;
}

Tensor rms_norm(const Tensor& x, const Tensor& weight, float eps) {
  const int64_t C = x.size(-1), rows = C == 0 ? 0 : x.numel() / C;
  Tensor y = Tensor::empty(x.shape(), DType::F32);
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  const float* wp = weight.defined() ? weight.data<float>() : nullptr;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = xp + r * C;
    float* yr = yp + r * C;
    double ss = 0.0;
    for (int64_t c = 0; c < C; ++c) ss += (double)xr[c] * xr[c];
    const double rinv = 1.0 / std::sqrt(ss / (double)C + (double)eps);
    // Normalised value rounded to fp32 first, then times the weight in fp32:
    // the order of both references (T5LayerNorm, Wan RMSNorm's type_as(x) * weight).
    for (int64_t c = 0; c < C; ++c) {
      const float v = (float)(xr[c] * rinv);
      yr[c] = wp ? v * wp[c] : v;
    }
  }
  return y;
}

Tensor rms_norm_channels(const Tensor& x, const Tensor& gamma, float eps) {
  // [B, C, S] with S = the product of the trailing dims.
  const int64_t B = x.size(0), C = x.size(1);
  const int64_t S = (B * C == 0) ? 0 : x.numel() / (B * C);
  Tensor y = Tensor::empty(x.shape(), DType::F32);
  const float* xp = x.data<float>();
  const float* gp = gamma.data<float>();
  float* yp = y.data<float>();
  const float root_c = (float)std::sqrt((double)C);  // F.normalize(x) * sqrt(C) * gamma, in that order
  constexpr int64_t kTile = 256;                     // spatial positions per task (norms kept in a small buffer)
  const int64_t tiles = (S + kTile - 1) / kTile;
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < B * tiles; ++t) {
    const int64_t b = t / tiles, s0 = (t % tiles) * kTile, ns = std::min(kTile, S - s0);
    double inv[kTile];
    double ss[kTile] = {};
    for (int64_t c = 0; c < C; ++c) {
      const float* xr = xp + (b * C + c) * S + s0;
      for (int64_t s = 0; s < ns; ++s) ss[s] += (double)xr[s] * xr[s];
    }
    for (int64_t s = 0; s < ns; ++s) inv[s] = std::max(std::sqrt(ss[s]), (double)eps);
    for (int64_t c = 0; c < C; ++c) {
      const float* xr = xp + (b * C + c) * S + s0;
      float* yr = yp + (b * C + c) * S + s0;
      for (int64_t s = 0; s < ns; ++s) yr[s] = (float)(xr[s] / inv[s]) * root_c * gp[c];
    }
  }
  return y;
}

Tensor softmax(const Tensor& x) {
  const int64_t C = x.size(-1), rows = C == 0 ? 0 : x.numel() / C;
  Tensor y = Tensor::empty(x.shape(), DType::F32);
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
#pragma omp parallel
  {
    std::vector<double> e(C);  // exp(x - max) of one row, per thread
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = xp + r * C;
      float* yr = yp + r * C;
      float mx = -INFINITY;
      for (int64_t c = 0; c < C; ++c) mx = std::max(mx, xr[c]);
      if (mx == -INFINITY) {  // every logit -inf: no finite softmax; zeros, as attention's masked rows
        std::fill(yr, yr + C, 0.0f);
        continue;
      }
      double sum = 0.0;
      for (int64_t c = 0; c < C; ++c) sum += (e[c] = std::exp((double)xr[c] - mx));
      const double inv = 1.0 / sum;
      for (int64_t c = 0; c < C; ++c) yr[c] = (float)(e[c] * inv);
    }
  }
  return y;
}

}  // namespace t2v::ops::cpu
