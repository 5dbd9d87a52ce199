// The CPU reference of the ops on packed (block-quantized) weights,
// kernels/packed_ops.h. Same contract as kernels/cpu/ops_cpu.h: the arguments
// were checked by the public op.
#pragma once

#include "core/weights.h"

namespace t2v::ops::cpu {

Tensor linear_packed(const Tensor& x, const PackedWeight& w, const Tensor& bias);

}  // namespace t2v::ops::cpu
