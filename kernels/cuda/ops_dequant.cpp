// Tensor-level entry of the GPU dequantization (dequant.cu): checks the packed
// weight, moves its blocks to the device, launches on the context's stream.
#include <fmt/format.h>

#include "core/error.h"
#include "core/quant.h"
#include "kernels/cuda/dequant.h"
#include "kernels/cuda/ops_dequant.h"
#include "kernels/cuda/runtime.h"

namespace t2v::ops::cuda {

Tensor dequantize_packed(const PackedWeight& w) {
  T2V_ASSERT(w.shape.ndim() == 2 && w.shape[1] % quant_traits(w.type).block_elems == 0,
             "dequantize_packed: {} weight {}", w.format(), w.shape.str());
  T2V_ASSERT(w.data.defined() && w.data.dtype() == DType::U8 && w.data.numel() == w.shape[0] * w.row_bytes(),
             "dequantize_packed: {} weight {} holds {}", w.format(), w.shape.str(),
             w.data.defined() ? w.data.str() : std::string("no data"));
  const Tensor blocks = w.data.to(Device::CUDA);
  Tensor out = Tensor::empty(w.shape, DType::F32, Device::CUDA);
  launch_dequantize(static_cast<int>(w.type), blocks.raw(), static_cast<float*>(out.raw()), out.numel(), stream());
  return out;
}

}  // namespace t2v::ops::cuda
