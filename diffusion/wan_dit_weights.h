// Wan DiT weights: the typed modules (member names follow the original Wan
// checkpoint keys), the checkpoint layouts t2v reads, the one rename table from
// original to diffusers names, and loading through core/weights.h.
//
// Layouts (docs/wan.md §2.11):
//   original   Wan-AI single file: `blocks.0.self_attn.q.weight`
//   comfy      the same names behind `model.diffusion_model.` (stripped on purpose)
//   diffusers  `transformer/` folder, possibly sharded: `blocks.0.attn1.to_q.weight`;
//              note diffusers `norm2` is the original `norm3` (cross-attention LN).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/safetensors.h"
#include "core/weights.h"
#include "diffusion/wan_dit_config.h"

namespace t2v {

// ---- modules ------------------------------------------------------------------
struct Linear {
  Tensor weight;  // [out, in]; undefined when `packed` holds the weight
  Tensor bias;    // [out]
  // A quantized weight kept in its blocks (GGUF on the CPU, core/weights.h
  // get_packed); the forward runs ops::linear_packed on it.
  std::optional<PackedWeight> packed;
  // s: the module's scope ("blocks.0.self_attn.q"); binds `weight` and `bias`.
  // Compute-precision weights may come packed; fp32 islands are always dense.
  void bind(const WeightScope& s, int64_t out, int64_t in, WeightPrecision p);
};

struct LayerNormAffine {
  Tensor weight;  // [dim]
  Tensor bias;    // [dim]
};

// Self- or cross-attention: q/k RMSNorm over the whole dim (all heads jointly).
struct WanAttention {
  Linear q, k, v, o;  // [dim, dim] / [dim]
  Tensor norm_q;      // [dim]  (`norm_q.weight`)
  Tensor norm_k;      // [dim]
  // Image-to-video cross-attention only (docs/wan.md §5.1): keys and values of the
  // image tokens, from the same queries (diffusers add_k_proj, add_v_proj, norm_added_k).
  Linear k_img, v_img;  // [dim, dim] / [dim]
  Tensor norm_k_img;    // [dim]
  void bind(const WeightScope& s, const WanDiTConfig& cfg, bool image = false);
};

// The image embedder of image-to-video models (`img_emb`, diffusers
// condition_embedder.image_embedder): LN -> Linear -> GELU (erf) -> Linear -> LN, the
// LayerNorms with eps 1e-5; FLF2V adds learned positions before the first LN.
struct WanImageEmbedding {
  LayerNormAffine proj_0;  // [image_dim]
  Linear proj_1;           // [image_dim, image_dim]
  Linear proj_3;           // [dim, image_dim]
  LayerNormAffine proj_4;  // [dim]
  Tensor emb_pos;          // [1, image_pos_len, image_dim] (FLF2V), else undefined
};

struct WanDiTBlock {
  Tensor modulation;       // [1, 6, dim]  shift/scale/gate of self-attn, then of FFN
  WanAttention self_attn;
  LayerNormAffine norm3;   // cross-attention LN (diffusers: norm2)
  WanAttention cross_attn;
  Linear ffn_0;            // [ffn_dim, dim]  (`ffn.0`)
  Linear ffn_2;            // [dim, ffn_dim]  (`ffn.2`)
  void bind(const WeightScope& s, const WanDiTConfig& cfg);
};

struct WanDiTHead {
  Tensor modulation;  // [1, 2, dim]  shift, scale
  Linear head;        // [out_dim * pt * ph * pw, dim]
};

struct WanDiTWeights {
  // The compute dtype: the dtype of the large GEMM weights (WeightPrecision::Compute),
  // which the forward computes those GEMMs in; the fp32 islands are bound F32.
  DType dtype = DType::F32;
  Linear patch_embedding;    // weight viewed as [dim, in_dim * pt * ph * pw] (Conv3d [dim, C, pt, ph, pw])
  Linear text_embedding_0;   // [dim, text_dim]
  Linear text_embedding_2;   // [dim, dim]
  Linear time_embedding_0;   // [dim, freq_dim]
  Linear time_embedding_2;   // [dim, dim]
  Linear time_projection_1;  // [6 * dim, dim]
  std::vector<WanDiTBlock> blocks;
  WanDiTHead head;
  WanImageEmbedding img_emb;  // image-to-video only

  // The one place that names every tensor with its shape and precision. `root`
  // is at the canonical (original) names; any source works (a checkpoint, a dry
  // run, random weights).
  static WanDiTWeights bind(const WeightScope& root, const WanDiTConfig& cfg);
};

// Every tensor WanDiTWeights::bind asks for, in order.
std::vector<WeightRequest> wan_dit_weight_list(const WanDiTConfig& cfg);

// ---- layouts ------------------------------------------------------------------
enum class WanDiTLayout { Original, Comfy, Diffusers };
const char* wan_dit_layout_name(WanDiTLayout layout);  // "original", "comfy", "diffusers"
inline constexpr const char* kComfyPrefix = "model.diffusion_model.";

// Detects the layout from the key names. Error(65) when the store is not a Wan
// DiT (names a few of its keys), or is a GGUF whose general.architecture is not
// "wan" (ComfyUI-GGUF's Wan files keep the original names, so they read as the
// original layout).
WanDiTLayout detect_wan_dit_layout(const TensorStore& store);
// True when the store holds a Wan DiT in any layout (no throw).
bool is_wan_dit(const TensorStore& store);

// What the tensor shapes of a Wan DiT checkpoint tell (WanDiTConfig::from_weights
// builds on it): the sizes, the layout, the preset with these sizes, and whether
// the head count is known (heads are not visible in shapes: from the preset with
// this dim, else head_dim 128 when dim is a multiple of it). Error(65) when a
// tensor that sets a size is missing or misshaped.
struct WanDiTShapes {
  WanDiTConfig cfg;  // not validated; num_heads meaningful only when heads_known
  WanDiTLayout layout = WanDiTLayout::Original;
  bool heads_known = false;
};
WanDiTShapes detect_wan_dit_shapes(const TensorStore& store);

// The rename table: canonical (original) key -> diffusers key.
std::string wan_dit_diffusers_key(const std::string& canonical);
// Canonical key -> the key as stored in a file of `layout` (prefix included).
std::string wan_dit_file_key(WanDiTLayout layout, const std::string& canonical);
WeightLayout wan_dit_weight_layout(WanDiTLayout layout);

struct WanDiTLoadOptions {
  Device device = Device::CPU;
  DType dtype = DType::F32;  // compute dtype of the large GEMM weights (F32 on CPU)
  bool strict = false;       // unused keys are an error instead of a warning
  // Headers only: check names, shapes and dtypes (every problem in one
  // Error(65); a shape mismatch names the preset the found shape belongs to,
  // "this looks like the wan2.1-t2v-14b model") and return undefined tensors.
  bool dry_run = false;
  std::shared_ptr<const WeightDelta> delta;  // per-key deltas merged at load (core/weights.h)
  WeightReport* report = nullptr;            // if set: layout, unused keys, parameter count
  // GGUF: keep the quantized block matrices packed when computing in fp32 on the
  // CPU (false: dequantize everything at load).
  bool keep_packed = true;
};
// A dry run over the headers (a wrong file fails in milliseconds), then every
// tensor converted, dequantized and moved to the device.
WanDiTWeights load_wan_dit(const TensorStore& store, const WanDiTConfig& cfg, const WanDiTLoadOptions& opts = {});

}  // namespace t2v
