// Wan2.1 VAE building blocks. Follows the semantics of the reference
// (Wan-Video/Wan2.1 wan/modules/vae.py) and diffusers' autoencoder_kl_wan.py as
// written down in docs/wan.md §3.3 and §3.6.
#include "vae/wan_vae_modules.h"

#include <cmath>

#include "kernels/ops.h"

namespace t2v {

namespace {

int64_t frames_of(const Tensor& x) { return x.size(2); }

// [B, 2C, T, H, W] -> [B, C, 2T, H, W]: frame 2t takes channels [0, C) of time t,
// frame 2t+1 channels [C, 2C) (upsample3d's time conv output, docs/wan.md §3.3).
Tensor interleave_channel_halves_as_frames(const Tensor& x) {
  const int64_t B = x.size(0), C2 = x.size(1), T = x.size(2), H = x.size(3), W = x.size(4);
  const int64_t C = C2 / 2;
  std::vector<Tensor> per_batch;
  per_batch.reserve(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    Tensor xb = x.narrow0(b, 1).reshape(Shape{2, C, T, H * W});  // [2, C, T, HW]
    Tensor yb = ops::permute(xb, {1, 2, 0, 3});                       // [C, T, 2, HW]
    per_batch.push_back(yb.reshape(Shape{1, C, 2 * T, H, W}));
  }
  return B == 1 ? per_batch[0] : ops::concat(per_batch, 0);
}

}  // namespace

// ---- CausalCache -------------------------------------------------------------------

CausalSlot& CausalCache::next() {
  if (cursor_ == slots_.size()) slots_.emplace_back();
  return slots_[cursor_++];
}

size_t CausalCache::bytes() const {
  size_t n = 0;
  for (const CausalSlot& s : slots_) n += s.frames.defined() ? s.frames.nbytes() : 0;
  return n;
}

// ---- CausalConv3d ------------------------------------------------------------------

void CausalConv3d::bind(const WeightScope& s, int c_in, int c_out, std::array<int, 3> kernel,
                        std::array<int, 3> padding, int stride) {
  weight = s.get("weight", Shape{c_out, c_in, kernel[0], kernel[1], kernel[2]});
  bias = s.get("bias", Shape{c_out});
  pad_front = 2 * padding[0];
  pad_h = padding[1];
  pad_w = padding[2];
  stride_t = stride;
}

Tensor CausalConv3d::forward(const Tensor& x, CausalSlot* slot) const {
  ops::Conv3dParams p;
  p.stride = {stride_t, 1, 1};
  p.pad_h = pad_h;
  p.pad_w = pad_w;
  if (slot == nullptr) {
    p.pad_t_front = pad_front;
    return ops::conv3d(x, weight, bias, p);
  }
  T2V_ASSERT(pad_front > 0, "only convs with temporal context use a cache slot");
  // The cached frames replace that many zero frames of the front padding.
  Tensor input = slot->frames.defined() ? ops::concat({slot->frames, x}, 2) : x;
  p.pad_t_front = pad_front - static_cast<int>(slot->frames.defined() ? frames_of(slot->frames) : 0);
  T2V_ASSERT(p.pad_t_front >= 0);
  Tensor y = ops::conv3d(input, weight, bias, p);
  // Keep the last pad_front input frames: exactly the history the next chunk needs.
  const int64_t t = frames_of(input);
  slot->frames = ops::slice(input, 2, std::max<int64_t>(0, t - pad_front), t);
  return y;
}

// ---- RMSNorm -----------------------------------------------------------------------

void RMSNorm::bind(const WeightScope& s, int channels, bool images) {
  // An fp32 island: the op computes the statistics in fp32 and scales by an fp32 gamma.
  gamma = s.get("gamma", images ? Shape{channels, 1, 1} : Shape{channels, 1, 1, 1}, WeightPrecision::F32);
}

Tensor RMSNorm::forward(const Tensor& x) const { return ops::rms_norm_channels(x, gamma, 1e-12f); }

// ---- ResidualBlock -----------------------------------------------------------------

void ResidualBlock::bind(const WeightScope& s, int in_dim, int out_dim) {
  norm1.bind(s.pp("residual.0"), in_dim, /*images=*/false);
  conv1.bind(s.pp("residual.2"), in_dim, out_dim, {3, 3, 3}, {1, 1, 1});
  norm2.bind(s.pp("residual.3"), out_dim, false);
  conv2.bind(s.pp("residual.6"), out_dim, out_dim, {3, 3, 3}, {1, 1, 1});
  if (in_dim != out_dim) {
    shortcut.emplace();
    shortcut->bind(s.pp("shortcut"), in_dim, out_dim, {1, 1, 1}, {0, 0, 0});
  }
}

Tensor ResidualBlock::forward(const Tensor& x, CausalCache* cache) const {
  Tensor h = shortcut ? shortcut->forward(x, nullptr) : x;  // 1x1x1: no temporal context, no slot
  Tensor y = ops::silu(norm1.forward(x));
  y = conv1.forward(y, cache ? &cache->next() : nullptr);
  y = ops::silu(norm2.forward(y));
  // Dropout is the identity at inference.
  y = conv2.forward(y, cache ? &cache->next() : nullptr);
  return ops::add(y, h);
}

// ---- AttentionBlock ----------------------------------------------------------------

void AttentionBlock::bind(const WeightScope& s, int dim) {
  channels = dim;
  norm.bind(s.pp("norm"), dim, /*images=*/true);
  // 1x1 Conv2d weights are Linear weights with two trailing singleton dims.
  to_qkv_w = s.get("to_qkv.weight", Shape{3 * dim, dim, 1, 1});
  to_qkv_b = s.get("to_qkv.bias", Shape{3 * dim});
  proj_w = s.get("proj.weight", Shape{dim, dim, 1, 1});
  proj_b = s.get("proj.bias", Shape{dim});
  if (to_qkv_w.defined()) to_qkv_w = to_qkv_w.reshape(Shape{3 * dim, dim});
  if (proj_w.defined()) proj_w = proj_w.reshape(Shape{dim, dim});
}

Tensor AttentionBlock::forward(const Tensor& x) const {
  const int64_t B = x.size(0), C = x.size(1), T = x.size(2), H = x.size(3), W = x.size(4);
  const int64_t N = H * W;
  // Tokens per frame: [B, C, T, H, W] -> [B*T, H*W, C]; frames never attend to each other.
  Tensor tokens = ops::permute(norm.forward(x), {0, 2, 3, 4, 1}).reshape(Shape{B * T, N, C});
  Tensor qkv = ops::linear(tokens, to_qkv_w, to_qkv_b);  // [B*T, N, 3C]: q | k | v along channels
  Tensor q = ops::slice(qkv, 2, 0, C).reshape(Shape{B * T, N, 1, C});
  Tensor k = ops::slice(qkv, 2, C, 2 * C).reshape(Shape{B * T, N, 1, C});
  Tensor v = ops::slice(qkv, 2, 2 * C, 3 * C).reshape(Shape{B * T, N, 1, C});
  ops::AttentionParams p;
  p.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(C)));
  Tensor o = ops::attention(q, k, v, p).reshape(Shape{B * T, N, C});
  o = ops::linear(o, proj_w, proj_b);                                       // [B*T, N, C]
  o = ops::permute(o.reshape(Shape{B, T, H, W, C}), {0, 4, 1, 2, 3});  // [B, C, T, H, W]
  return ops::add(x, o);
}

