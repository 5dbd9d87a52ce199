// kernels/dit_ops.h: pure index shuffles (no arithmetic), so results are
// bit-exact copies of the inputs. pt = 1: two permutes of 5-D views (any
// backend); otherwise direct loops (CPU, F32).
#include "kernels/dit_ops.h"

#include <fmt/format.h>

#include "core/error.h"
#include "kernels/ops.h"

namespace t2v::ops {
namespace {

void require_cpu_f32(const char* op, const Tensor& t) {
  if (t.device() != Device::CPU)
    throw Error(kExitUnavailable, fmt::format("{}: not yet implemented on CUDA ({})", op, t.str()),
                "run the DiT on the CPU until the CUDA kernel exists");
  if (t.dtype() != DType::F32)
    throw Error(kExitSoftware, fmt::format("{}: input is {}, the CPU op takes F32", op, t.str()),
                "cast with ops::cast(x, DType::F32) first");
}

}  // namespace

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
  if (pt == 1) {
    // [B, C, T*Hp, ph, W] -> [B, T*Hp, C, ph, W]; then rows (b, f, y) as [C*ph, Wp, pw]
    // -> [Wp, C*ph, pw]: token (f, y, x) holds (c, ky, kx), channel slowest.
    Tensor a = ops::permute(x.reshape(Shape{B, C, T * Hp, ph, W}), {0, 2, 1, 3, 4});
    Tensor b = ops::permute(a.reshape(Shape{B * T * Hp, C * ph, Wp, pw}), {0, 2, 1, 3});
    return b.reshape(Shape{B, N, K});
  }
  require_cpu_f32("patchify_3d", x);
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
  if (!y.defined()) throw Error(kExitSoftware, "unpatchify_3d: undefined input");
  const auto [Tp, Hp, Wp] = grid;
  const auto [pt, ph, pw] = patch;
  const int64_t C = channels, N = Tp * Hp * Wp, K = pt * ph * pw * C;
  if (y.dim() != 3 || y.size(1) != N || y.size(2) != K)
    throw Error(kExitSoftware,
                fmt::format("unpatchify_3d: input {} is not [B, {}, {}] for grid {}x{}x{}, patch {}x{}x{}, {} channels",
                            y.shape().str(), N, K, Tp, Hp, Wp, pt, ph, pw, C));
  const int64_t B = y.size(0), T = Tp * pt, H = Hp * ph, W = Wp * pw;
  if (pt == 1) {
    // Rows (b, f, y): [Wp, ph, pw, C] -> [C, ph, Wp, pw]; then [B, T*Hp, C, ph*W] ->
    // [B, C, T*Hp, ph*W], which is [B, C, T, H, W] in memory.
    Tensor a = ops::permute(y.reshape(Shape{B * Tp * Hp, Wp, ph, pw, C}), {0, 4, 2, 1, 3});
    Tensor b = ops::permute(a.reshape(Shape{B, Tp * Hp, C, ph * W}), {0, 2, 1, 3});
    return b.reshape(Shape{B, C, T, H, W});
  }
  require_cpu_f32("unpatchify_3d", y);
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

}  // namespace t2v::ops
