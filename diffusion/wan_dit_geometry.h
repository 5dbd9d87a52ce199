// The DiT's token geometry (docs/wan.md §2.3, §2.8, §2.9): gathering
// non-overlapping 3D patches of a latent into token rows (the patch embedding
// then is one GEMM), scattering the head's token rows back into a latent, and
// the host-built 3D RoPE table the rotation op (ops::rope_3d) reads.
//
// The patch functions are compositions of reshape views and ops::permute, so
// they run on every backend that has permute and are bit-exact copies.
#pragma once

#include <array>
#include <cstdint>

#include "core/tensor.h"

namespace t2v {

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

// Wan 3D RoPE table for a T x H x W token grid (token n = (f*H + y)*W + x) and head
// dim D: [N, D/2, 2] F32 on the CPU holding (cos, sin) per complex pair. Pairs
// [0, d_t/2) rotate by frame, then d_h/2 by row, then d_w/2 by column, with
// d_t = D - 4*(D/6), d_h = d_w = 2*(D/6), omega_j = theta^(-2j/d_axis); angles in
// fp64 as the reference's rope_params (docs/wan.md §2.8). Callers move it to their
// device once per forward. Error 70 for a negative grid, an odd head_dim or theta <= 0.
Tensor rope_3d_table(int64_t T, int64_t H, int64_t W, int64_t head_dim, double theta = 10000.0);

}  // namespace t2v
