// Building blocks of the Wan2.1 VAE (docs/wan.md §3.3): causal conv3d with its
// frame cache, channel RMS norm, residual block, middle attention block and the
// four resample modes. Each forward takes an optional CausalCache:
//   nullptr  -> whole-sequence formulation (every causal conv zero-pads 2*p_t
//               frames in front of the whole sequence at its level);
//   a cache  -> one chunk of a chunked run; each temporal conv prepends the
//               frames it saw last and keeps its last CACHE_T = 2 input frames.
// Both give the same numbers (§3.6); the chunked form keeps memory independent
// of the number of frames.
//
// Shapes: [B, C, T, H, W] (PyTorch order). Each module binds through a
// WeightScope at its original (Wan) key; member names follow those keys, and
// the diffusers names come from the layout's rename (wan_vae.h).
//
// Precision: activations and conv / linear weights in the VAE's compute dtype
// (wan_vae.h); the RMS norms are fp32 islands (F32 gamma, fp32 statistics, the
// result rounded once to the activation dtype).
#pragma once

#include <array>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"
#include "core/weights.h"
#include "vae/wan_vae_residual.h"

namespace t2v {

// Frame history of one causal conv in a chunked run.
struct CausalSlot {
  bool seen = false;  // upsample3d/downsample3d: the first chunk has passed
  Tensor frames;      // [B, C, <= 2, H, W]: the last input frames (undefined before the first chunk)
};

// The slots of every temporal conv of one encoder or decoder, handed out in call
// order; the order is the same on every chunk, so slot i always belongs to the same conv.
class CausalCache {
 public:
  CausalSlot& next();
  // Before each chunk. From the second chunk on, first_chunk() is false (the Wan2.2
  // decoder's DupUp3D shortcut drops a frame on the first chunk only).
  void rewind() {
    cursor_ = 0;
    if (!slots_.empty()) later_ = true;
  }
  bool first_chunk() const { return !later_; }
  size_t size() const { return slots_.size(); }
  size_t bytes() const;  // memory held by the cached frames

 private:
  std::vector<CausalSlot> slots_;
  size_t cursor_ = 0;
  bool later_ = false;
};

// CausalConv3d(k_t, k_h, k_w, padding (p_t, p_h, p_w), stride (s_t, 1, 1)): zero pad
// 2*p_t frames in front only, p_h/p_w on both sides.
struct CausalConv3d {
  Tensor weight;  // [C_out, C_in, k_t, k_h, k_w]
  Tensor bias;    // [C_out]
  int pad_front = 0;  // 2 * p_t
  int pad_h = 0, pad_w = 0;
  int stride_t = 1;

  void bind(const WeightScope& s, int c_in, int c_out, std::array<int, 3> kernel, std::array<int, 3> padding,
            int stride_t = 1);
  // slot == nullptr: the whole sequence with zero history. Otherwise prepends the
  // slot's frames (zeros for what is missing) and stores the last 2 input frames.
  Tensor forward(const Tensor& x, CausalSlot* slot) const;  // [B, C_in, T, H, W] -> [B, C_out, T', H', W']
};

// docs/wan.md §3.3 RMS_norm: x / max(||x||_2 over C, 1e-12) * sqrt(C) * gamma.
struct RMSNorm {
  Tensor gamma;  // [C, 1, 1, 1] (video) or [C, 1, 1] (attention's 2-D norm), F32
  void bind(const WeightScope& s, int channels, bool images);
  Tensor forward(const Tensor& x) const;  // [B, C, ...] -> same
};

// residual = RMSN -> SiLU -> conv 3^3 -> RMSN -> SiLU -> (dropout) -> conv 3^3;
// out = residual + shortcut(x) (1^3 conv when in != out, never cached).
struct ResidualBlock {
  RMSNorm norm1;          // residual.0   (diffusers norm1)
  CausalConv3d conv1;     // residual.2   (conv1)
  RMSNorm norm2;          // residual.3   (norm2)
  CausalConv3d conv2;     // residual.6   (conv2)
  std::optional<CausalConv3d> shortcut;  // shortcut (conv_shortcut)

  void bind(const WeightScope& s, int in_dim, int out_dim);
  Tensor forward(const Tensor& x, CausalCache* cache) const;  // [B, in, T, H, W] -> [B, out, T, H, W]
};

// Middle attention: per frame, single head over the H*W positions, scale 1/sqrt(C).
struct AttentionBlock {
  RMSNorm norm;        // norm.gamma [C, 1, 1]
  Tensor to_qkv_w;     // [3C, C] (stored [3C, C, 1, 1])
  Tensor to_qkv_b;     // [3C]
  Tensor proj_w;       // [C, C] (stored [C, C, 1, 1])
  Tensor proj_b;       // [C]
  int channels = 0;

  void bind(const WeightScope& s, int dim);
  Tensor forward(const Tensor& x) const;  // [B, C, T, H, W] -> same
};

enum class ResampleMode { Upsample2d, Upsample3d, Downsample2d, Downsample3d };

// Resample(dim, mode) (docs/wan.md §3.3, cache rules §3.6):
//   upsample2d:   nearest x2 in H, W -> conv2d 3x3 pad 1, dim -> dim/2
//   upsample3d:   time_conv (3,1,1) dim -> 2*dim, channel halves interleaved as frames
//                 (skipped on the first chunk / for frame 0), then as upsample2d
//   downsample2d: zero pad right/bottom by 1 -> conv2d 3x3 stride 2, dim -> dim
//   downsample3d: as downsample2d, then time_conv (3,1,1) stride 2 over [last frame || frames]
//                 (frame 0 passes through)
struct Resample {
  ResampleMode mode = ResampleMode::Upsample2d;
  Tensor conv_w;      // resample.1.weight: [C_out, dim, 3, 3]
  Tensor conv_b;      // resample.1.bias:   [C_out]
  std::optional<CausalConv3d> time_conv;  // the 3d modes only

  // up_out: the upsample conv's output width (-1: dim / 2 as in Wan2.1; the Wan2.2 VAE keeps dim).
  void bind(const WeightScope& s, int dim, ResampleMode mode, int up_out = -1);
  Tensor forward(const Tensor& x, CausalCache* cache) const;
};

// A stage of the encoder (res blocks, then an optional downsample) or of the
// decoder (res blocks, then an optional upsample). The Wan2.2 VAE adds the stage's input
// through a parameter-free shortcut (wan_vae_residual.h).
struct VAEStage {
  std::vector<ResidualBlock> res_blocks;
  std::optional<Resample> resample;
  std::optional<AvgDownShortcut> avg_down;  // Wan2.2 encoder stages
  std::optional<DupUpShortcut> dup_up;      // Wan2.2 decoder stages that upsample
  Tensor forward(const Tensor& x, CausalCache* cache) const;
};

}  // namespace t2v
