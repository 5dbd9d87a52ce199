// The Wan2.1 VAE (WanVAE / diffusers AutoencoderKLWan), docs/wan.md §3.
//
//   encode: x [B, 3, F, H, W] in [-1, 1] -> encoder (chunks of 1, 4, 4, ... frames)
//           -> conv1 (quant, 1^3) -> mean | logvar, each [B, z, T, H/8, W/8], T = 1 + (F-1)/4
//   decode: mu [B, z, T, h, w] (denormalised) -> conv2 (post-quant, 1^3)
//           -> decoder one latent frame at a time -> clamp [-1, 1] -> [B, 3, 1+4(T-1), 8h, 8w]
//
// Decoding streams: WanVAEDecodeStream takes one latent frame and returns its
// pixel frames (1 for the first, 4 after), keeping only the causal cache of each
// conv (2 frames each) between calls, so memory depends on the frame size only.
// Optional spatial tiling decodes overlapping latent tiles (each with its own
// cache) and blends them linearly, as diffusers' tiled_decode does.
//
// Weights: original/Comfy (`encoder.conv1.weight`, `decoder.upsamples.3.time_conv.weight`,
// `conv2.weight`, ...) or diffusers (`encoder.conv_in.weight`, `decoder.up_blocks.0.
// upsamplers.0.time_conv.weight`, `post_quant_conv.weight`, ...), F32/F16/BF16.
#pragma once

#include <functional>
#include <memory>
#include <map>
#include <string>
#include <vector>

#include "core/safetensors.h"
#include "core/weights.h"
#include "vae/wan_vae_config.h"
#include "vae/wan_vae_modules.h"

namespace t2v {

struct WanVAEEncoder {
  CausalConv3d conv1;                // encoder.conv1: 3 -> base_dim, 3^3
  std::vector<VAEStage> stages;      // encoder.downsamples.{n} (flat numbering across stages)
  ResidualBlock middle_0;            // encoder.middle.0
  AttentionBlock middle_1;           // encoder.middle.1
  ResidualBlock middle_2;            // encoder.middle.2
  RMSNorm head_0;                    // encoder.head.0
  CausalConv3d head_2;               // encoder.head.2: C -> 2*z_dim, 3^3
  int patch = 1;                     // Wan2.2: 2x2 pixel patchify before conv1

  void bind(const WeightScope& s, const WanVAEConfig& cfg);  // s: "encoder"
  // [B, 3, F, H, W] -> [B, 2z, F', H/s, W/s]; with a cache, F is one chunk (1 or 4 frames).
  Tensor forward(const Tensor& x, CausalCache* cache) const;
};

struct WanVAEDecoder {
  CausalConv3d conv1;                // decoder.conv1: z_dim -> C, 3^3
  ResidualBlock middle_0;            // decoder.middle.0
  AttentionBlock middle_1;           // decoder.middle.1
  ResidualBlock middle_2;            // decoder.middle.2
  std::vector<VAEStage> stages;      // decoder.upsamples.{n} (flat numbering across stages)
  RMSNorm head_0;                    // decoder.head.0
  CausalConv3d head_2;               // decoder.head.2: base_dim -> 3, 3^3

  void bind(const WeightScope& s, const WanVAEConfig& cfg);  // s: "decoder"
  // [B, z, T, h, w] -> [B, out_channels, T', 8h, 8w] (unclamped, before the Wan2.2 unpatchify);
  // with a cache T is one latent frame.
  Tensor forward(const Tensor& x, CausalCache* cache) const;
};

enum class WanVAELayout { Original, Diffusers };
const char* wan_vae_layout_name(WanVAELayout l);

// Which halves to bind: a decode-only run need not have (or load) the encoder.
struct WanVAEParts {
  bool encoder = true;
  bool decoder = true;
};

// Canonical (original) key -> diffusers key for a VAE of `cfg`: the one rename
// table between the layouts. The decoder's flat `upsamples.{n}` index maps to
// `up_blocks.{i}.resnets.{r}` / `up_blocks.{i}.upsamplers.0` by the stage
// sizes of the config; residual-block parts are renamed (residual.0 -> norm1,
// residual.2 -> conv1, residual.3 -> norm2, residual.6 -> conv2, shortcut ->
// conv_shortcut), as are the top-level and middle modules.
std::string wan_vae_diffusers_key(const WanVAEConfig& cfg, const std::string& original);
// The layout of a store (prefix included in its file keys).
WeightLayout wan_vae_weight_layout(const WanVAEConfig& cfg, WanVAELayout layout, const std::string& prefix);

// Every tensor of the VAE described by `cfg`, in binding order: its original
// key, diffusers key and shape (the bind run as a listing, each key renamed).
struct WanVAEKeyEntry {
  std::string original, diffusers;
  Shape shape;
};
std::vector<WanVAEKeyEntry> wan_vae_key_table(const WanVAEConfig& cfg, WanVAEParts parts = {});

// Finds the layout of a store from its key names (Comfy's optional
// "first_stage_model."/"vae." prefixes are detected and returned in *prefix).
WanVAELayout detect_wan_vae_layout(const TensorStore& store, std::string* prefix);

struct WanVAELoadOptions {
  Device device = Device::CPU;
  DType dtype = DType::F32;  // compute dtype of the convs and activations (CPU: F32; norms stay F32)
  WanVAEParts parts;         // the half not requested is neither required nor reported unused
  bool strict = false;       // unused keys are an error instead of a warning
  // Headers only: names, shapes and dtypes checked (every problem in one
  // Error(65)); the returned VAE has undefined tensors.
  bool dry_run = false;
  std::shared_ptr<const WeightDelta> delta;  // per-key deltas merged at load (core/weights.h)
  WeightReport* report = nullptr;            // if set: layout, unused keys, parameter count
};

struct WanVAEEncoding {  // in the VAE's compute dtype
  Tensor mean;    // [B, z, T, h, w] (VAE space; normalise for the DiT)
  Tensor logvar;  // [B, z, T, h, w], clamped to [-30, 20] as diffusers' DiagonalGaussianDistribution
};

// Spatial tiling (off by default). Sizes in latent pixels; the overlap
// (tile - stride) is blended linearly in output pixels, as diffusers does
// (defaults: 256 px tiles, 192 px stride).
struct WanVAETiling {
  bool enabled = false;
  int tile_h = 32, tile_w = 32;
  int stride_h = 24, stride_w = 24;
};

// Receives decoded frames in order: [B, 3, f, 8h, 8w] in [-1, 1], on the VAE's
// device in its compute dtype.
using WanVAEFrameSink = std::function<void(const Tensor& frames)>;

class WanVAE {
 public:
  WanVAEConfig config;
  WanVAEParts parts;
  DType dtype = DType::F32;  // compute dtype: the conv weights' and the activations' (from the weight source)
  WanVAEEncoder encoder;
  CausalConv3d conv1;  // quant conv: 2z -> 2z, 1^3 (diffusers quant_conv)
  WanVAEDecoder decoder;
  CausalConv3d conv2;  // post-quant conv: z -> z, 1^3 (diffusers post_quant_conv)

