// The timestep conditioning of one DiT forward (docs/wan.md §2.4, §8.2): the
// sinusoid, the time MLP (e) and the time projection (e0).
//
// Wan2.1 and the Wan2.2 A14B experts take one timestep per sample: e [B, dim],
// e0 [B, 6, dim], broadcast over every token. Wan2.2 TI2V-5B takes one per token
// (timestep [B, N] in frame, row, column order; image-to-video gives the tokens of
// latent frame 0 the timestep 0): e [B, N, dim], e0 [B, N, 6, dim]. Those are
// computed here for the distinct values only and, where every token of a latent
// frame shares its value (always, in TI2V), kept per frame: e [B, G, dim] and
// e0 [B, G, 6, dim] for G frames of N/G tokens each, which the blocks broadcast
// over the tokens of each frame — the same numbers as the per-token tensors
// without their N x 6 x dim floats.
//
// Symbols: B batch, N tokens, G token groups, dim hidden size.
#pragma once

#include <cstdint>
#include <string>

#include "core/tensor.h"
#include "diffusion/wan_dit_config.h"
#include "diffusion/wan_dit_weights.h"

namespace t2v {

struct WanTimeConditioning {
  // groups == 0: one timestep per sample, e [B, dim], e0 [B, 6, dim] (the Wan2.1 path).
  // groups > 0:  e [B, G, dim], e0 [B, G, 6, dim]; group g holds tokens [g*N/G, (g+1)*N/G).
  int64_t groups = 0;
  Tensor e;
  Tensor e0;
};

// timestep: [B] (one per sample) or [B, N] (one per token; N = the token count of the
// forward, `tokens_per_frame` tokens per latent frame); any float dtype and device. A
// per-token timestep whose values are equal within every sample takes the per-sample path.
// Error(65) naming the shape when it is neither. fp32 on `dev` (docs/wan.md §2.10).
WanTimeConditioning wan_time_conditioning(const WanDiTWeights& w, const WanDiTConfig& c, const Tensor& timestep,
                                          int64_t batch, int64_t tokens, int64_t tokens_per_frame, Device dev);

// For dumps and tests: e or e0 of a conditioning expanded to every token,
// [B, N, dim] / [B, N, 6, dim] (CPU, F32). The per-sample path repeats each row.
Tensor wan_time_per_token(const Tensor& t, int64_t groups, int64_t tokens);

}  // namespace t2v
