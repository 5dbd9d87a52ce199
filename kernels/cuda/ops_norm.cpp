// Normalisation CUDA ops over Tensors (kernels in norm.cu). x keeps its dtype;
// weight/bias/gamma/shift/scale may be F32, BF16 or F16 independently.
#include <fmt/format.h>

#include "core/error.h"
#include "kernels/cuda/backend_cuda.h"
#include "kernels/cuda/runtime.h"
#include "kernels/cuda/tensor_util.h"

namespace t2v::ops::cuda {

namespace {

// weight/bias of a last-dim norm: undefined, or [C] (any shape with C elements).
const void* vec_arg(const Tensor& t, int64_t C, const char* op, const char* name, Elem* e) {
  if (!t.defined()) return nullptr;
  require_cuda(t, op, name);
  *e = float_elem(t, op, name);
  if (t.numel() != C) fail(kExitSoftware, "{}: {} {} must have {} elements (the last dim of x)", op, name, t.str(), C);
  return t.raw();
}

Tensor layer_norm_impl(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias, float eps,
                       const Tensor& shift, const Tensor& scale_t) {
  require_cuda(x, op, "x");
  const Elem e = float_elem(x, op, "x");
  if (x.dim() == 0) fail(kExitSoftware, "{}: x must have at least one dim", op);
  const int64_t C = x.size(-1), rows = C == 0 ? 0 : x.numel() / C;
  Elem we = Elem::F32, be = Elem::F32;
  const void* wp = vec_arg(weight, C, op, "weight", &we);
  const void* bp = vec_arg(bias, C, op, "bias", &be);
  BView sh, sc;
  if (shift.defined()) {
    require_cuda(shift, op, "shift");
    require_cuda(scale_t, op, "scale");
    sh = broadcast_view(shift, x.shape(), op, "shift");
    sc = broadcast_view(scale_t, x.shape(), op, "scale");
  }
  Tensor y = Tensor::empty(x.shape(), x.dtype(), Device::CUDA);
  launch_layer_norm(y.raw(), x.raw(), e, rows, C, wp, we, bp, be, eps, out_shape(x.shape()), sh, sc, stream());
  return y;
}

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps) {
  return layer_norm_impl("layer_norm", x, weight, bias, eps, Tensor(), Tensor());
}

Tensor layer_norm_modulate(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps, const Tensor& shift,
                           const Tensor& scale_t) {
  if (!shift.defined() || !scale_t.defined())
    fail(kExitSoftware, "layer_norm_modulate: shift and scale must both be given");
  return layer_norm_impl("layer_norm_modulate", x, weight, bias, eps, shift, scale_t);
}

Tensor rms_norm(const Tensor& x, const Tensor& weight, float eps) {
  const char* op = "rms_norm";
  require_cuda(x, op, "x");
  const Elem e = float_elem(x, op, "x");
  if (x.dim() == 0) fail(kExitSoftware, "{}: x must have at least one dim", op);
  const int64_t C = x.size(-1), rows = C == 0 ? 0 : x.numel() / C;
  Elem we = Elem::F32;
  const void* wp = vec_arg(weight, C, op, "weight", &we);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), Device::CUDA);
  launch_rms_norm(y.raw(), x.raw(), e, rows, C, wp, we, eps, stream());
  return y;
}

Tensor rms_norm_channels(const Tensor& x, const Tensor& gamma, float eps) {
  const char* op = "rms_norm_channels";
  require_cuda(x, op, "x");
  require_cuda(gamma, op, "gamma");
  const Elem e = float_elem(x, op, "x");
  const Elem ge = float_elem(gamma, op, "gamma");
  if (x.dim() < 2) fail(kExitSoftware, "{}: x {} must be [B, C, ...]", op, x.str());
  const int64_t B = x.size(0), C = x.size(1);
  const int64_t S = (B * C == 0) ? 0 : x.numel() / (B * C);
  if (gamma.numel() != C) fail(kExitSoftware, "{}: gamma {} must have C = {} elements", op, gamma.str(), C);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), Device::CUDA);
  launch_rms_norm_channels(y.raw(), x.raw(), e, B, C, S, gamma.raw(), ge, eps, stream());
  return y;
}

Tensor softmax(const Tensor& x) {
  require_cuda(x, "softmax", "x");
  const Elem e = float_elem(x, "softmax", "x");
  if (x.dim() == 0) fail(kExitSoftware, "softmax: x must have at least one dim");
  const int64_t C = x.size(-1), rows = C == 0 ? 0 : x.numel() / C;
  Tensor y = Tensor::empty(x.shape(), x.dtype(), Device::CUDA);
  launch_softmax(y.raw(), x.raw(), e, rows, C, stream());
  return y;
}

}  // namespace

void register_norm(Backend& b) {
  b.layer_norm = layer_norm;
  b.layer_norm_modulate = layer_norm_modulate;
  b.rms_norm = rms_norm;
  b.rms_norm_channels = rms_norm_channels;
  b.softmax = softmax;
}

}  // namespace t2v::ops::cuda