  // Binds through `root` (at the original keys) from any source (a checkpoint,
  // a dry run, random weights); the source decides what a missing tensor means.
  static WanVAE bind(const WeightScope& root, const WanVAEConfig& cfg, WanVAEParts parts = {});
  // Loads from a .safetensors file, a folder (diffusers vae/) or an index.json;
  // the layout is detected. A dry run over the headers first: Error(65) naming
  // every missing/misshaped key before any tensor is converted.
  static WanVAE load(const std::string& path, const WanVAEConfig& cfg, const WanVAELoadOptions& opts = {});
  static WanVAE load(const TensorStore& store, const WanVAEConfig& cfg, const WanVAELoadOptions& opts = {});

  // ---- decode: mu [B, z, T, h, w], denormalised (VAE space) ----
  // Streams frames to `sink` as each latent frame is decoded (chunked, bounded memory).
  void decode_stream(const Tensor& mu, const WanVAEFrameSink& sink, const WanVAETiling& tiling = {}) const;
  // All frames at once: [B, 3, 1+4(T-1), 8h, 8w] in [-1, 1] (the streamed frames concatenated).
  Tensor decode(const Tensor& mu, const WanVAETiling& tiling = {}) const;
  // The whole-sequence formulation of docs/wan.md §3.6 (no cache; memory grows with T).
  // Same numbers as decode(); kept as the reference for the chunked path and for backends
  // that run whole sequences.
  Tensor decode_whole_sequence(const Tensor& mu) const;

  // ---- encode: x [B, 3, F, H, W] in [-1, 1]; frames past 1 + 4k are dropped ----
  WanVAEEncoding encode(const Tensor& x) const;                 // chunks of 1, 4, 4, ...
  WanVAEEncoding encode_whole_sequence(const Tensor& x) const;  // no cache

  // Cache slots a chunked run uses (32 decoder / 24 encoder for Wan2.1).
  size_t decoder_cache_slots() const;
  size_t encoder_cache_slots() const;

  // x on the weights' device in the compute dtype (a no-op for CPU F32 inputs).
  Tensor to_compute(const Tensor& x) const;
  // The decoder's output as video: the Wan2.2 unpatchify (none for Wan2.1), clamped to [-1, 1].
  Tensor finish_decode(const Tensor& y) const;

 private:
  void check_decode_input(const Tensor& mu) const;
  WanVAEEncoding split_moments(const Tensor& h) const;
};

// Decodes latent frames one at a time. Between push() calls only the causal
// cache (2 frames per temporal conv at each level) is kept. Holds a reference to
// the WanVAE, which must outlive the stream.
class WanVAEDecodeStream {
 public:
  explicit WanVAEDecodeStream(const WanVAE& vae, const WanVAETiling& tiling = {});
  // mu_frame [B, z, 1, h, w] (denormalised) -> [B, 3, f, 8h, 8w] in [-1, 1], f = 1 for the first call, 4 after.
  Tensor push(const Tensor& mu_frame);
  size_t cache_bytes() const;  // memory held between calls

 private:
  struct Tile {
    int64_t y0, x0, h, w;  // latent window
    CausalCache cache;
  };
  Tensor decode_tile(const Tensor& mu_frame, Tile& tile) const;
  Tensor blend_tiles(std::vector<Tensor>& decoded, int64_t rows, int64_t cols, int64_t out_h, int64_t out_w) const;

  const WanVAE& vae_;
  WanVAETiling tiling_;
  bool tiled_ = false;
  int64_t h_ = -1, w_ = -1;
  std::vector<Tile> tiles_;  // row-major; one untiled tile when tiling is off
  int64_t rows_ = 1, cols_ = 1;
};

}  // namespace t2v
