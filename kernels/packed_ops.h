// Ops on packed (block-quantized) weights: PackedWeight, core/weights.h, as a
// GGUF stores them (core/quant.h). CPU only: the loader keeps weights packed only
// for fp32 compute on the CPU and hands other backends dequantized weights.
#pragma once

#include "core/weights.h"

namespace t2v::ops {

// y = x·Wᵀ + b for W [N, K] in a block format. W is dequantized tile by tile to
// exactly the fp32 values the reference dequantizer gives and multiplied with the
// fp32 activations, accumulating in fp32 (no quantized activations): the result
// equals ops::linear(x, dequantized W, b).
// x [..., K] F32 on the CPU, bias [N] F32 or undefined -> [..., N] F32.
// Error(70) for inconsistent arguments, as the other ops.
Tensor linear_packed(const Tensor& x, const PackedWeight& w, const Tensor& bias = {});

}  // namespace t2v::ops
