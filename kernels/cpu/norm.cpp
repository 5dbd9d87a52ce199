// Normalisations and softmax, fp32 in and out, double accumulation (two-pass
// mean/variance) so results sit within ~1e-6 relative of PyTorch's CPU kernels.
// layer_norm_modulate rounds the normalised row to fp32 and then applies
// modulate's fp32 arithmetic, so it equals modulate(layer_norm(x)) bit for bit
// without the intermediate tensor.
// Test: tests/kernels/test_norm.cpp, tests/kernels/test_fused.cpp.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/backend_cpu.h"

namespace t2v::ops::cpu {
namespace {

// Element strides of `t` broadcast (right-aligned) to `out`: 0 on broadcast dims.
void broadcast_strides(const Shape& t, const Shape& out, int64_t* st) {
  int64_t s = 1;
  for (int i = out.ndim() - 1; i >= 0; --i) {
    const int it = t.ndim() - out.ndim() + i;
    const int64_t d = it >= 0 ? t[it] : 1;
    st[i] = (d == 1 && out[i] != 1) || it < 0 ? 0 : s;
    s *= d;
  }
}

// layer_norm over the last dim C, then (with shift/scale) modulate's
// y * (1 + scale) + shift in fp32, shift/scale broadcast to x.
Tensor layer_norm_impl(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps, const Tensor& shift,
                       const Tensor& scale_t) {
  const int64_t C = x.size(-1), rows = C == 0 ? 0 : x.numel() / C;
  Tensor y = Tensor::empty(x.shape(), DType::F32);
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  const float* wp = weight.defined() ? weight.data<float>() : nullptr;
  const float* bp = bias.defined() ? bias.data<float>() : nullptr;
  const bool mod = shift.defined();
  const float* hp = mod ? shift.data<float>() : nullptr;
  const float* cp = mod ? scale_t.data<float>() : nullptr;
  const int nd = x.dim();
  int64_t hs[kMaxDims] = {}, cs[kMaxDims] = {};
  if (mod) {
    broadcast_strides(shift.shape(), x.shape(), hs);
    broadcast_strides(scale_t.shape(), x.shape(), cs);
  }
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
    if (!mod) continue;
    int64_t ho = 0, co = 0, rem = r;  // offsets of row r in shift/scale
    for (int i = nd - 2; i >= 0; --i) {
      const int64_t idx = rem % x.size(i);
      rem /= x.size(i);
      ho += idx * hs[i];
      co += idx * cs[i];
    }
    const int64_t hstep = hs[nd - 1], cstep = cs[nd - 1];
    for (int64_t c = 0; c < C; ++c) {
      const float s1 = 1.0f + cp[co + c * cstep];  // rounded like PyTorch's (1 + scale) temporary
      const float ys = yr[c] * s1;
      yr[c] = ys + hp[ho + c * hstep];
    }
  }
  return y;
}

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps) {
  return layer_norm_impl(x, weight, bias, eps, Tensor(), Tensor());
}

Tensor layer_norm_modulate(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps, const Tensor& shift,
                           const Tensor& scale_t) {
  return layer_norm_impl(x, weight, bias, eps, shift, scale_t);
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

}  // namespace

void register_norm(Backend& b) {
  b.layer_norm = layer_norm;
  b.layer_norm_modulate = layer_norm_modulate;
  b.rms_norm = rms_norm;
  b.rms_norm_channels = rms_norm_channels;
  b.softmax = softmax;
}

}  // namespace t2v::ops::cpu
