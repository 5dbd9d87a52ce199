// Wan 3D rotary embedding (docs/wan.md §2.8): interleaved (GPT-J) pairs rotated
// by a (cos, sin) table (built by diffusion/wan_dit_geometry.cpp); the rotation
// runs in double and rounds once to fp32, like the reference's complex128
// multiply.
// Test: tests/kernels/test_rope.cpp.
#include <cmath>

#include "kernels/cpu/backend_cpu.h"

namespace t2v::ops::cpu {

namespace {

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

}  // namespace

void register_rope(Backend& b) { b.rope_3d = rope_3d; }

}  // namespace t2v::ops::cpu
