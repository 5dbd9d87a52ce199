// PyTorch's bicubic interpolation (aten/src/ATen/native/UpSample.h and the CPU
// kernel in UpSampleKernel.cpp), reproduced in float32 in the same order so the
// results agree to the last bits. Tested against torch on random images of
// several sizes, up and down (tests/core/test_image_resize.cpp).
#include "core/image_resize.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include <fmt/format.h>

namespace t2v {

namespace {

// Keys' cubic convolution kernel with A = -0.75 (PyTorch's choice; PIL uses -0.5).
// PyTorch's CPU build contracts these polynomials into multiply-adds; std::fma gives
// the same single roundings on every machine (this file is built with
// -ffp-contract=off so the compiler adds no others).
constexpr float kA = -0.75f;
float cubic_near(float x) {  // |x| <= 1: ((A + 2)·x − (A + 3))·x·x + 1
  return std::fma(std::fma(kA + 2.0f, x, -(kA + 3.0f)) * x, x, 1.0f);
}
float cubic_far(float x) {  // 1 < |x| < 2: ((A·x − 5A)·x + 8A)·x − 4A
  return std::fma(std::fma(std::fma(kA, x, -5.0f * kA), x, 8.0f * kA), x, -4.0f * kA);
}

// The four taps of one output coordinate: clamped source indices and weights.
struct Taps {
  std::array<int64_t, 4> index;
  std::array<float, 4> weight;
};

std::vector<Taps> taps_for(int64_t in, int64_t out) {
  // area_pixel_compute_scale: in/out in float32 when no scale factor is given.
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  std::vector<Taps> taps(static_cast<size_t>(out));
  for (int64_t d = 0; d < out; ++d) {
    // area_pixel_compute_source_index with cubic = true: no clamp at 0. PyTorch's CPU
    // build fuses scale·(d + 0.5) − 0.5 into one multiply-add (one rounding); fmaf gives
    // that rounding on every machine, and the coordinate decides the weights.
    const float src = std::fma(scale, static_cast<float>(d) + 0.5f, -0.5f);
    const float fl = std::floor(src);
    const auto i0 = static_cast<int64_t>(fl);
    const float t = src - fl;
    Taps& tp = taps[static_cast<size_t>(d)];
    tp.weight = {cubic_far(t + 1.0f), cubic_near(t), cubic_near(1.0f - t), cubic_far(2.0f - t)};
    for (int k = 0; k < 4; ++k) tp.index[k] = std::clamp<int64_t>(i0 - 1 + k, 0, in - 1);
  }
  return taps;
}

}  // namespace

Tensor resize_bicubic(const Tensor& x, int64_t out_h, int64_t out_w) {
  T2V_ASSERT(x.defined() && x.device() == Device::CPU && x.dtype() == DType::F32 && x.dim() >= 2,
             "resize_bicubic takes a CPU F32 tensor [..., H, W], got {}", x.defined() ? x.str() : "undefined");
  T2V_ASSERT(out_h > 0 && out_w > 0, "resize_bicubic to {}x{}", out_h, out_w);
  const int64_t H = x.size(-2), W = x.size(-1);
  T2V_ASSERT(H > 0 && W > 0, "resize_bicubic of an empty image {}", x.str());
  std::vector<int64_t> dims = x.shape().vec();
  dims[dims.size() - 2] = out_h;
  dims[dims.size() - 1] = out_w;
  Tensor out = Tensor::empty(Shape(dims), DType::F32);
  const int64_t planes = x.numel() / (H * W);
  const std::vector<Taps> ty = taps_for(H, out_h), tx = taps_for(W, out_w);
  const float* src = x.data<float>();
  float* dst = out.data<float>();
#pragma omp parallel for collapse(2) if (planes * out_h * out_w > 65536)
  for (int64_t p = 0; p < planes; ++p) {
    for (int64_t oy = 0; oy < out_h; ++oy) {
      const float* plane = src + p * H * W;
      const Taps& ry = ty[static_cast<size_t>(oy)];
      float* row = dst + (p * out_h + oy) * out_w;
      for (int64_t ox = 0; ox < out_w; ++ox) {
        const Taps& rx = tx[static_cast<size_t>(ox)];
        // PyTorch's nesting: the outer sum runs over rows, each term a sum over columns,
        // accumulated left to right in float32 with multiply-adds, as PyTorch's build does.
        float acc = 0.0f;
        for (int j = 0; j < 4; ++j) {
          const float* line = plane + ry.index[j] * W;
          float s = line[rx.index[0]] * rx.weight[0];
          for (int i = 1; i < 4; ++i) s = std::fma(line[rx.index[i]], rx.weight[i], s);
          acc = j == 0 ? s * ry.weight[0] : std::fma(s, ry.weight[j], acc);
        }
        row[ox] = acc;
      }
    }
  }
  return out;
}

}  // namespace t2v