// ---- Resample ----------------------------------------------------------------------

void Resample::bind(const WeightScope& s, int dim, ResampleMode m, int up_out) {
  mode = m;
  const bool up = m == ResampleMode::Upsample2d || m == ResampleMode::Upsample3d;
  const int c_out = up ? (up_out > 0 ? up_out : dim / 2) : dim;  // Wan2.1: upsampling convs halve the channels
  conv_w = s.get("resample.1.weight", Shape{c_out, dim, 3, 3});
  conv_b = s.get("resample.1.bias", Shape{c_out});
  if (m == ResampleMode::Upsample3d) {
    time_conv.emplace();
    time_conv->bind(s.pp("time_conv"), dim, 2 * dim, {3, 1, 1}, {1, 0, 0});
  } else if (m == ResampleMode::Downsample3d) {
    time_conv.emplace();
    time_conv->bind(s.pp("time_conv"), dim, dim, {3, 1, 1}, {0, 0, 0}, /*stride_t=*/2);
  }
}

Tensor Resample::forward(const Tensor& x_in, CausalCache* cache) const {
  Tensor x = x_in;
  if (mode == ResampleMode::Upsample3d) {
    if (cache) {
      // Chunk 0 skips the time conv (1 frame stays 1 frame); chunk 1 runs it with
      // zero history (frame 0 is never part of it); later chunks use the cache.
      CausalSlot& slot = cache->next();
      if (!slot.seen)
        slot.seen = true;
      else
        x = interleave_channel_halves_as_frames(time_conv->forward(x, &slot));
    } else if (frames_of(x) > 1) {
      // Whole sequence: y0 bypasses; a causal conv over [y1 ... y_{n-1}] doubles the rest.
      Tensor rest = ops::slice(x, 2, 1, frames_of(x));
      x = ops::concat({ops::slice(x, 2, 0, 1), interleave_channel_halves_as_frames(time_conv->forward(rest, nullptr))},
                      2);
    }
  }

  const int64_t B = x.size(0), C = x.size(1), T = x.size(2), H = x.size(3), W = x.size(4);
  const int64_t c_out = conv_w.size(0);
  if (mode == ResampleMode::Upsample2d || mode == ResampleMode::Upsample3d) {
    // Per frame: nearest x2 then a 3x3 conv, run as a (1,3,3) conv3d so no frame transpose is needed.
    ops::Conv3dParams p;
    p.pad_h = p.pad_w = 1;
    return ops::conv3d(ops::upsample_nearest2x(x), conv_w.reshape(Shape{c_out, C, 1, 3, 3}), conv_b, p);
  }

  // Downsample: zero pad right and bottom by one, 3x3 stride-2 conv per frame.
  ops::Conv2dParams p2;
  p2.stride = {2, 2};
  p2.pad_bottom = 1;
  p2.pad_right = 1;
  Tensor frames = ops::permute(x, {0, 2, 1, 3, 4}).reshape(Shape{B * T, C, H, W});
  Tensor y = ops::conv2d(frames, conv_w, conv_b, p2);  // [B*T, C, H/2, W/2]
  const int64_t h2 = y.size(2), w2 = y.size(3);
  x = ops::permute(y.reshape(Shape{B, T, c_out, h2, w2}), {0, 2, 1, 3, 4});  // [B, C, T, H/2, W/2]
  if (mode != ResampleMode::Downsample3d) return x;

  if (cache) {
    // Chunk 0 passes through and is remembered; later chunks run the stride-2 time
    // conv over [last remembered frame || chunk] and remember the chunk's last frame.
    CausalSlot& slot = cache->next();
    if (!slot.seen) {
      slot.seen = true;
      slot.frames = ops::slice(x, 2, T - 1, T);
      return x;
    }
    Tensor input = ops::concat({slot.frames, x}, 2);
    slot.frames = ops::slice(x, 2, T - 1, T);
    return time_conv->forward(input, nullptr);
  }
  // Whole sequence [z0 ... z_2m] -> [z0, tc(z0,z1,z2), tc(z2,z3,z4), ...].
  Tensor first = ops::slice(x, 2, 0, 1);
  if (T < 3) return first;
  return ops::concat({first, time_conv->forward(x, nullptr)}, 2);
}

// ---- VAEStage ----------------------------------------------------------------------

Tensor VAEStage::forward(const Tensor& x_in, CausalCache* cache) const {
  Tensor x = x_in;
  for (const ResidualBlock& rb : res_blocks) x = rb.forward(x, cache);
  if (resample) x = resample->forward(x, cache);
  if (avg_down) x = ops::add(x, avg_down->forward(x_in));
  // The whole-sequence form drops the shortcut's leading frame as chunk 0 does (docs/wan.md §8.1).
  if (dup_up) x = ops::add(x, dup_up->forward(x_in, cache ? cache->first_chunk() : true));
  return x;
}

}  // namespace t2v
