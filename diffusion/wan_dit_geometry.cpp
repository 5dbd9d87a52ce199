// Patches as reshape views and permutes, and the RoPE table on the host
// (wan_dit_geometry.h). Tests: tests/diffusion/test_dit_geometry.cpp.
#include "diffusion/wan_dit_geometry.h"

#include <cmath>
#include <vector>

#include <fmt/format.h>

#include "core/error.h"
#include "kernels/ops.h"

namespace t2v {

Tensor patchify_3d(const Tensor& x, const std::array<int64_t, 3>& patch) {
  if (!x.defined()) throw Error(kExitSoftware, "patchify_3d: undefined input");
  const auto [pt, ph, pw] = patch;
  if (x.dim() != 5 || pt <= 0 || ph <= 0 || pw <= 0 || x.size(2) % pt || x.size(3) % ph || x.size(4) % pw)
    throw Error(kExitSoftware,
                fmt::format("patchify_3d: input {} is not [B, C, T, H, W] with T, H, W multiples of the patch {}x{}x{}",
                            x.shape().str(), pt, ph, pw),
                "latent height and width must be even (video height and width multiples of 16)");
  const int64_t B = x.size(0), C = x.size(1), T = x.size(2), H = x.size(3), W = x.size(4);
  const int64_t Tp = T / pt, Hp = H / ph, Wp = W / pw, N = Tp * Hp * Wp, K = C * pt * ph * pw;
  // Memory order (b, c, tp, kt, hp, ky, wp, kx) -> (b, tp, hp, wp, c, kt, ky, kx), at most 5-D at a time.
  // 1. [B, C, Tp*pt*Hp, ph*W] -> (b, tp kt hp, c, ky wp kx)
  Tensor a = ops::permute(x.reshape(Shape{B, C, T * Hp, ph * W}), {0, 2, 1, 3});
  // 2. rows (b, tp, kt, hp): [C, ph, Wp, pw] -> [Wp, C, ph, pw]
  Tensor b = ops::permute(a.reshape(Shape{B * T * Hp, C, ph, Wp, pw}), {0, 3, 1, 2, 4});
  if (pt == 1) return b.reshape(Shape{B, N, K});
  // 3. rows (b, tp): [pt, Hp*Wp, C, ph*pw] -> [Hp*Wp, C, pt, ph*pw]
  Tensor c = ops::permute(b.reshape(Shape{B * Tp, pt, Hp * Wp, C, ph * pw}), {0, 2, 3, 1, 4});
  return c.reshape(Shape{B, N, K});
}

Tensor unpatchify_3d(const Tensor& y, const std::array<int64_t, 3>& grid, const std::array<int64_t, 3>& patch,
                     int64_t channels) {
  if (!y.defined()) throw Error(kExitSoftware, "unpatchify_3d: undefined input");
  const auto [Tp, Hp, Wp] = grid;
  const auto [pt, ph, pw] = patch;
  const int64_t C = channels, N = Tp * Hp * Wp, K = pt * ph * pw * C;
  if (Tp <= 0 || Hp <= 0 || Wp <= 0 || pt <= 0 || ph <= 0 || pw <= 0 || C <= 0 || y.dim() != 3 || y.size(1) != N ||
      y.size(2) != K)
    throw Error(kExitSoftware,
                fmt::format("unpatchify_3d: input {} is not [B, {}, {}] for grid {}x{}x{}, patch {}x{}x{}, {} channels",
                            y.shape().str(), N, K, Tp, Hp, Wp, pt, ph, pw, C));
  const int64_t B = y.size(0), T = Tp * pt, H = Hp * ph, W = Wp * pw;
  // Memory order (b, tp, hp, wp, kt, ky, kx, c) -> (b, c, tp, kt, hp, ky, wp, kx).
  Tensor a = y;
  // 1. rows (b, tp): [Hp*Wp, pt, ph*pw*C] -> [pt, Hp*Wp, ph*pw*C]
  if (pt > 1) a = ops::permute(y.reshape(Shape{B * Tp, Hp * Wp, pt, ph * pw * C}), {0, 2, 1, 3});
  // 2. rows (b, tp, kt, hp): [Wp, ph, pw, C] -> [C, ph, Wp, pw]
  Tensor b = ops::permute(a.reshape(Shape{B * T * Hp, Wp, ph, pw, C}), {0, 4, 2, 1, 3});
  // 3. [B, T*Hp, C, ph*W] -> [B, C, T*Hp, ph*W], which is [B, C, T, H, W] in memory.
  Tensor c = ops::permute(b.reshape(Shape{B, T * Hp, C, ph * W}), {0, 2, 1, 3});
  return c.reshape(Shape{B, C, T, H, W});
}

Tensor rope_3d_table(int64_t T, int64_t H, int64_t W, int64_t head_dim, double theta) {
  if (T < 0 || H < 0 || W < 0 || head_dim < 2 || head_dim % 2 != 0 || !(theta > 0.0))
    throw Error(kExitSoftware,
                fmt::format("rope_3d_table: grid {}x{}x{}, head_dim {}, theta {} (need a non-negative grid, an even "
                            "head_dim >= 2 and theta > 0)",
                            T, H, W, head_dim, theta));
  const int64_t D = head_dim, half = D / 2;
  const int64_t d_h = 2 * (D / 6), d_w = d_h, d_t = D - 2 * d_h;  // real dims per axis (44, 42, 42 for D = 128)
  const int64_t p_t = d_t / 2, p_h = d_h / 2;                      // pairs per axis (22, 21, 21)
  // omega per pair, each axis with its own dimension in the exponent (the reference's
  // pos · (1 / theta^(2j / d_axis)) in fp64).
  std::vector<double> omega(static_cast<size_t>(half));
  for (int64_t k = 0; k < half; ++k) {
    int64_t j = k, d = d_t;
    if (k >= p_t + p_h) {
      j = k - p_t - p_h;
      d = d_w;
    } else if (k >= p_t) {
      j = k - p_t;
      d = d_h;
    }
    omega[static_cast<size_t>(k)] = 1.0 / std::pow(theta, static_cast<double>(2 * j) / static_cast<double>(d));
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
      const double phi = static_cast<double>(pos) * omega[static_cast<size_t>(k)];
      row[2 * k] = static_cast<float>(std::cos(phi));
      row[2 * k + 1] = static_cast<float>(std::sin(phi));
    }
  }
  return table;
}

}  // namespace t2v
