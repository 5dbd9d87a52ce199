// Wan2.1 VAE hyper-parameters (docs/wan.md §3.1) under diffusers' AutoencoderKLWan
// config.json field names, so a diffusers `vae/` folder configures itself.
// Latent (de)normalisation with the per-channel mean/std (§3.2) lives here too.
#pragma once

#include <string>
#include <vector>

#include "core/tensor.h"

namespace t2v {

struct WanVAEConfig {
  int base_dim = 96;          // encoder channel unit: widths base_dim * [1, dim_mult...]
  int decoder_base_dim = 96;  // diffusers' decoder_base_dim (null there means base_dim)
  int z_dim = 16;             // latent channels; the encoder emits 2*z_dim (mean | logvar)
  std::vector<int> dim_mult{1, 2, 4, 4};
  int num_res_blocks = 2;     // per encoder stage; the decoder has num_res_blocks + 1
  std::vector<double> attn_scales;                       // must be empty (Wan2.1)
  std::vector<bool> temperal_downsample{false, true, true};  // [sic], diffusers' spelling
  int in_channels = 3;
  int out_channels = 3;
  std::vector<float> latents_mean;  // [z_dim]
  std::vector<float> latents_std;   // [z_dim]

  // "wan2.1-vae": the released Wan2.1 VAE (base_dim 96, 127M parameters).
  static WanVAEConfig preset(const std::string& name);
  // A diffusers config.json (AutoencoderKLWan). Unknown fields are ignored,
  // fields this implementation cannot run (is_residual, patch_size, attn_scales)
  // are refused with Error(78) naming the file and field.
  static WanVAEConfig from_json_file(const std::string& path);
  static WanVAEConfig from_json_text(const std::string& text, const std::string& origin);
  // A preset name, a config.json, or a folder holding config.json.
  static WanVAEConfig load(const std::string& file_or_preset);

  // Throws Error(78) naming `origin` and the field when a value cannot work.
  void validate(const std::string& origin) const;

  // Decoder stages run in reverse: temporal upsampling flags are the reversed downsampling flags.
  std::vector<bool> temperal_upsample() const { return {temperal_downsample.rbegin(), temperal_downsample.rend()}; }
  int temporal_factor() const;  // 2^(number of temporal downsamples): 4 for Wan2.1
  int spatial_factor() const;   // 2^(len(dim_mult) - 1): 8 for Wan2.1
  // Latent frames for F pixel frames (the encoder drops frames that do not fill a chunk).
  int64_t latent_frames(int64_t pixel_frames) const { return 1 + (pixel_frames - 1) / temporal_factor(); }
  int64_t pixel_frames(int64_t latent_frames) const { return 1 + temporal_factor() * (latent_frames - 1); }
};

// DiT space -> VAE space: mu = z * std + mean per channel. z [B, z_dim, T, h, w].
// (The reference divides by 1/std; the two differ by at most an ulp.)
Tensor wan_vae_denormalize_latents(const Tensor& z, const WanVAEConfig& cfg);
// VAE space -> DiT space: z = (mu - mean) * (1/std), as the reference and diffusers compute it.
Tensor wan_vae_normalize_latents(const Tensor& mu, const WanVAEConfig& cfg);

}  // namespace t2v
