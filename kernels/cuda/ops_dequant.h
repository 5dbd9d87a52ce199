// The packed (GGUF block) weights of core/weights.h dequantized on the GPU
// (kernels/cuda/dequant.h). Test: tests/cuda/test_dequant_cuda.cpp.
#pragma once

#include "core/weights.h"

namespace t2v::ops::cuda {

// The weight [N, K] as F32 on the CUDA device, bit-exact to core/quant.h's
// dequantize (its blocks are copied to the device first when they live on the CPU).
Tensor dequantize_packed(const PackedWeight& w);

}  // namespace t2v::ops::cuda
