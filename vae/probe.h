// `t2v probe vae-decode` / `t2v probe vae-encode` (docs/conventions.md §7): run
// the VAE on named input tensors and write its outputs, so a tools/ script can
// compare them with diffusers' AutoencoderKLWan on the same inputs.
//   vae-decode: in `latents` F32 [B, z, T, h, w] (already denormalised, i.e. what
//               diffusers' AutoencoderKLWan.decode takes) -> out `sample` F32
//               [B, 3, 1+4(T-1), 8h, 8w] in [-1, 1] (post-quant conv, chunked decoder, clamp)
//   vae-encode: in `sample` F32 [B, 3, F, H, W] in [-1, 1] -> out `latent_mean` and
//               `latent_logvar` F32 [B, z, 1+(F-1)/4, H/8, W/8] (latent_dist.mean / .logvar)
#pragma once

#include <string>

#include "core/tensor.h"

namespace t2v {

// weights: a .safetensors file or a diffusers vae/ folder (either layout);
// config: a preset name ("wan2.1-vae"), a config.json, a folder holding one, or
// empty (the config.json beside the weights, else read off them: WanVAEConfig::resolve).
void probe_vae_decode(const std::string& weights, const std::string& config, const std::string& inputs,
                      const std::string& out, Device device);
void probe_vae_encode(const std::string& weights, const std::string& config, const std::string& inputs,
                      const std::string& out, Device device);

}  // namespace t2v
