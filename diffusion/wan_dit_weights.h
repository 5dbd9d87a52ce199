// Wan DiT weights: the typed modules (member names follow the original Wan
// checkpoint keys), the checkpoint layouts t2v reads, the one rename table
// from original to diffusers names, and binding with shape/dtype checks.
//
// Layouts (docs/wan.md §2.11):
//   original   Wan-AI single file: `blocks.0.self_attn.q.weight`
//   comfy      the same names behind `model.diffusion_model.` (stripped on purpose)
//   diffusers  `transformer/` folder, possibly sharded: `blocks.0.attn1.to_q.weight`;
//              note diffusers `norm2` is the original `norm3` (cross-attention LN).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/safetensors.h"
#include "diffusion/wan_dit_config.h"

namespace t2v {

// ---- modules ------------------------------------------------------------------
struct Linear {
  Tensor weight;  // [out, in]
  Tensor bias;    // [out]
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
};

struct WanDiTBlock {
  Tensor modulation;       // [1, 6, dim]  shift/scale/gate of self-attn, then of FFN
  WanAttention self_attn;
  LayerNormAffine norm3;   // cross-attention LN (diffusers: norm2)
  WanAttention cross_attn;
  Linear ffn_0;            // [ffn_dim, dim]  (`ffn.0`)
  Linear ffn_2;            // [dim, ffn_dim]  (`ffn.2`)
};

struct WanDiTHead {
  Tensor modulation;  // [1, 2, dim]  shift, scale
  Linear head;        // [out_dim * pt * ph * pw, dim]
};

struct WanDiTWeights {
  Linear patch_embedding;    // weight viewed as [dim, in_dim * pt * ph * pw] (Conv3d [dim, C, pt, ph, pw])
  Linear text_embedding_0;   // [dim, text_dim]
  Linear text_embedding_2;   // [dim, dim]
  Linear time_embedding_0;   // [dim, freq_dim]
  Linear time_embedding_2;   // [dim, dim]
  Linear time_projection_1;  // [6 * dim, dim]
  std::vector<WanDiTBlock> blocks;
  WanDiTHead head;
};

// ---- layouts ------------------------------------------------------------------
enum class WanDiTLayout { Original, Comfy, Diffusers };
const char* wan_dit_layout_name(WanDiTLayout layout);  // "original", "comfy", "diffusers"
inline constexpr const char* kComfyPrefix = "model.diffusion_model.";

// Detects the layout from the key names. Error(65) when the store is not a Wan
// DiT (names a few of its keys) or is an image-to-video checkpoint.
WanDiTLayout detect_wan_dit_layout(const TensorStore& store);
// True when the store holds a Wan DiT in any layout (no throw).
bool is_wan_dit(const TensorStore& store);

// The rename table: canonical (original) key -> diffusers key.
std::string wan_dit_diffusers_key(const std::string& canonical);
// Canonical key -> the key as stored in a file of `layout` (prefix included).
std::string wan_dit_file_key(WanDiTLayout layout, const std::string& canonical);

// Whether a tensor is kept in fp32 whatever the compute dtype (docs/wan.md §2.10:
// modulation, norms, time MLP and head run in fp32; large GEMM weights do not).
enum class WeightPrecision { Compute, F32 };

// The one place that names every tensor and its shape: calls `get(key, shape,
// precision)` for each canonical key and stores the result in `w`.
using WeightGetter = std::function<Tensor(const std::string& key, const Shape& shape, WeightPrecision precision)>;
void bind_wan_dit(WanDiTWeights& w, const WanDiTConfig& cfg, const WeightGetter& get);

struct WanDiTParam {
  std::string key;  // canonical
  Shape shape;
};
// Every tensor bind_wan_dit asks for, in order.
std::vector<WanDiTParam> wan_dit_expected_params(const WanDiTConfig& cfg);

// Checks a checkpoint against a config using only the headers (no data is read):
// every expected key present with its shape and a float dtype t2v converts
// (F32, F16, BF16, F8_E4M3 with optional scale_weight). Throws Error(65) listing
// the first problems with the layout; a shape mismatch names the preset the
// found shape belongs to ("this looks like the wan2.1-t2v-14b model").
struct WanDiTCheck {
  WanDiTLayout layout = WanDiTLayout::Original;
  std::vector<std::string> unused_keys;  // file keys no parameter uses (markers excluded)
  int64_t num_params = 0;
};
WanDiTCheck check_wan_dit_weights(const TensorStore& store, const WanDiTConfig& cfg);

struct WanDiTLoadOptions {
  Device device = Device::CPU;
  DType dtype = DType::F32;  // compute dtype of the large GEMM weights (F32 on CPU)
  bool strict = false;       // unused keys are an error instead of a warning
};
// check_wan_dit_weights, then binds every tensor (converted, dequantized, on the device).
WanDiTWeights load_wan_dit(const TensorStore& store, const WanDiTConfig& cfg, const WanDiTLoadOptions& opts = {});

}  // namespace t2v
