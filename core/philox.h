// Philox4x32-10 counter-based generator. Normal samples are indexed by element:
// value i depends only on (seed, i), never on thread count or device.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace t2v {

struct Philox4x32 {
  // One Philox4x32-10 block: 4 x 32-bit outputs for a 128-bit counter and 64-bit key.
  static void block(uint32_t out[4], const uint32_t counter[4], const uint32_t key[2]);
};

// Standard normal N(0,1) value for element `index` of the stream `seed`: Box-Muller
// on the first two outputs of the block at counter (index lo, index hi, 0, 0) with
// key (seed lo, seed hi), as uniforms in (0, 1], computed in double and rounded to
// fp32 (exact formula in philox.cpp).
float philox_normal(uint64_t seed, uint64_t index);

// A CPU F32 tensor filled with philox_normal(seed, i) for i = 0..numel-1 (OpenMP).
Tensor randn_philox(const Shape& shape, uint64_t seed);

}  // namespace t2v
