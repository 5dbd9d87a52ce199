// Ops specific to the Wan DiT: gathering non-overlapping 3D patches into token
// rows (the patch embedding then is one GEMM) and scattering the head's token
// rows back into a latent. Pure data movement (bit-exact).
//
// Implementation (kernels/dit_ops.cpp): patches with pt = 1 (every Wan model)
// are two ops::permute calls on 5-D views, so they run on every backend that
// has permute; other patch sizes call the backend table's patchify_3d /
// unpatchify_3d entries (CPU and test device; CUDA answers Error(69) "not
// supported on device cuda"). Tested in tests/diffusion/ and tests/device/.
#pragma once

#include <array>
#include <cstdint>

#include "core/tensor.h"

namespace t2v::ops {

// x [B, C, T, H, W] -> [B, N, C*pt*ph*pw], N = (T/pt)*(H/ph)*(W/pw), token
// n = (f*H' + y)*W' + x (width fastest). Row element index ((c*pt + kt)*ph + ky)*pw + kx:
// channel slowest, the flattening of a Conv3d weight [dim, C, pt, ph, pw].
// T, H, W must be multiples of the patch (Error 70 otherwise).
Tensor patchify_3d(const Tensor& x, const std::array<int64_t, 3>& patch);

// The head's inverse: y [B, N, pt*ph*pw*C] with element index ((kt*ph + ky)*pw + kx)*C + c
// (channel fastest, docs/wan.md §2.9) -> [B, C, T'*pt, H'*ph, W'*pw] for the token grid
// (T', H', W') = grid.
Tensor unpatchify_3d(const Tensor& y, const std::array<int64_t, 3>& grid, const std::array<int64_t, 3>& patch,
                     int64_t channels);

}  // namespace t2v::ops
