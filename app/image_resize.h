// How Wan2.2 TI2V-5B brings an input image to the video size (docs/wan.md §8.4,
// Wan-Video/Wan2.2 textimage2video.py): output size = best_output_size(iw, ih, 32, 32,
// W*H); the image scaled by s = max(ow/iw, oh/ih) to (round(iw*s), round(ih*s)) with PIL's
// Lanczos filter, then centre-cropped to ow x oh. Reproduced exactly: PIL's resampling in
// its fixed-point arithmetic (bit-exact), Python's float floor division and round().
// The image itself is read by app/image_input (load_rgb_image), as for every model; the
// Wan2.1 I2V/FLF2V and Wan2.2 I2V-A14B sizes and bicubic resize are app/i2v_conditioning's.
#pragma once

#include <cstdint>
#include <utility>

#include "app/image_input.h"

namespace t2v {

// Python's float floor division a // b (b > 0) and round() (half to even).
double py_floordiv(double a, double b);
int64_t py_round(double x);

// Wan2.2's best_output_size(w, h, dw, dh, expected_area) -> (ow, oh), multiples of dw/dh.
// Error(64) when no multiple fits the area.
std::pair<int, int> best_output_size(int w, int h, int dw, int dh, int64_t expected_area);

// PIL Image.resize(size, Image.LANCZOS) of an RGB image: separable, support 3, the
// horizontal pass first (over the rows the vertical pass needs), coefficients normalised in
// double then fixed point with 22 fraction bits, rounded and clipped to uint8 per pass.
InputImage resize_lanczos_pil(const InputImage& in, int width, int height);
// The width x height window at (x0, y0).
InputImage crop(const InputImage& in, int x0, int y0, int width, int height);

// The TI2V-5B image and its size for --size W x H.
struct PreparedImage {
  InputImage image;                  // ow x oh (rgb_image_to_tensor gives the DiT's [-1, 1] input)
  int width = 0, height = 0;         // ow, oh
  int resized_w = 0, resized_h = 0;  // before the crop
};
PreparedImage prepare_ti2v_image(const InputImage& img, int width, int height);

}  // namespace t2v
