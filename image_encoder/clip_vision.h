// The CLIP ViT vision tower (open_clip VisionTransformer / transformers
// CLIPVisionModel) as Wan's image-to-video models use it (docs/wan.md §5.1):
//
//   image [B, 3, S, S] (already resized and normalised, clip_vision_preprocess)
//   -> Conv2d(3 -> D, kernel = stride = patch, no bias) -> [B, G*G, D]
//   -> [class token ; patches] + position embedding -> LayerNorm (pre_layrnorm)
//   -> blocks 0 .. num_layers - 2, each pre-norm:
//        x = x + o(softmax(q kᵀ / sqrt(d)) v)(LN1(x)),  x = x + fc2(GELU_erf(fc1(LN2(x))))
//   -> hidden states [B, 1 + G*G, D] of the second-to-last block,
//      no post-LayerNorm, no projection.
//
// Symbols: B images, N tokens (1 + G*G; 257 for ViT-H/14 at 224), D width,
// NH heads, Dh head dim, S image side, G patches per side.
//
// Layouts (one rename table, canonical = transformers names without `vision_model.`):
//   transformers  diffusers `image_encoder/` (CLIPVisionModel[WithProjection]) and
//                 ComfyUI `clip_vision_h.safetensors`: `vision_model.encoder.layers.0.self_attn.q_proj.weight`
//   wan           Wan's open_clip checkpoint (`models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth`)
//                 converted to safetensors: `visual.transformer.0.attn.to_qkv.weight` (q, k, v fused),
//                 `visual.cls_embedding` [1, 1, D], `visual.pos_embedding` [1, N, D]; the text tower
//                 (`textual.*`) is not used.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/safetensors.h"
#include "core/tensor.h"
#include "core/weights.h"
#include "image_encoder/clip_vision_config.h"

namespace t2v {

// ---- modules ------------------------------------------------------------------
struct ClipLinear {
  Tensor weight;  // [out, in]
  Tensor bias;    // [out]
};

struct ClipLayerNorm {
  Tensor weight;  // [D]
  Tensor bias;    // [D]
};

struct ClipEncoderLayer {
  ClipLayerNorm layer_norm1;
  ClipLinear q_proj, k_proj, v_proj, out_proj;  // [D, D]
  ClipLayerNorm layer_norm2;
  ClipLinear fc1;  // [intermediate, D]
  ClipLinear fc2;  // [D, intermediate]
};

enum class ClipVisionLayout { Transformers, Wan };
const char* clip_vision_layout_name(ClipVisionLayout layout);  // "transformers", "wan"

struct ClipVisionWeights {
  Tensor patch_embedding;     // [D, C, p, p]  (`embeddings.patch_embedding.weight`, no bias)
  Tensor class_embedding;     // [D]
  Tensor position_embedding;  // [N, D]
  ClipLayerNorm pre_layrnorm; // transformers' spelling
  std::vector<ClipEncoderLayer> layers;  // the layers_run() blocks Wan uses

  // Binds through `root` at the canonical names. `layout` decides the two things a
  // rename cannot: the Wan layout stores q, k, v as one fused `qkv_proj` (split here)
  // and the class and position embeddings with leading singleton dims.
  static ClipVisionWeights bind(const WeightScope& root, const ClipVisionConfig& cfg,
                                ClipVisionLayout layout = ClipVisionLayout::Transformers);
};

// Every tensor ClipVisionWeights::bind asks for (transformers layout), in order.
std::vector<WeightRequest> clip_vision_weight_list(const ClipVisionConfig& cfg);

// ---- layouts ------------------------------------------------------------------
// Which layout a store holds and the prefix in front of its keys ("vision_model.",
// "visual.", ...); Error(65) naming a few of its keys when it is not a CLIP vision
// tower. `prefix` may be null.
ClipVisionLayout detect_clip_vision_layout(const TensorStore& store, std::string* prefix);
bool is_clip_vision(const TensorStore& store);  // no throw
// The rename table: canonical (transformers) key -> the key in `layout`, no prefix.
std::string clip_vision_layout_key(ClipVisionLayout layout, const std::string& canonical);
WeightLayout clip_vision_weight_layout(ClipVisionLayout layout, const std::string& prefix);

struct ClipVisionLoadOptions {
  Device device = Device::CPU;
  DType dtype = DType::F32;  // compute dtype of the GEMM weights
  bool strict = false;
  bool dry_run = false;      // headers only: every problem in one Error(65), undefined tensors
  WeightReport* report = nullptr;
};

class ClipVisionEncoder {
 public:
  ClipVisionEncoder(ClipVisionConfig cfg, ClipVisionWeights weights);

  // A .safetensors file, a folder (diffusers image_encoder/) or an index. Pickle
  // files (the official .pth) are refused with the command that converts them.
  static ClipVisionEncoder load(const std::string& path, const ClipVisionConfig& cfg,
                                const ClipVisionLoadOptions& opts = {});
  static ClipVisionEncoder load(const TensorStore& store, const ClipVisionConfig& cfg,
                                const ClipVisionLoadOptions& opts = {});

  // pixels [B, C, S, S] F32 (clip_vision_preprocess output, any device) ->
  // hidden states of the second-to-last block [B, N, D] F32 on the weights' device.
  // Error(65) for a wrong shape.
  Tensor forward(const Tensor& pixels) const;

  const ClipVisionConfig& config() const { return cfg_; }

 private:
  ClipVisionConfig cfg_;
  ClipVisionWeights w_;
};

// Wan's CLIP input from images in [-1, 1] (CLIPModel.visual): images [B, 3, H, W]
// F32 on the CPU, any size -> bicubic resize to image_size x image_size (a squash:
// no crop, no aspect kept; PyTorch semantics, core/image_resize.h) -> x·0.5 + 0.5
// -> (x − mean)/std per channel with OpenAI CLIP's mean and std. [B, 3, S, S] F32 CPU.
Tensor clip_vision_preprocess(const Tensor& images, const ClipVisionConfig& cfg);

}  // namespace t2v
