// How the reference pipelines bring an input image to the video size (docs/wan.md §8.4):
//   TI2V-5B (Wan-Video/Wan2.2 textimage2video.py): output size = best_output_size(iw, ih,
//     32, 32, W*H); the image scaled by s = max(ow/iw, oh/ih) to (round(iw*s), round(ih*s))
//     with PIL's Lanczos filter, then centre-cropped to ow x oh.
//   I2V-A14B (image2video.py): h = 8*(floor(floor(sqrt(A*ih/iw)/8)/2)*2), w likewise with
//     iw/ih, A = W*H; the [-1, 1] image resized to h x w by torch's bicubic interpolate
//     (align_corners=False, no antialiasing).
// Both reproduced exactly: PIL's resampling in its fixed-point arithmetic (bit-exact),
// torch's bicubic in its float arithmetic, Python's float floor division and round().
#pragma once

#include <cstdint>
#include <utility>

#include "app/image_input.h"
#include "core/tensor.h"

namespace t2v {

// Python's float floor division a // b (b > 0) and round() (half to even).
double py_floordiv(double a, double b);
int64_t py_round(double x);

// Wan2.2's best_output_size(w, h, dw, dh, expected_area) -> (ow, oh), multiples of dw/dh.
std::pair<int, int> best_output_size(int w, int h, int dw, int dh, int64_t expected_area);

// PIL Image.resize(size, Image.LANCZOS) of an RGB image: separable, support 3, the
// horizontal pass first (over the rows the vertical pass needs), coefficients normalised in
// double then fixed point with 22 fraction bits, rounded and clipped to uint8 per pass.
RgbImage8 resize_lanczos_pil(const RgbImage8& in, int width, int height);
// The ow x oh window at (x0, y0).
RgbImage8 crop(const RgbImage8& in, int x0, int y0, int width, int height);

// (u8/255 - 0.5)/0.5 in fp32, as torchvision's to_tensor(...).sub_(0.5).div_(0.5):
// [1, 3, 1, H, W] F32 on the CPU.
Tensor image_to_video_tensor(const RgbImage8& img);

// torch.nn.functional.interpolate(x, size=(oh, ow), mode="bicubic", align_corners=False)
// of x [C, H, W] F32 (CPU): cubic convolution with A = -0.75, borders clamped.
Tensor resize_bicubic_torch(const Tensor& x, int out_h, int out_w);

// The TI2V-5B image and its size for --size W x H.
struct PreparedImage {
  RgbImage8 image;           // ow x oh
  int width = 0, height = 0;  // ow, oh
  int resized_w = 0, resized_h = 0;  // before the crop
};
PreparedImage prepare_ti2v_image(const RgbImage8& img, int width, int height);

// The I2V-A14B size (w, h) for an iw x ih image and max area A.
std::pair<int, int> a14b_i2v_size(int iw, int ih, int64_t max_area);

}  // namespace t2v
