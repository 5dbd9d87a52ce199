// Argument checks of the packed-weight ops, then the CPU reference
// (kernels/cpu/quant_gemm.cpp). Errors follow kernels/ops.cpp: Error(70) naming
// the op and the shapes.
#include "kernels/packed_ops.h"

#include <fmt/format.h>

#include "kernels/cpu/quant_gemm.h"

namespace t2v::ops {

namespace {

[[noreturn]] void arg_error(const std::string& what) {
  throw Error(kExitSoftware, "linear_packed: " + what,
              "the model code passed tensors of inconsistent shapes (check the model config against the checkpoint)");
}

std::string desc(const Tensor& t) { return t.defined() ? t.str() : std::string("undefined"); }

}  // namespace

Tensor linear_packed(const Tensor& x, const PackedWeight& w, const Tensor& bias) {
  if (!x.defined() || x.device() != Device::CPU || x.dtype() != DType::F32 || x.dim() < 1)
    arg_error(fmt::format("x is {}; packed weights run on CPU F32 activations", desc(x)));
  if (w.shape.ndim() != 2) arg_error(fmt::format("weight shape {} is not [N, K]", w.shape.str()));
  const int64_t N = w.shape[0], K = w.shape[1];
  if (K % quant_traits(w.type).block_elems != 0)
    arg_error(fmt::format("weight {} {}: K is not a multiple of the block size {}", w.format(), w.shape.str(),
                          quant_traits(w.type).block_elems));
  if (!w.data.defined() || w.data.device() != Device::CPU || w.data.dtype() != DType::U8 ||
      w.data.numel() != N * w.row_bytes())
    arg_error(fmt::format("weight {} {} holds {}, expected U8[{}] on the CPU", w.format(), w.shape.str(), desc(w.data),
                          N * w.row_bytes()));
  if (x.size(-1) != K)
    arg_error(fmt::format("x {} and weight {} (expected x [..., K], w [N, K])", x.shape().str(), w.shape.str()));
  if (bias.defined() &&
      (bias.device() != Device::CPU || bias.dtype() != DType::F32 || bias.dim() != 1 || bias.size(0) != N))
    arg_error(fmt::format("bias is {}, expected F32[{}] on the CPU", desc(bias), N));
  return cpu::linear_packed(x, w, bias);
}

}  // namespace t2v::ops
