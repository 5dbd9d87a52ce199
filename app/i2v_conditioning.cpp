// Image-to-video conditioning (see i2v_conditioning.h). Follows Wan-Video/Wan2.1
// wan/image2video.py and wan/first_last_frame2video.py; docs/wan.md §5.1.
#include "app/i2v_conditioning.h"

#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "core/error.h"
#include "core/image_resize.h"
#include "kernels/ops.h"

namespace t2v {

I2VSize i2v_output_size(int64_t max_area, int image_width, int image_height, int vae_stride, int patch) {
  // Python: aspect_ratio = h / w; round(np.sqrt(max_area * aspect_ratio) // stride // patch * patch),
  // float64 floor divisions in that order.
  const double aspect = static_cast<double>(image_height) / static_cast<double>(image_width);
  const double area = static_cast<double>(max_area);
  auto side = [&](double sq) {
    return static_cast<int64_t>(std::nearbyint(std::floor(std::floor(sq / vae_stride) / patch) * patch));
  };
  I2VSize s;
  s.lat_h = side(std::sqrt(area * aspect));
  s.lat_w = side(std::sqrt(area / aspect));
  if (s.lat_h <= 0 || s.lat_w <= 0)
    throw Error(kExitUsage,
                fmt::format("an input image of {}x{} has too extreme an aspect ratio for the area of --size ({} "
                            "pixels): the video would be {}x{}",
                            image_width, image_height, max_area, s.lat_w * vae_stride, s.lat_h * vae_stride),
                "crop the image closer to the video's shape, or give a larger --size");
  s.height = static_cast<int>(s.lat_h * vae_stride);
  s.width = static_cast<int>(s.lat_w * vae_stride);
  return s;
}

Tensor i2v_mask(int64_t frames, int64_t lat_h, int64_t lat_w, bool last_frame) {
  T2V_ASSERT(frames >= 1 && (frames - 1) % 4 == 0, "frames {}", frames);
  // Per pixel frame: 1 where the frame is given. Frame 0 is repeated 4 times so the
  // F + 3 entries fold into (F + 3) / 4 = T latent frames of 4 channels.
  std::vector<float> known(static_cast<size_t>(frames + 3), 0.0f);
  for (int i = 0; i < 4; ++i) known[static_cast<size_t>(i)] = 1.0f;
  if (last_frame) known.back() = 1.0f;
  const int64_t T = (frames + 3) / 4, plane = lat_h * lat_w;
  Tensor m = Tensor::zeros(Shape{4, T, lat_h, lat_w}, DType::F32);
  float* p = m.data<float>();
  for (int64_t c = 0; c < 4; ++c)
    for (int64_t t = 0; t < T; ++t)
      if (known[static_cast<size_t>(t * 4 + c)] != 0.0f) std::fill_n(p + (c * T + t) * plane, plane, 1.0f);
  return m;
}

Tensor i2v_conditioning_video(const Tensor& first, const Tensor* last, int64_t frames, int height, int width) {
  const int64_t plane = static_cast<int64_t>(height) * width;
  Tensor v = Tensor::zeros(Shape{1, 3, frames, height, width}, DType::F32);
  float* p = v.data<float>();
  auto put = [&](const Tensor& img, int64_t f) {
    // F.interpolate(img[None], size=(h, w), mode='bicubic') of the [-1, 1] image, unclamped.
    const Tensor r = resize_bicubic(img, height, width);  // [3, H, W]
    const float* q = r.data<float>();
    for (int64_t c = 0; c < 3; ++c) std::memcpy(p + (c * frames + f) * plane, q + c * plane, plane * sizeof(float));
  };
  put(first, 0);
  if (last) put(*last, frames - 1);
  return v;
}

I2VCondition i2v_condition(const ClipVisionEncoder& clip, const WanVAE& vae, const Tensor& first, const Tensor* last,
                           int64_t frames, const I2VSize& size) {
  I2VCondition c;
  // CLIP: each image at its own size, squashed to the encoder's input (CLIPModel.visual).
  std::vector<Tensor> feats;
  for (const Tensor* img : {&first, last}) {
    if (!img) continue;
    const Tensor pixels = clip_vision_preprocess(img->reshape(Shape{1, 3, img->size(1), img->size(2)}), clip.config());
    feats.push_back(clip.forward(pixels));  // [1, N, D]
  }
  c.features = feats.size() == 1 ? feats[0] : ops::concat(feats, 1);  // FLF2V: [1, 2N, D]
  c.y = i2v_image_latents(vae, first, last, frames, size);
  return c;
}

Tensor i2v_image_latents(const WanVAE& vae, const Tensor& first, const Tensor* last, int64_t frames,
                         const I2VSize& size) {
  // VAE: [first, zeros..., (last)] encoded, mean only, normalised.
  const Tensor video = i2v_conditioning_video(first, last, frames, size.height, size.width);
  const WanVAEEncoding enc = vae.encode(vae.to_compute(video));
  Tensor lat = wan_vae_normalize_latents(enc.mean, vae.config);  // [1, 16, T, h, w]
  if (lat.dtype() != DType::F32) lat = ops::cast(lat, DType::F32);
  const Tensor mask = i2v_mask(frames, size.lat_h, size.lat_w, last != nullptr);
  const Tensor m = mask.reshape(Shape{1, 4, mask.size(1), size.lat_h, size.lat_w}).to(lat.device());
  return ops::concat({m, lat}, 1);  // [1, 20, T, h, w]
}

}  // namespace t2v
