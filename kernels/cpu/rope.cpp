// Wan 3D rotary embedding (docs/wan.md §2.8): interleaved (GPT-J) pairs, the head
// dimension split into a frame part, a row part and a column part. Angles are
// formed in fp64 exactly as the reference rope_params does
// (pos · (1 / theta^(2j / d_axis))); the rotation runs in double and rounds
// once to fp32, like the reference's complex128 multiply.
// Test: tests/kernels/test_rope.cpp.
#include <cmath>

#include "kernels/cpu/ops_cpu.h"

namespace t2v::ops::cpu {

Tensor rope_3d_table(int64_t T, int64_t H, int64_t W, int64_t head_dim, double theta) {
  const int64_t D = head_dim, half = D / 2;
  const int64_t d_h = 2 * (D / 6), d_w = d_h, d_t = D - 2 * d_h;  // real dims per axis (44, 42, 42 for D = 128)
  const int64_t p_t = d_t / 2, p_h = d_h / 2;                      // pairs per axis (22, 21, 21)
  // omega per pair, each axis with its own dimension in the exponent.
  std::vector<double> omega(half);
  for (int64_t k = 0; k < half; ++k) {
    int64_t j = k, d = d_t;
    if (k >= p_t + p_h) {
      j = k - p_t - p_h;
      d = d_w;
    } else if (k >= p_t) {
      j = k - p_t;
      d = d_h;
    }
    omega[k] = 1.0 / std::pow(theta, (double)(2 * j) / (double)d);
  }
  const int64_t N = T * H * W;
  Tensor table = Tensor::empty(Shape{N, half, 2}, DType::F32);
  float* tp = table.data<float>();
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const int64_t f = n / (H * W), y = (n / W) % H, x = n % W;
    float* row = tp + n * half * 2;
    for (int64_t k = 0; k < half; ++k) {
      const int64_t pos = k < p_t ? f : (k < p_t + p_h ? y : x);
      const double phi = (double)pos * omega[k];
      row[2 * k] = (float)std::cos(phi);
      row[2 * k + 1] = (float)std::sin(phi);
    }
  }
  return table;
}

Tensor rope_3d(const Tensor& x, const Tensor& table) {
  const int64_t B = x.size(0), N = x.size(1), NH = x.size(2), D = x.size(3), half = D / 2;
  Tensor y = Tensor::empty(x.shape(), DType::F32);
  const float* xp = x.data<float>();
  const float* tp = table.data<float>();
  float* yp = y.data<float>();
#pragma omp parallel for schedule(static)
  for (int64_t bn = 0; bn < B * N; ++bn) {
    const float* cs = tp + (bn % N) * half * 2;
    for (int64_t h = 0; h < NH; ++h) {
      const float* xr = xp + (bn * NH + h) * D;
      float* yr = yp + (bn * NH + h) * D;
      for (int64_t k = 0; k < half; ++k) {
        const double a = xr[2 * k], b = xr[2 * k + 1], c = cs[2 * k], s = cs[2 * k + 1];
        yr[2 * k] = (float)(a * c - b * s);
        yr[2 * k + 1] = (float)(a * s + b * c);
      }
    }
  }
  return y;
}

}  // namespace t2v::ops::cpu
