// The components `t2v probe` runs (docs/conventions.md §7): each loads one model
// part in the given compute dtype on the given device, runs it on named input
// tensors and writes its outputs, so tools/ scripts can compare them with the
// upstream reference on the same inputs. Outputs are F32 whatever the dtype.
#pragma once

#include <string>

#include "core/tensor.h"

namespace t2v {

// Where a probe runs: the device and the compute dtype (app/choices.h
// compute_dtype_for: F32 on the CPU; F32 or BF16 elsewhere).
struct ProbeTarget {
  Device device = Device::CPU;
  DType dtype = DType::F32;
};

// weights: a umT5 checkpoint (file, shard index or folder); config: a
// transformers config.json, the preset "umt5-xxl", empty (the config.json
// beside the weights, else the sizes read off them: UMT5Config::resolve), or
// "auto" (the sizes read off the weights: UMT5Config::from_weights); inputs: a
// .safetensors with `input_ids` I64 [B, L] and `attention_mask` I64 [B, L]
// (optional: all ones); out: the .safetensors to write with
// `last_hidden_state` F32 [B, L, D].
void probe_text_encoder(const std::string& weights, const std::string& config, const std::string& inputs,
                        const std::string& out, const ProbeTarget& target = {});

// weights: a .safetensors file, an index json or a diffusers folder (any Wan DiT
// layout). config: a preset name, a config.json, or empty (detect: config.json
// beside the weights, else from tensor shapes). inputs: a .safetensors with
// `hidden_states` F32 [B, C, T, H, W], `timestep` F32 [B] (or [B, N], one per token in
// (frame, row, column) order: Wan2.2 TI2V, docs/wan.md §8.2), `encoder_hidden_states`
// F32 [B, L, D] and, for a Wan2.1 image-to-video DiT, `encoder_hidden_states_image` F32
// [B, I, image_dim] (the CLIP features; diffusers' name). Writes `sample` F32 [B, C, T, H, W] to `out`; with
// `dump_intermediates` also every named intermediate (diffusion/wan_dit.h), as F32.
void probe_dit(const std::string& weights, const std::string& config, const std::string& inputs,
               const std::string& out, const ProbeTarget& target = {}, bool dump_intermediates = false);

// weights: a .safetensors file or a diffusers vae/ folder (either layout);
// config: a preset name ("wan2.1-vae"), a config.json, a folder holding one, or
// empty (the config.json beside the weights, else read off them: WanVAEConfig::resolve).
//   vae-decode: in `latents` F32 [B, z, T, h, w] (already denormalised, i.e. what
//               diffusers' AutoencoderKLWan.decode takes) -> out `sample` F32
//               [B, 3, 1+4(T-1), 8h, 8w] in [-1, 1] (post-quant conv, chunked decoder, clamp)
//   vae-encode: in `sample` F32 [B, 3, F, H, W] in [-1, 1] -> out `latent_mean` and
//               `latent_logvar` F32 [B, z, 1+(F-1)/4, H/8, W/8] (latent_dist.mean / .logvar)
void probe_vae_decode(const std::string& weights, const std::string& config, const std::string& inputs,
                      const std::string& out, const ProbeTarget& target = {});
void probe_vae_encode(const std::string& weights, const std::string& config, const std::string& inputs,
                      const std::string& out, const ProbeTarget& target = {});

// weights: a CLIP vision tower (diffusers image_encoder/ folder, ComfyUI
// clip_vision_h.safetensors, or Wan's open_clip checkpoint converted to safetensors);
// config: a config.json, a folder holding one, a preset, or empty (ClipVisionConfig::resolve).
// inputs: `pixel_values` F32 [B, 3, S, S] (already preprocessed) or `image` F32
// [B, 3, H, W] in [-1, 1] (preprocessed here as Wan does: clip_vision_preprocess).
// Writes `hidden_states` F32 [B, N, D] (the second-to-last block) and the
// `pixel_values` it ran on.
void probe_clip_vision(const std::string& weights, const std::string& config, const std::string& inputs,
                       const std::string& out, const ProbeTarget& target = {});

}  // namespace t2v
