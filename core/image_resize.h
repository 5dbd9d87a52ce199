// Image resampling as PyTorch computes it, for preprocessing on the host: the Wan
// image-to-video code resizes its input with torch.nn.functional.interpolate
// (docs/wan.md §5.1), and the conditioning must see the same pixels.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace t2v {

// F.interpolate(x, size=(out_h, out_w), mode="bicubic", align_corners=False,
// antialias=False) on planar float images: x [..., H, W] F32 on the CPU (any
// leading dims, e.g. [3, H, W] or [B, 3, H, W]) -> [..., out_h, out_w].
//
// Semantics (PyTorch's CPU kernel, float inputs): source coordinate
// s = scale·(d + 0.5) − 0.5 with scale = H/out_h in float32 (no clamp at 0 for
// cubic), taps floor(s) − 1 .. floor(s) + 2 clamped to the border, Keys' cubic
// convolution with A = −0.75 on t = s − floor(s), rows weighted over column sums,
// every step in float32 in PyTorch's order. No antialiasing when shrinking, no
// clamp of the result (overshoot stays). Sizes must be positive (Error 70).
Tensor resize_bicubic(const Tensor& x, int64_t out_h, int64_t out_w);

}  // namespace t2v
