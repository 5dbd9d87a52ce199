// Wan2.1 VAE hyper-parameters (docs/wan.md §3.1) under diffusers' AutoencoderKLWan
// config.json field names, so a diffusers `vae/` folder configures itself.
// Latent (de)normalisation with the per-channel mean/std (§3.2) lives here too.
#pragma once

#include <string>
#include <vector>

#include "core/safetensors.h"
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
  int in_channels = 3;   // of the encoder's first conv: 3 (Wan2.1), 12 = 3 x 2 x 2 after the Wan2.2 patchify
  int out_channels = 3;  // of the decoder's last conv (before the Wan2.2 unpatchify)
  std::vector<float> latents_mean;  // [z_dim]
  std::vector<float> latents_std;   // [z_dim]
  // Wan2.2 VAE (docs/wan.md §8.1): residual down/up blocks with the AvgDown3D/DupUp3D
  // shortcuts, and a patch_size x patch_size pixel patchify around the encoder/decoder.
  bool is_residual = false;
  int patch_size = 1;

  // Throws Error(78) naming `origin` and the field when a value cannot work.
  void validate(const std::string& origin) const;
  std::string summary() const;  // "base_dim 96, decoder_base_dim 96, z_dim 16, dim_mult [1, 2, 4, 4], ..."

  // ---- where a config comes from (the same calls for every model) ----
  static std::vector<std::string> preset_names();  // "wan2.1-vae" (also "wan2.1"), "wan2.2-vae"
  // "wan2.1-vae": the released Wan2.1 VAE (base_dim 96, 127M parameters); "wan2.2-vae":
  // Wan2.2_VAE (z_dim 48, encoder base 160, decoder base 256, 16x16x4);
  // Error(64) listing the names for any other.
  static WanVAEConfig preset(const std::string& name);
  // A diffusers config.json (AutoencoderKLWan, Wan2.1 or Wan2.2). Unknown fields (and
  // the stale "clip_output" of the Wan2.2 conversion) are ignored; values this
  // implementation cannot run (attn_scales, a scale_factor_* that contradicts the
  // structure) are refused with Error(78) naming the file and field.
  static WanVAEConfig from_json(const std::string& path);
  static WanVAEConfig from_json_text(const std::string& text, const std::string& origin);
  // Read off the tensor shapes of a checkpoint without a config.json (Wan2.1 or
  // Wan2.2 by the block names; base_dim, decoder_base_dim, z_dim, num_res_blocks,
  // patch size; the rest and the latent statistics from the matching preset).
  // Error(65) when the file cannot be a Wan VAE. (wan_vae.cpp)
  static WanVAEConfig from_weights(const TensorStore& store);
  // `config_arg`: a preset name, a config.json, or a folder holding one; or
  // empty: then the VAE config.json beside `weights_path` when there is one,
  // else from_weights (of `store`, or of the store opened at `weights_path`).
  static WanVAEConfig resolve(const std::string& config_arg, const std::string& weights_path,
                              const TensorStore* store = nullptr);

  // Decoder stages run in reverse: temporal upsampling flags are the reversed downsampling flags.
  std::vector<bool> temperal_upsample() const { return {temperal_downsample.rbegin(), temperal_downsample.rend()}; }
  int temporal_factor() const;  // 2^(number of temporal downsamples): 4 for Wan2.1 and Wan2.2
  int spatial_factor() const;   // pixels per latent: 2^(len(dim_mult) - 1) x patch_size: 8 (Wan2.1), 16 (Wan2.2)
  int decoder_scale() const { return spatial_factor() / patch_size; }  // decoder output px per latent px
  int video_channels() const { return in_channels / (patch_size * patch_size); }  // 3
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
