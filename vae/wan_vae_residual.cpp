// The Wan2.2 VAE's own parts (wan_vae_residual.h). Follows Wan-Video/Wan2.2
// wan/modules/vae2_2.py (patchify, AvgDown3D, DupUp3D, Down_ResidualBlock,
// Up_ResidualBlock) and diffusers' autoencoder_kl_wan.py with is_residual=True, as
// written down in docs/wan.md §8.1.
#include "vae/wan_vae_residual.h"

#include <fmt/format.h>

#include "core/error.h"
#include "core/strings.h"
#include "kernels/ops.h"
#include "vae/wan_vae.h"

namespace t2v {

// ---- pixel patchify ----------------------------------------------------------------
// Two permutes of 5-D views: first the 2x2 offsets in front of the small grid inside each
// (b, c, f) plane, then the offsets in front of the frames.

Tensor vae_patchify(const Tensor& x, int p) {
  if (p == 1) return x;
  const int64_t B = x.size(0), C = x.size(1), F = x.size(2), H = x.size(3), W = x.size(4);
  T2V_ASSERT(H % p == 0 && W % p == 0, "patchify: {} is not a multiple of {}", x.shape().str(), p);
  const int64_t h = H / p, w = W / p;
  // [BCF, h, ky, w, kx] -> [BCF, kx, ky, h, w]
  Tensor y = ops::permute(x.reshape(Shape{B * C * F, h, p, w, p}), {0, 4, 2, 1, 3});
  // [BC, F, p*p, h*w] -> [BC, p*p, F, h*w]
  y = ops::permute(y.reshape(Shape{B * C, F, p * p, h * w}), {0, 2, 1, 3});
  return y.reshape(Shape{B, C * p * p, F, h, w});
}

Tensor vae_unpatchify(const Tensor& x, int p) {
  if (p == 1) return x;
  const int64_t B = x.size(0), CP = x.size(1), F = x.size(2), h = x.size(3), w = x.size(4);
  const int64_t C = CP / (p * p);
  T2V_ASSERT(C * p * p == CP, "unpatchify: {} channels for patch {}", CP, p);
  // [BC, p*p, F, h*w] -> [BC, F, p*p, h*w]
  Tensor y = ops::permute(x.reshape(Shape{B * C, p * p, F, h * w}), {0, 2, 1, 3});
  // [BCF, kx, ky, h, w] -> [BCF, h, ky, w, kx]
  y = ops::permute(y.reshape(Shape{B * C * F, p, p, h, w}), {0, 3, 2, 4, 1});
  return y.reshape(Shape{B, C, F, h * p, w * p});
}

// ---- space <-> channels ---------------------------------------------------------------

Tensor space_to_channels(const Tensor& x, int ft, int fs) {
  const int64_t B = x.size(0), C = x.size(1), T = x.size(2), H = x.size(3), W = x.size(4);
  T2V_ASSERT(T % ft == 0 && H % fs == 0 && W % fs == 0, "space_to_channels: {} by ({}, {})", x.shape().str(), ft, fs);
  const int64_t t = T / ft, h = H / fs, w = W / fs;
  // [BCT, h, ky, w, kx] -> [BCT, ky, kx, h, w]  (T = t*ft + kt stays outside)
  Tensor y = ops::permute(x.reshape(Shape{B * C * T, h, fs, w, fs}), {0, 2, 4, 1, 3});
  // [BC, t, kt*ky*kx, h*w] -> [BC, kt*ky*kx, t, h*w]
  y = ops::permute(y.reshape(Shape{B * C, t, ft * fs * fs, h * w}), {0, 2, 1, 3});
  return y.reshape(Shape{B, C * ft * fs * fs, t, h, w});
}

Tensor channels_to_space(const Tensor& x, int ft, int fs) {
  const int64_t B = x.size(0), CF = x.size(1), t = x.size(2), h = x.size(3), w = x.size(4);
  const int64_t f = static_cast<int64_t>(ft) * fs * fs, C = CF / f;
  T2V_ASSERT(C * f == CF, "channels_to_space: {} channels by ({}, {})", CF, ft, fs);
  // [BC, kt*ky*kx, t, h*w] -> [BC, t, kt*ky*kx, h*w]
  Tensor y = ops::permute(x.reshape(Shape{B * C, f, t, h * w}), {0, 2, 1, 3});
  // [BCT, ky, kx, h, w] -> [BCT, h, ky, w, kx]
  y = ops::permute(y.reshape(Shape{B * C * t * ft, fs, fs, h, w}), {0, 3, 1, 4, 2});
  return y.reshape(Shape{B, C, t * ft, h * fs, w * fs});
}

// ---- AvgDown3D / DupUp3D ---------------------------------------------------------------

Tensor AvgDownShortcut::forward(const Tensor& x_in) const {
  Tensor x = x_in;
  const int64_t T = x.size(2);
  // Zero frames in front up to a multiple of ft: in a chunked encode this is chunk 0 (one
  // frame); later chunks have an even number of frames. The whole sequence (1 + 2k frames)
  // gets the same single zero frame.
  const int64_t pad = (factor_t - T % factor_t) % factor_t;
  if (pad > 0) {
    Shape zs = x.shape();
    zs[2] = pad;
    x = ops::concat({Tensor::zeros(zs, x.dtype(), x.device()), x}, 2);
  }
  Tensor s = space_to_channels(x, factor_t, factor_s);  // [B, in*f, t, h, w]
  const int64_t B = s.size(0), t = s.size(2), h = s.size(3), w = s.size(4);
  const int64_t group = s.size(1) / out_channels;
  if (group == 1) return s;
  // Mean over each run of `group` consecutive channels: [B*out, group, t*h*w].
  const Tensor g = s.reshape(Shape{B * out_channels, group, t * h * w});
  Tensor sum = ops::slice(g, 1, 0, 1);
  for (int64_t i = 1; i < group; ++i) sum = ops::add(sum, ops::slice(g, 1, i, i + 1));
  return ops::scale(sum, static_cast<float>(1.0 / static_cast<double>(group)))
      .reshape(Shape{B, out_channels, t, h, w});
}

Tensor DupUpShortcut::forward(const Tensor& x, bool first_chunk) const {
  const int64_t B = x.size(0), C = x.size(1), T = x.size(2), H = x.size(3), W = x.size(4);
  const int64_t repeats = static_cast<int64_t>(out_channels) * factor_t * factor_s * factor_s / in_channels;
  Tensor rep = x;
  if (repeats > 1) {
    // repeat_interleave over channels: [B*C, 1, N] copied `repeats` times along dim 1.
    const Tensor one = x.reshape(Shape{B * C, 1, T * H * W});
    rep = ops::concat(std::vector<Tensor>(static_cast<size_t>(repeats), one), 1).reshape(Shape{B, C * repeats, T, H, W});
  }
  Tensor y = channels_to_space(rep, factor_t, factor_s);  // [B, out, T*ft, H*fs, W*fs]
  if (first_chunk && factor_t > 1) y = ops::slice(y, 2, factor_t - 1, y.size(2));
  return y;
}

// ---- binding ----------------------------------------------------------------------------

void bind_residual_encoder(WanVAEEncoder& enc, const WeightScope& s, const WanVAEConfig& cfg) {
  // Widths base * [1, dim_mult...]: e.g. 160, 160, 320, 640, 640 for Wan2.2_VAE.
  std::vector<int> dims{cfg.base_dim};
  for (int m : cfg.dim_mult) dims.push_back(cfg.base_dim * m);
  enc.patch = cfg.patch_size;
  enc.conv1.bind(s.pp("conv1"), cfg.in_channels, dims[0], {3, 3, 3}, {1, 1, 1});
  const size_t n = cfg.dim_mult.size();
  enc.stages.assign(n, {});
  for (size_t i = 0; i < n; ++i) {
    // Down_ResidualBlock i: num_res_blocks residual blocks, then (but the last) a downsample;
    // in parallel the AvgDown3D shortcut of its input (every stage, also the last, where it
    // is the identity and still adds the stage's input).
    const WeightScope list = s.pp("downsamples").pp(static_cast<int64_t>(i)).pp("downsamples");
    const bool down = i + 1 < n;
    const bool temporal = down && cfg.temperal_downsample[i];
    VAEStage& st = enc.stages[i];
    int in_dim = dims[i];
    for (int r = 0; r < cfg.num_res_blocks; ++r) {
      st.res_blocks.emplace_back();
      st.res_blocks.back().bind(list.pp(r), in_dim, dims[i + 1]);
      in_dim = dims[i + 1];
    }
    if (down) {
      st.resample.emplace();
      st.resample->bind(list.pp(cfg.num_res_blocks), dims[i + 1],
                        temporal ? ResampleMode::Downsample3d : ResampleMode::Downsample2d);
    }
    st.avg_down = AvgDownShortcut{dims[i], dims[i + 1], temporal ? 2 : 1, down ? 2 : 1};
  }
  const int c = dims.back();
  enc.middle_0.bind(s.pp("middle.0"), c, c);
  enc.middle_1.bind(s.pp("middle.1"), c);
  enc.middle_2.bind(s.pp("middle.2"), c, c);
  enc.head_0.bind(s.pp("head.0"), c, /*images=*/false);
  enc.head_2.bind(s.pp("head.2"), c, 2 * cfg.z_dim, {3, 3, 3}, {1, 1, 1});
}

void bind_residual_decoder(WanVAEDecoder& dec, const WeightScope& s, const WanVAEConfig& cfg) {
  // Widths dec_base * [dim_mult[-1], reversed(dim_mult)...]: 1024, 1024, 1024, 512, 256 for
  // Wan2.2_VAE. Unlike Wan2.1, the upsample conv keeps the width and the next stage takes it.
  const int base = cfg.decoder_base_dim;
  std::vector<int> dims{base * cfg.dim_mult.back()};
  for (auto it = cfg.dim_mult.rbegin(); it != cfg.dim_mult.rend(); ++it) dims.push_back(base * *it);
  dec.conv1.bind(s.pp("conv1"), cfg.z_dim, dims[0], {3, 3, 3}, {1, 1, 1});
  dec.middle_0.bind(s.pp("middle.0"), dims[0], dims[0]);
  dec.middle_1.bind(s.pp("middle.1"), dims[0]);
  dec.middle_2.bind(s.pp("middle.2"), dims[0], dims[0]);
  const std::vector<bool> temporal = cfg.temperal_upsample();
  const size_t n = cfg.dim_mult.size();
  dec.stages.assign(n, {});
  for (size_t i = 0; i < n; ++i) {
    // Up_ResidualBlock i: num_res_blocks + 1 residual blocks, then (but the last) an
    // upsample, plus the DupUp3D shortcut of its input (only where it upsamples).
    const WeightScope list = s.pp("upsamples").pp(static_cast<int64_t>(i)).pp("upsamples");
    const bool up = i + 1 < n;
    const bool t_up = up && temporal[i];
    VAEStage& st = dec.stages[i];
    int in_dim = dims[i];
    for (int r = 0; r <= cfg.num_res_blocks; ++r) {
      st.res_blocks.emplace_back();
      st.res_blocks.back().bind(list.pp(r), in_dim, dims[i + 1]);
      in_dim = dims[i + 1];
    }
    if (up) {
      st.resample.emplace();
      st.resample->bind(list.pp(cfg.num_res_blocks + 1), dims[i + 1],
                        t_up ? ResampleMode::Upsample3d : ResampleMode::Upsample2d, /*up_out=*/dims[i + 1]);
      st.dup_up = DupUpShortcut{dims[i], dims[i + 1], t_up ? 2 : 1, 2};
    }
  }
  const int c = dims.back();
  dec.head_0.bind(s.pp("head.0"), c, /*images=*/false);
  dec.head_2.bind(s.pp("head.2"), c, cfg.out_channels, {3, 3, 3}, {1, 1, 1});
}

// ---- diffusers names ----------------------------------------------------------------------

std::optional<ResidualStageKey> wan_vae_residual_stage_key(const WanVAEConfig& cfg, bool decoder,
                                                           const std::string& rest) {
  // "<list>.{i}.<list>.{j}.<tail>"
  const std::string list = decoder ? "upsamples." : "downsamples.";
  auto read_index = [](const std::string& s, size_t at, size_t* end) -> int {
    const size_t dot = s.find('.', at);
    if (dot == std::string::npos || dot == at || dot - at > 6) return -1;
    const std::string idx = s.substr(at, dot - at);
    if (idx.find_first_not_of("0123456789") != std::string::npos) return -1;
    *end = dot + 1;
    return std::stoi(idx);
  };
  if (!starts_with(rest, list)) return std::nullopt;
  size_t at = 0;
  const int i = read_index(rest, list.size(), &at);
  if (i < 0 || rest.compare(at, list.size(), list) != 0) return std::nullopt;
  const int j = read_index(rest, at + list.size(), &at);
  if (j < 0) return std::nullopt;
  const std::string tail = rest.substr(at);
  const int resnets = decoder ? cfg.num_res_blocks + 1 : cfg.num_res_blocks;
  const std::string blocks = decoder ? "up_blocks." : "down_blocks.";
  if (j < resnets) return ResidualStageKey{fmt::format("{}{}.resnets.{}.", blocks, i, j), tail, true};
  return ResidualStageKey{fmt::format("{}{}.{}.", blocks, i, decoder ? "upsampler" : "downsampler"), tail, false};
}

}  // namespace t2v
