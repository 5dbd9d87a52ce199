// Elementwise CUDA ops over Tensors: activations, scalar ops, broadcast
// arithmetic, modulate, gated residual, casts, lincomb (kernels in
// elementwise.cu). Output dtype = dtype of the first tensor argument; math in
// fp32 (lincomb: F32 tensors, fp64 accumulation).
#include <fmt/format.h>

#include "core/error.h"
#include "kernels/cuda/backend_cuda.h"
#include "kernels/cuda/runtime.h"
#include "kernels/cuda/tensor_util.h"

namespace t2v::ops::cuda {

namespace {

Tensor unary(const char* op, UnaryOp u, const Tensor& x, float a, float b) {
  require_cuda(x, op, "x");
  const Elem e = float_elem(x, op, "x");
  Tensor y = Tensor::empty(x.shape(), x.dtype(), Device::CUDA);
  launch_unary(u, y.raw(), x.raw(), e, x.numel(), a, b, stream());
  return y;
}

Tensor binary(const char* op, NaryOp n, const Tensor& a, const Tensor& b) {
  require_cuda(a, op, "a");
  require_cuda(b, op, "b");
  const Elem e = float_elem(a, op, "a");
  const Shape out = broadcast_shapes(a.shape(), b.shape(), op);
  Tensor y = Tensor::empty(out, a.dtype(), Device::CUDA);
  launch_nary(n, y.raw(), e, out_shape(out), broadcast_view(a, out, op, "a"), broadcast_view(b, out, op, "b"), BView{},
              stream());
  return y;
}

Tensor gelu_tanh(const Tensor& x) { return unary("gelu_tanh", UnaryOp::GeluTanh, x, 0.0f, 0.0f); }
Tensor gelu_erf(const Tensor& x) { return unary("gelu_erf", UnaryOp::GeluErf, x, 0.0f, 0.0f); }
Tensor silu(const Tensor& x) { return unary("silu", UnaryOp::Silu, x, 0.0f, 0.0f); }
Tensor scale(const Tensor& x, float s) { return unary("scale", UnaryOp::Scale, x, s, 0.0f); }
Tensor add_scalar(const Tensor& x, float s) { return unary("add_scalar", UnaryOp::AddScalar, x, s, 0.0f); }
Tensor clamp(const Tensor& x, float lo, float hi) {
  if (!(lo <= hi)) fail(kExitSoftware, "clamp: lo {} > hi {}", lo, hi);
  return unary("clamp", UnaryOp::Clamp, x, lo, hi);
}

Tensor add(const Tensor& a, const Tensor& b) { return binary("add", NaryOp::Add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary("sub", NaryOp::Sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary("mul", NaryOp::Mul, a, b); }

Tensor modulate(const Tensor& x, const Tensor& shift, const Tensor& scale_t) {
  const char* op = "modulate";
  require_cuda(x, op, "x");
  require_cuda(shift, op, "shift");
  require_cuda(scale_t, op, "scale");
  const Elem e = float_elem(x, op, "x");
  Tensor y = Tensor::empty(x.shape(), x.dtype(), Device::CUDA);
  launch_nary(NaryOp::Modulate, y.raw(), e, out_shape(x.shape()), broadcast_view(x, x.shape(), op, "x"),
              broadcast_view(shift, x.shape(), op, "shift"), broadcast_view(scale_t, x.shape(), op, "scale"),
              stream());
  return y;
}

Tensor add_gated(const Tensor& x, const Tensor& y, const Tensor& gate) {
  const char* op = "add_gated";
  require_cuda(x, op, "x");
  require_cuda(y, op, "y");
  require_cuda(gate, op, "gate");
  if (y.shape() != x.shape()) fail(kExitSoftware, "add_gated: y {} must have the shape of x {}", y.str(), x.str());
  const Elem e = float_elem(x, op, "x");
  Tensor out = Tensor::empty(x.shape(), x.dtype(), Device::CUDA);
  launch_nary(NaryOp::AddGated, out.raw(), e, out_shape(x.shape()), broadcast_view(x, x.shape(), op, "x"),
              broadcast_view(y, x.shape(), op, "y"), broadcast_view(gate, x.shape(), op, "gate"), stream());
  return out;
}

Tensor cast(const Tensor& x, DType dt) {
  require_cuda(x, "cast", "x");
  if (x.dtype() == dt) return ops::contiguous_copy(x);
  const CastCode sc = cast_code(x.dtype(), "cast"), dc = cast_code(dt, "cast");
  Tensor y = Tensor::empty(x.shape(), dt, Device::CUDA);
  launch_cast(y.raw(), dc, x.raw(), sc, x.numel(), stream());
  return y;
}

void lincomb(Tensor& dst, std::span<const LinTerm> terms) {
  const char* op = "lincomb";
  require_cuda(dst, op, "dst");
  if (dst.dtype() != DType::F32) fail(kExitSoftware, "lincomb: dst {} must be F32", dst.str());
  if (terms.size() > static_cast<size_t>(kLincombMaxTerms))
    throw Error(kExitUnavailable,
                fmt::format("lincomb: {} non-zero terms; the CUDA kernel sums at most {}", terms.size(),
                            kLincombMaxTerms),
                "split the combination (the samplers use at most 4 terms)");
  LincombArgs a;
  a.k = static_cast<int>(terms.size());
  for (int t = 0; t < a.k; ++t) {
    const Tensor& s = *terms[t].src;
    require_cuda(s, op, "src");
    if (s.dtype() != DType::F32 || s.numel() != dst.numel())
      fail(kExitSoftware, "lincomb: source {} must be F32 of dst's size ({})", s.str(), dst.str());
    a.src[t] = static_cast<const float*>(s.raw());
    a.coef[t] = terms[t].coef;
  }
  launch_lincomb(static_cast<float*>(dst.raw()), a, dst.numel(), stream());
}

}  // namespace

void register_elementwise(Backend& b) {
  b.gelu_tanh = gelu_tanh;
  b.gelu_erf = gelu_erf;
  b.silu = silu;
  b.add = add;
  b.sub = sub;
  b.mul = mul;
  b.scale = scale;
  b.add_scalar = add_scalar;
  b.clamp = clamp;
  b.modulate = modulate;
  b.add_gated = add_gated;
  b.cast = cast;
  b.lincomb = lincomb;
}

}  // namespace t2v::ops::cuda
