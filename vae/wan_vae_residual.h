// The parts of the Wan2.2 VAE (Wan2.2_VAE.pth / diffusers AutoencoderKLWan with
// is_residual = true) that the Wan2.1 VAE does not have (docs/wan.md §8.1):
//   - the 2x2 pixel patchify before the encoder and unpatchify after the decoder
//     (3 RGB channels <-> 12 channels at half the size);
//   - the parameter-free shortcuts of the residual down/up blocks, which move space
//     (and time) into channels and back: AvgDown3D (channels of each group averaged)
//     and DupUp3D (channels repeated, then spread over space and time);
//   - the block structure (encoder.downsamples.{i}.downsamples.{j},
//     decoder.upsamples.{i}.upsamples.{j}) and its diffusers names
//     (down_blocks.{i}.resnets.{j} / .downsampler, up_blocks.{i}.resnets.{j} / .upsampler).
// Everything is permutes and elementwise ops on views of at most 5 dims, so it runs on
// every backend.
//
// Shapes: [B, C, T, H, W] (PyTorch order).
#pragma once

#include <optional>
#include <string>

#include "core/tensor.h"
#include "core/weights.h"

namespace t2v {

struct WanVAEConfig;
struct WanVAEEncoder;
struct WanVAEDecoder;

// Pixel patchify as the Wan2.2 VAE does it ("b c f (h q) (w r) -> b (c r q) f h w"):
// x [B, C, F, p*h, p*w] -> [B, C*p*p, F, h, w] with channel c*p*p + kx*p + ky holding
// pixel (p*y + ky, p*x + kx) — the column offset before the row offset.
Tensor vae_patchify(const Tensor& x, int p);
// The inverse: [B, C*p*p, F, h, w] -> [B, C, F, p*h, p*w].
Tensor vae_unpatchify(const Tensor& x, int p);

// Space (and time) into channels: x [B, C, T, H, W] with T % ft == 0, H and W % fs == 0
// -> [B, C*ft*fs*fs, T/ft, H/fs, W/fs], channel ((c*ft + kt)*fs + ky)*fs + kx holding
// x[c, t*ft + kt, y*fs + ky, x*fs + kx].
Tensor space_to_channels(const Tensor& x, int ft, int fs);
// The inverse.
Tensor channels_to_space(const Tensor& x, int ft, int fs);

// AvgDown3D(in, out, ft, fs): zero frames in front up to a multiple of ft, space/time to
// channels, then the mean over each run of in*ft*fs*fs/out consecutive channels.
struct AvgDownShortcut {
  int in_channels = 0, out_channels = 0, factor_t = 1, factor_s = 1;
  Tensor forward(const Tensor& x) const;  // [B, in, T, H, W] -> [B, out, ceil(T/ft), H/fs, W/fs]
};

// DupUp3D(in, out, ft, fs): each channel repeated out*ft*fs*fs/in times, then channels to
// space/time; on the first chunk of a chunked decode (and in the whole-sequence form) the
// first ft-1 frames are dropped, so one latent frame stays one frame as in the main path.
struct DupUpShortcut {
  int in_channels = 0, out_channels = 0, factor_t = 1, factor_s = 1;
  Tensor forward(const Tensor& x, bool first_chunk) const;  // [B, in, T, H, W] -> [B, out, T*ft (- ft+1), ...]
};

// Binds the residual (Wan2.2) encoder / decoder at their original keys.
void bind_residual_encoder(WanVAEEncoder& enc, const WeightScope& s, const WanVAEConfig& cfg);
void bind_residual_decoder(WanVAEDecoder& dec, const WeightScope& s, const WanVAEConfig& cfg);

// Where a key inside the stage lists of the residual VAE lives in diffusers: `rest` is the
// part after "encoder." / "decoder." ("downsamples.{i}.downsamples.{j}.<tail>" /
// "upsamples.{i}.upsamples.{j}.<tail>"). Residual blocks go to
// "down_blocks.{i}.resnets.{j}." / "up_blocks.{i}.resnets.{j}." (their tail renamed by the
// caller's residual-block table), resamples to "down_blocks.{i}.downsampler." /
// "up_blocks.{i}.upsampler." (tail kept). nullopt for any other key.
struct ResidualStageKey {
  std::string prefix;  // e.g. "up_blocks.1.resnets.2."
  std::string tail;    // e.g. "residual.0.gamma"
  bool resnet = false;
};
std::optional<ResidualStageKey> wan_vae_residual_stage_key(const WanVAEConfig& cfg, bool decoder,
                                                           const std::string& rest);

}  // namespace t2v
