// Live previews of a render in progress, without the VAE: a fixed linear map of the C latent
// channels to RGB plus a bias, applied to the model's current estimate of the clean latents
// x0 = sample - sigma * velocity in the DiT's (normalised) latent space, clamped to [-1, 1] and
// scaled to 0..255, the same convention as ComfyUI's Latent2RGB previewer. One latent pixel
// covers a VAE-factor block of pixels, so the result is upsampled to a viewable size.
//
// The map comes from `latent_rgb.json` beside the model (fitted per VAE by
// tools/fit_latent_rgb.py), else, for 16-channel latents, the published Wan2.1 table
// (ComfyUI comfy/latent_formats.py, class Wan21). docs/serve.md describes both.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "app/denoise_observer.h"

namespace t2v {

struct LatentRgbMap {
  std::vector<std::array<double, 3>> factors;  // [C][R, G, B]
  std::array<double, 3> bias{};
  std::string source;  // the file it was read from, or the built-in table's origin
  int channels() const { return static_cast<int>(factors.size()); }
};

// ComfyUI's Wan21.latent_rgb_factors and latent_rgb_factors_bias (16 channels).
LatentRgbMap wan21_latent_rgb_map();

// Reads a latent_rgb.json: {"factors": [[r, g, b] x C], "bias": [r, g, b], ...}. Error(78)
// naming the file and key when it is malformed (not finite, ragged, no channels).
LatentRgbMap read_latent_rgb_map(const std::string& path);

// The map for a model: latent_rgb.json in `model_folder` (--model or the default model; may be
// ""), else beside the VAE weights (`vae_path` itself when a folder, else the folder holding it),
// else the Wan2.1 table. Whether it fits the model's channel count is only known at the first
// step (LivePreview checks).
LatentRgbMap find_latent_rgb_map(const std::string& model_folder, const std::string& vae_path);

// RGB24 [h, w, 3] of latent frame `t` of x0 = sample - sigma * velocity, both [C, T, h, w] F32
// on the host. Each output channel is sum_c x0[c] * factors[c][k] + bias[k], accumulated in
// double, clamped to [-1, 1] and rounded to (v + 1) * 127.5.
std::vector<uint8_t> latent_frame_rgb(const float* sample, const float* velocity, double sigma, int C, int T, int h,
                                      int w, int t, const LatentRgbMap& map);

// Writes the preview PNG of a render every `every` steps and at the last step: up to four
// latent frames spread over the video, side by side, each scaled to the video's aspect with its
// long side in 128..256 pixels. The file is replaced atomically each time. It never throws: a
// preview that cannot be made is logged once and the render goes on.
class LivePreview {
 public:
  LivePreview(LatentRgbMap map, std::string path, int every);
  // True when this step wrote the file.
  bool on_step(const DenoiseStep& s);
  // The PNG bytes for this step (no file), or nullopt when the map does not fit the latents.
  std::optional<std::vector<uint8_t>> render_png(const DenoiseStep& s);
  int last_step() const { return last_step_; }  // 0 until a preview was written
  const std::string& path() const { return path_; }
  const LatentRgbMap& map() const { return map_; }
  StepObserver observer();

 private:
  LatentRgbMap map_;
  std::string path_;
  int every_;
  int last_step_ = 0;
  bool warned_ = false;
};

}  // namespace t2v
