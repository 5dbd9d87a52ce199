// conv3d / conv2d on CUDA through the implicit-GEMM kernel (conv.cu). The
// causal front/back time padding of the Wan VAE is asymmetric: the kernel takes
// the front padding and the output size, so the back padding is implicit (taps
// past the end read zeros). x and w share a dtype (kernels/ops.cpp checks it).
#include <fmt/format.h>

#include "core/error.h"
#include "kernels/cuda/conv_cudnn.h"
#include "kernels/cuda/backend_cuda.h"
#include "kernels/cuda/runtime.h"
#include "kernels/cuda/tensor_util.h"

namespace t2v::ops::cuda {

namespace {

int64_t conv_out(int64_t in, int64_t pad_total, int64_t k, int64_t stride, const char* op, const char* axis) {
  const int64_t span = in + pad_total - k;
  if (k <= 0 || stride <= 0 || span < 0)
    fail(kExitSoftware, "{}: kernel {} with stride {} does not fit the padded {} extent {}", op, k, stride, axis,
         in + pad_total);
  return span / stride + 1;
}

// pad_*_back: the bottom/right/back padding (the kernel infers it from the
// output size; cuDNN needs it to make the padding symmetric).
Tensor conv_impl(const char* op, const Tensor& x, const Tensor& w, const Tensor& bias, ConvArgs a, int pad_t_back,
                 int pad_h_back, int pad_w_back) {
  Tensor y = Tensor::empty(Shape{a.B, a.Cout, a.To, a.Ho, a.Wo}, x.dtype(), Device::CUDA);
  if (bias.defined()) {
    require_cuda(bias, op, "bias");
    float_elem(bias, op, "bias");
    if (bias.numel() != a.Cout) fail(kExitSoftware, "{}: bias {} must have Cout = {} elements", op, bias.str(), a.Cout);
  }
  if (context().conv_kernel == ConvKernel::Cudnn && a.B * a.Cout * a.To * a.Ho * a.Wo > 0) {
    conv3d_cudnn(y, x, w, bias, a, pad_t_back, pad_h_back, pad_w_back);
    return y;
  }
  a.x = x.raw();
  a.w = w.raw();
  a.y = y.raw();
  a.dt = to_elem(x.dtype());
  if (bias.defined()) {
    a.bias_dt = float_elem(bias, op, "bias");
    a.bias = bias.raw();
  }
  launch_conv3d_implicit_gemm(a, stream());
  return y;
}

Tensor conv3d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv3dParams& p) {
  const char* op = "conv3d";
  require_cuda(x, op, "x");
  require_cuda(w, op, "w");
  float_elem(x, op, "x");
  float_elem(w, op, "w");
  if (x.dim() != 5 || w.dim() != 5 || w.size(1) != x.size(1))
    fail(kExitSoftware, "conv3d: x {} must be [B, Cin, T, H, W] and w {} [Cout, Cin, kt, kh, kw]", x.str(), w.str());
  if (p.pad_t_front < 0 || p.pad_t_back < 0 || p.pad_h < 0 || p.pad_w < 0)
    fail(kExitSoftware, "conv3d: negative padding");
  ConvArgs a;
  a.B = x.size(0);
  a.Cin = x.size(1);
  a.T = x.size(2);
  a.H = x.size(3);
  a.W = x.size(4);
  a.Cout = w.size(0);
  a.kt = w.size(2);
  a.kh = w.size(3);
  a.kw = w.size(4);
  a.st = p.stride[0];
  a.sh = p.stride[1];
  a.sw = p.stride[2];
  a.pt = p.pad_t_front;
  a.ph = p.pad_h;
  a.pw = p.pad_w;
  a.To = conv_out(a.T, p.pad_t_front + p.pad_t_back, a.kt, a.st, op, "time");
  a.Ho = conv_out(a.H, 2 * p.pad_h, a.kh, a.sh, op, "height");
  a.Wo = conv_out(a.W, 2 * p.pad_w, a.kw, a.sw, op, "width");
  return conv_impl(op, x, w, bias, a, p.pad_t_back, p.pad_h, p.pad_w);
}

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p) {
  const char* op = "conv2d";
  require_cuda(x, op, "x");
  require_cuda(w, op, "w");
  float_elem(x, op, "x");
  float_elem(w, op, "w");
  if (x.dim() != 4 || w.dim() != 4 || w.size(1) != x.size(1))
    fail(kExitSoftware, "conv2d: x {} must be [B, Cin, H, W] and w {} [Cout, Cin, kh, kw]", x.str(), w.str());
  if (p.pad_top < 0 || p.pad_bottom < 0 || p.pad_left < 0 || p.pad_right < 0)
    fail(kExitSoftware, "conv2d: negative padding");
  // As a conv3d over T = 1 with kt = 1; asymmetric H/W padding is carried by the
  // top/left offset plus the output size (bottom/right taps past the end read 0).
  ConvArgs a;
  a.B = x.size(0);
  a.Cin = x.size(1);
  a.T = 1;
  a.H = x.size(2);
  a.W = x.size(3);
  a.Cout = w.size(0);
  a.kt = 1;
  a.kh = w.size(2);
  a.kw = w.size(3);
  a.st = 1;
  a.sh = p.stride[0];
  a.sw = p.stride[1];
  a.pt = 0;
  a.ph = p.pad_top;
  a.pw = p.pad_left;
  a.To = 1;
  a.Ho = conv_out(a.H, p.pad_top + p.pad_bottom, a.kh, a.sh, op, "height");
  a.Wo = conv_out(a.W, p.pad_left + p.pad_right, a.kw, a.sw, op, "width");
  Tensor y = conv_impl(op, x.reshape(Shape{a.B, a.Cin, 1, a.H, a.W}), w.reshape(Shape{a.Cout, a.Cin, 1, a.kh, a.kw}),
                       bias, a, 0, p.pad_bottom, p.pad_right);
  return y.reshape(Shape{a.B, a.Cout, a.Ho, a.Wo});
}

}  // namespace

void register_conv(Backend& b) {
  b.conv3d = conv3d;
  b.conv2d = conv2d;
}

}  // namespace t2v::ops::cuda
