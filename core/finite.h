// Finding NaN and Inf: in weights as they load (one vectorised pass over each converted
// tensor) and in what each pipeline stage hands to the next, so a non-finite value is an
// error naming where it came from instead of a black or noisy video written with exit 0
// (docs/bad_inputs.md #19).
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace t2v {

// Index of the first NaN or Inf element of a contiguous CPU tensor of a float dtype (F32,
// F16, BF16, F8_E4M3, F8_E5M2), or -1 when all are finite (integer tensors: always -1).
// Tests the exponent bits only (no float compares), in parallel blocks.
int64_t first_non_finite(const Tensor& t);

// The same for a tensor on any device (copied to the CPU first when it is not there).
int64_t first_non_finite_anywhere(const Tensor& t);

}  // namespace t2v
