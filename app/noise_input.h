// The --noise tensor (parity tests start denoising from given latents), checked from the
// file's header before any model weights load (docs/bad_inputs.md #77): the key, a float
// dtype and the exact shape the video needs; then its values are read and must be finite.
#pragma once

#include <string>

#include "core/tensor.h"

namespace t2v {

// The noise of `path` (key "noise", or the file's only tensor) as F32 `shape`
// ([1, C, T, h, w]; a stored [C, T, h, w] is accepted). Error(65) naming the file for
// a missing key, an integer dtype, another shape (even with the same element count) or a
// NaN/Inf value; the data is read only after the header passed.
Tensor read_noise(const std::string& path, const Shape& shape);

}  // namespace t2v
