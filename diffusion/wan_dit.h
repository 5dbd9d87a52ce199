// The Wan2.1 diffusion transformer (WanModel / diffusers WanTransformer3DModel),
// docs/wan.md §2: patch embedding, [cos, sin] timestep embedding, text MLP on 512
// zero-padded context rows, blocks (modulated self-attention with q/k RMSNorm and
// 3D RoPE, cross-attention, modulated FFN), modulated head, unpatchify.
//
// Symbols: B batch, C latent channels, T latent frames, H/W latent height/width,
// N video tokens, L context rows (text_len = 512 after padding), NH heads, D head dim.
#pragma once

#include <functional>
#include <string>

#include "core/tensor.h"
#include "diffusion/wan_dit_config.h"
#include "diffusion/wan_dit_weights.h"

namespace t2v {

// Receives named intermediates during a forward ("patch_embedding",
// "time_embedding", "time_projection", "text_embedding",
// "blocks.{i}.self_attn.out", "blocks.{i}.cross_attn.out", "blocks.{i}.ffn.out",
// "blocks.{i}.out", "head.out", "sample"); tensors are on the model's device.
using DumpHook = std::function<void(const std::string& name, const Tensor& t)>;

class WanDiT {
 public:
  WanDiT(WanDiTConfig cfg, WanDiTWeights weights);

  // x [B, C, T, H, W] F32; timestep [B] (any float dtype, any device; the
  // scheduler's timestep values, e.g. 999) or [B, N], one per video token in
  // (frame, row, column) order (Wan2.2 TI2V, docs/wan.md §8.2); context [B, L, text_dim] with
  // L <= text_len, zero-padded to text_len rows here before the text MLP
  // (docs/wan.md §1.5). Returns the velocity [B, out_dim, T, H, W] F32. Runs on
  // x's device, which must be the weights'; precision policy in wan_dit.cpp.
  Tensor forward(const Tensor& x, const Tensor& timestep, const Tensor& context, const DumpHook& dump = {}) const;

  const WanDiTConfig& config() const { return cfg_; }
  const WanDiTWeights& weights() const { return w_; }

 private:
  WanDiTConfig cfg_;
  WanDiTWeights w_;
};

// Sinusoidal timestep features [B, freq_dim] (CPU, F32): [cos(t·ω_k), sin(t·ω_k)],
// ω_k = 10000^(-k/half), in the precision `mode` selects (docs/wan.md §2.4).
Tensor wan_timestep_sinusoid(const std::vector<float>& timesteps, int64_t freq_dim, TimestepSinusoid mode);

}  // namespace t2v
