// kernels/dit_ops.h: argument checks; patches with pt = 1 (every Wan model) are
// two ops::permute calls on 5-D views, so they run on every backend that has
// permute; other patch sizes call the backend's patchify_3d/unpatchify_3d
// entries (the CPU's are direct index loops). Pure data movement: results are
// bit-exact copies of the inputs.
#include "kernels/dit_ops.h"

#include <fmt/format.h>

#include "core/error.h"
#include "kernels/backend.h"
#include "kernels/ops.h"

namespace t2v::ops {

Tensor patchify_3d(const Tensor& x, const std::array<int64_t, 3>& patch) {
  if (!x.defined()) throw Error(kExitSoftware, "patchify_3d: undefined input");
  const auto [pt, ph, pw] = patch;
  if (x.dim() != 5 || pt <= 0 || ph <= 0 || pw <= 0 || x.size(2) % pt || x.size(3) % ph || x.size(4) % pw)
    throw Error(kExitSoftware,
                fmt::format("patchify_3d: input {} is not [B, C, T, H, W] with T, H, W multiples of the patch {}x{}x{}",
                            x.shape().str(), pt, ph, pw),
                "latent height and width must be even (video height and width multiples of 16)");
  const int64_t B = x.size(0), C = x.size(1), T = x.size(2), H = x.size(3), W = x.size(4);
  const int64_t Hp = H / ph, Wp = W / pw, N = (T / pt) * Hp * Wp, K = C * pt * ph * pw;
  if (pt == 1) {
    // [B, C, T*Hp, ph, W] -> [B, T*Hp, C, ph, W]; then rows (b, f, y) as [C*ph, Wp, pw]
    // -> [Wp, C*ph, pw]: token (f, y, x) holds (c, ky, kx), channel slowest.
    Tensor a = ops::permute(x.reshape(Shape{B, C, T * Hp, ph, W}), {0, 2, 1, 3, 4});
    Tensor b = ops::permute(a.reshape(Shape{B * T * Hp, C * ph, Wp, pw}), {0, 2, 1, 3});
    return b.reshape(Shape{B, N, K});
  }
  if (x.device() == Device::CPU && x.dtype() != DType::F32)
    throw Error(kExitSoftware, fmt::format("patchify_3d: input is {}, the CPU op takes F32", x.str()),
                "cast with ops::cast(x, DType::F32) first");
  const Backend& be = backend(x.device());
  if (!be.patchify_3d) unsupported("patchify_3d", be);
  return be.patchify_3d(x, patch);
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
  if (y.device() == Device::CPU && y.dtype() != DType::F32)
    throw Error(kExitSoftware, fmt::format("unpatchify_3d: input is {}, the CPU op takes F32", y.str()),
                "cast with ops::cast(x, DType::F32) first");
  const Backend& be = backend(y.device());
  if (!be.unpatchify_3d) unsupported("unpatchify_3d", be);
  return be.unpatchify_3d(y, grid, patch, channels);
}

}  // namespace t2v::ops
