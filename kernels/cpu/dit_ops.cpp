// The CPU entries of kernels/dit_ops.h for any patch size: direct index loops
// over F32 (ops::patchify_3d/unpatchify_3d check the arguments and take the
// two-permute path for pt = 1 before reaching these). Bit-exact copies.
// Test: tests/diffusion/, tests/device/.
#include "kernels/cpu/backend_cpu.h"

namespace t2v::ops::cpu {
namespace {

Tensor patchify_3d(const Tensor& x, const std::array<int64_t, 3>& patch) {
  const auto [pt, ph, pw] = patch;
  const int64_t B = x.size(0), C = x.size(1), T = x.size(2), H = x.size(3), W = x.size(4);
  const int64_t Tp = T / pt, Hp = H / ph, Wp = W / pw, N = Tp * Hp * Wp, K = C * pt * ph * pw;
  Tensor out = Tensor::empty(Shape{B, N, K}, DType::F32);
  const float* src = x.data<float>();
  float* dst = out.data<float>();
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t n = 0; n < N; ++n) {
      const int64_t f = n / (Hp * Wp), y = (n / Wp) % Hp, xx = n % Wp;
      float* row = dst + (b * N + n) * K;
      for (int64_t c = 0; c < C; ++c)
        for (int64_t kt = 0; kt < pt; ++kt)
          for (int64_t ky = 0; ky < ph; ++ky)
            for (int64_t kx = 0; kx < pw; ++kx)
              row[((c * pt + kt) * ph + ky) * pw + kx] =
                  src[(((b * C + c) * T + f * pt + kt) * H + y * ph + ky) * W + xx * pw + kx];
    }
  return out;
}

Tensor unpatchify_3d(const Tensor& y, const std::array<int64_t, 3>& grid, const std::array<int64_t, 3>& patch,
                     int64_t channels) {
  const auto [Tp, Hp, Wp] = grid;
  const auto [pt, ph, pw] = patch;
  const int64_t C = channels, N = Tp * Hp * Wp, K = pt * ph * pw * C;
  const int64_t B = y.size(0), T = Tp * pt, H = Hp * ph, W = Wp * pw;
  Tensor out = Tensor::empty(Shape{B, C, T, H, W}, DType::F32);
  const float* src = y.data<float>();
  float* dst = out.data<float>();
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t n = 0; n < N; ++n) {
      const int64_t f = n / (Hp * Wp), yy = (n / Wp) % Hp, xx = n % Wp;
      const float* row = src + (b * N + n) * K;
      for (int64_t kt = 0; kt < pt; ++kt)
        for (int64_t ky = 0; ky < ph; ++ky)
          for (int64_t kx = 0; kx < pw; ++kx)
            for (int64_t c = 0; c < C; ++c)
              dst[(((b * C + c) * T + f * pt + kt) * H + yy * ph + ky) * W + xx * pw + kx] =
                  row[((kt * ph + ky) * pw + kx) * C + c];
    }
  return out;
}

}  // namespace

void register_dit(Backend& b) {
  b.patchify_3d = patchify_3d;
  b.unpatchify_3d = unpatchify_3d;
}

}  // namespace t2v::ops::cpu
