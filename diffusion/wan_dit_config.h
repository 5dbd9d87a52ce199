// Wan2.1 DiT hyper-parameters (docs/wan.md §2.1): from a diffusers config.json,
// from the original Wan config.json, from a preset name, or detected from the
// tensor shapes of a checkpoint. Also the FLOP count of one forward.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/safetensors.h"

namespace t2v {

// How the sinusoidal timestep features are computed (docs/wan.md §2.4). The Wan
// reference computes them in float64 and rounds to fp32; diffusers computes
// exp(-ln(1e4)·k/half) and t·ω in fp32. The difference is ~1 ulp of t·ω.
enum class TimestepSinusoid : uint8_t { Float64, Float32Diffusers };

struct WanDiTConfig {
  int64_t dim = 1536;        // hidden size = num_heads * head_dim
  int64_t ffn_dim = 8960;    // FFN inner size
  int64_t freq_dim = 256;    // sinusoidal timestep features
  int64_t num_heads = 12;
  int64_t num_layers = 30;
  int64_t in_dim = 16;       // latent channels in
  int64_t out_dim = 16;      // latent channels out
  int64_t text_dim = 4096;   // umT5 hidden size
  int64_t text_len = 512;    // context rows after zero padding (docs/wan.md §1.5)
  std::array<int64_t, 3> patch_size{1, 2, 2};  // (t, h, w)
  bool cross_attn_norm = true;  // affine LayerNorm before cross-attention
  bool qk_norm = true;          // RMSNorm over the whole dim on q and k
  float eps = 1e-6f;
  int64_t rope_max_seq_len = 1024;  // positions per axis with a RoPE table
  double rope_theta = 10000.0;
  TimestepSinusoid sinusoid = TimestepSinusoid::Float64;
  // Image-to-video (docs/wan.md §5.1): the width of the CLIP image features the image
  // embedder takes (1280 for Wan2.1 I2V / FLF2V-14B); 0 for text-to-video.
  int64_t image_dim = 0;
  // First-last-frame (FLF2V): the image tokens of both frames carry a learned position
  // embedding over this many tokens (514 = 2 x 257); 0 otherwise.
  int64_t image_pos_len = 0;
  std::string preset_name;  // the preset these dims equal ("wan2.1-t2v-1.3b", ...), or ""
  // Wan2.1 I2V / FLF2V: an image embedder reading CLIP features (a CLIP encoder is needed).
  bool image_to_video() const { return image_dim > 0; }
  bool first_last_frame() const { return image_pos_len > 0; }
  // [noise, mask 4, image latent] in (Wan2.1 I2V/FLF2V, Wan2.2 I2V-A14B experts, which
  // have no image embedder).
  bool image_latent_input() const { return in_dim > out_dim; }
  // Wan2.2 TI2V-5B: 48 latent channels in and out (the Wan2.2 VAE), per-token timesteps.
  bool ti2v() const { return in_dim == 48 && out_dim == 48; }
  // The reference's model_type: "t2v" (Wan2.1, Wan2.2 T2V-A14B experts), "i2v" (Wan2.1
  // I2V-14B, Wan2.2 I2V-A14B experts), "flf2v" or "ti2v". Follows from the channels and
  // the image embedder (docs/wan.md §8.5).
  std::string model_type() const {
    return first_last_frame()                       ? "flf2v"
           : image_to_video() || image_latent_input() ? "i2v"
           : ti2v()                                   ? "ti2v"
                                                      : "t2v";
  }

  int64_t head_dim() const { return dim / num_heads; }
  int64_t patch_numel() const { return patch_size[0] * patch_size[1] * patch_size[2]; }
  // Every value within its range (overflow-checked products); Error(78) naming
  // `origin` and the field.
  void validate(const std::string& origin) const;
  std::string summary() const;  // "dim 1536, ffn 8960, heads 12 x 128, layers 30, ..."

  // ---- where a config comes from (the same calls for every model) ----
  // "wan2.1-t2v-1.3b", "wan2.1-t2v-14b" (also a Wan2.2 T2V-A14B expert), "wan2.1-i2v-14b",
  // "wan2.1-flf2v-14b", "wan2.2-ti2v-5b", "wan2.2-i2v-a14b" (one expert).
  static std::vector<std::string> preset_names();
  // The named preset; Error(64) listing the names for any other.
  static WanDiTConfig preset(const std::string& name);
  // A diffusers (`attention_head_dim`, `num_attention_heads`, ...) or an original
  // Wan (`dim`, `num_heads`, ...) config.json. Error(78) names the file and field.
  static WanDiTConfig from_json(const std::string& path);
  static WanDiTConfig from_json_text(const std::string& text, const std::string& origin);
  // From the tensor shapes of a Wan DiT checkpoint (any layout). The head count
  // is not visible in shapes: it comes from a matching preset, or head_dim 128
  // is assumed when dim is a multiple of 128; otherwise Error(65) asks for a
  // config.json.
  static WanDiTConfig from_weights(const TensorStore& store);
  // `config_arg`: a preset name, a config.json (or a folder holding one), or
  // empty: then the DiT config.json beside `weights_path` when there is one,
  // else from_weights (of `store`, or of the store opened at `weights_path`).
  static WanDiTConfig resolve(const std::string& config_arg, const std::string& weights_path,
                              const TensorStore* store = nullptr);
};

// Image tokens the DiT attends to besides the text: 0 for T2V, 257 (ViT-H/14's class
// token and 16 x 16 patches) for I2V, image_pos_len (514) for FLF2V. For FLOP counts;
// the forward takes whatever the image encoder gives.
int64_t wan_dit_image_tokens(const WanDiTConfig& cfg);

// Parameter count implied by a config (T2V-1.3B: 1,418,996,800).
int64_t wan_dit_param_count(const WanDiTConfig& cfg);

// ---- FLOPs of one forward -------------------------------------------------------
// Counted as 2 FLOPs per multiply-add of every GEMM (2·M·N·K) and of attention
// (Q·Kᵀ and P·V: 4·Nq·Nk·D per head). Elementwise ops, norms, softmax and RoPE
// are left out (< 0.1% of the total at real sizes).
struct WanDiTFlops {
  double patch_embedding = 0;
  double embeddings = 0;        // time MLP, time projection, text MLP (512 rows), image embedder
  double self_attn_proj = 0;    // q, k, v, o on N tokens, all blocks
  double self_attn_sdpa = 0;    // Q·Kᵀ and P·V over N keys, all blocks
  double cross_attn_proj = 0;   // q, o on N tokens + k, v on text_len rows (+ k_img, v_img on the image tokens)
  double cross_attn_sdpa = 0;   // Q·Kᵀ and P·V over text_len keys (+ the image tokens), all blocks
  double ffn = 0;
  double head = 0;
  double total() const;
};
// Latent grid T x h x w (before patching) and batch size.
WanDiTFlops wan_dit_flops(const WanDiTConfig& cfg, int64_t T, int64_t h, int64_t w, int64_t batch = 1);
// Same from a video size: frames F (4n+1), height and width in pixels (VAE stride 4 x s x s:
// 8 for the Wan2.1 VAE, 16 for Wan2.2's).
WanDiTFlops wan_dit_flops_for_video(const WanDiTConfig& cfg, int64_t frames, int64_t height, int64_t width,
                                    int64_t batch = 1, int64_t vae_stride = 8);

}  // namespace t2v
