// The CLIP vision tower the Wan image-to-video models condition on: open_clip's
// XLM-RoBERTa ViT-H/14 visual tower, which is the ViT transformers calls
// CLIPVisionModel (docs/wan.md §5.1). Sizes come from a transformers config.json,
// a preset, or the tensor shapes of a checkpoint.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/safetensors.h"

namespace t2v {

struct ClipVisionConfig {
  int64_t hidden = 1280;        // width (transformers hidden_size)
  int64_t intermediate = 5120;  // MLP inner size
  int64_t num_heads = 16;       // head dim 80 for ViT-H/14
  int64_t num_layers = 32;      // blocks in the checkpoint; Wan runs all but the last
  int64_t patch = 14;
  int64_t image_size = 224;     // input side after the resize (patch x grid side)
  int64_t channels = 3;
  float eps = 1e-5f;            // every LayerNorm
  std::string preset_name;      // "clip-vit-h-14" when the sizes are that model's, else ""

  int64_t head_dim() const { return hidden / num_heads; }
  int64_t grid() const { return image_size / patch; }           // patches per side
  int64_t num_tokens() const { return grid() * grid() + 1; }    // class token + patches (257)
  // Wan takes the hidden states after the second-to-last block (open_clip's
  // use_31_block, transformers' hidden_states[-2]): blocks 0 .. num_layers - 2 run.
  int64_t layers_run() const { return num_layers - 1; }

  // Every value in range; Error(78) naming `origin` and the field.
  void validate(const std::string& origin) const;
  std::string summary() const;  // "hidden 1280, mlp 5120, heads 16 x 80, layers 32, patch 14, image 224"

  // ---- where a config comes from (the same calls for every model) ----
  static std::vector<std::string> preset_names();  // "clip-vit-h-14"
  // Error(64) listing the names for any other.
  static ClipVisionConfig preset(const std::string& name);
  // A transformers CLIPVisionConfig config.json (hidden_size, intermediate_size,
  // num_attention_heads, num_hidden_layers, patch_size, image_size, layer_norm_eps,
  // hidden_act "gelu"), or a CLIPConfig holding one under "vision_config".
  static ClipVisionConfig from_json(const std::string& path);
  static ClipVisionConfig from_json_text(const std::string& text, const std::string& origin);
  // From the tensor shapes of a checkpoint in any layout: width, MLP size, layers,
  // patch; image size = patch x sqrt(positions - 1); heads = width / 80 (the
  // ViT-H/14 head dim; not visible in shapes), Error(65) asking for a config.json
  // when the width is not a multiple of 80.
  static ClipVisionConfig from_weights(const TensorStore& store);
  // `config_arg`: a preset, a config.json or a folder holding one; or empty: the
  // config.json beside `weights_path` when it is a CLIP vision config, else
  // from_weights (of `store`, or of the store opened at `weights_path`).
  static ClipVisionConfig resolve(const std::string& config_arg, const std::string& weights_path,
                                  const TensorStore* store = nullptr);
};

}  // namespace t2v
