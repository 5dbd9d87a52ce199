// Image-to-video (I2V) and first-last-frame-to-video (FLF2V) conditioning, as the
// official WanI2V.generate / WanFLF2V.generate build it (docs/wan.md §5.1):
//   - the output size from an area budget and the input image's aspect ratio;
//   - the mask [4, T, h, w]: pixel frame 0 (and F-1 for FLF2V) known, frame 0 counted
//     four times, folded by 4 into latent frames;
//   - the conditioning video [3, F, H, W]: the input image bicubic-resized to the
//     output size, then zero frames (FLF2V: the last image last), VAE-encoded (mean,
//     normalised) -> [16, T, h, w];
//   - the CLIP features of the input image(s) at the encoder's own input size.
// The DiT then reads [noise 16 | mask 4 | image latents 16] and the CLIP features in
// both classifier-free-guidance passes.
#pragma once

#include <cstdint>
#include <optional>

#include "app/image_input.h"
#include "core/tensor.h"
#include "image_encoder/clip_vision.h"
#include "vae/wan_vae.h"

namespace t2v {

struct I2VSize {
  int width = 0, height = 0;  // pixels (multiples of vae_stride * patch)
  int64_t lat_w = 0, lat_h = 0;
};

// The official rule: aspect = H_img / W_img, lat_h = round(⌊⌊√(max_area·aspect) / vae_stride⌋ /
// patch⌋·patch), lat_w = round(⌊⌊√(max_area / aspect) / vae_stride⌋ / patch⌋·patch), in float64
// in that order; size = lat·vae_stride. Error(64) when a side comes out 0 (an extreme aspect
// ratio for the budget).
I2VSize i2v_output_size(int64_t max_area, int image_width, int image_height, int vae_stride = 8, int patch = 2);

// [4, T, lat_h, lat_w] F32 (CPU): 1 on every channel of latent frame 0; with `last_frame`
// (FLF2V) also channel 3 of the last latent frame; 0 elsewhere. frames = 4k + 1.
Tensor i2v_mask(int64_t frames, int64_t lat_h, int64_t lat_w, bool last_frame);

// [1, 3, F, H, W] F32 (CPU) in [-1, 1]: `first` ([3, h, w] in [-1, 1], any size) bicubic-
// resized to H x W as frame 0, zeros after it; with `last`, that image resized as frame F-1.
Tensor i2v_conditioning_video(const Tensor& first, const Tensor* last, int64_t frames, int height, int width);

// What the DiT reads besides the noise. Wan2.1 I2V/FLF2V: y and features; Wan2.2
// I2V-A14B (no image embedder): y only; Wan2.2 TI2V-5B: first_latent only.
struct I2VCondition {
  Tensor y;         // [1, 20, T, h, w]: mask (4) then normalised image latents (16), on the device
  Tensor features;  // [1, I, image_dim] CLIP features (FLF2V: first frame's tokens, then last's)
  // TI2V-5B: the image's normalised latent [1, 48, 1, h, w] F32, latent frame 0 of the
  // sample throughout, its tokens at timestep 0 (docs/wan.md §8.2).
  Tensor first_latent;
};

// The whole conditioning: CLIP features of the image(s) and the encoded conditioning
// video. `vae` must have its encoder; images are [3, h, w] in [-1, 1] (rgb_image_to_tensor).
I2VCondition i2v_condition(const ClipVisionEncoder& clip, const WanVAE& vae, const Tensor& first, const Tensor* last,
                           int64_t frames, const I2VSize& size);

// y alone: the mask and the encoded conditioning video, [1, 4 + z, T, h, w]. Wan2.2
// I2V-A14B builds it as Wan2.1 I2V does (wan/image2video.py of both), without CLIP.
Tensor i2v_image_latents(const WanVAE& vae, const Tensor& first, const Tensor* last, int64_t frames,
                         const I2VSize& size);

}  // namespace t2v
