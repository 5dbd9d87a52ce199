// The public op set (kernels/ops.h): argument checks, then one call into the
// backend table of the first tensor's device (kernels/backend.h). Shape, dtype
// and device problems throw t2v::Error(70) naming the op and the shapes; the
// dtype rule is written once at the top of kernels/ops.h. Which storage dtypes
// a device kernel accepts beyond the checks here is decided (and refused with a
// clear message) by that backend.
#include "kernels/ops.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "kernels/backend.h"

namespace t2v::ops {
namespace {

constexpr const char* kShapeHint = "the model code passed tensors of inconsistent shapes (check the model config against the checkpoint)";

[[noreturn]] void shape_error(const char* op, const std::string& what) {
  throw Error(kExitSoftware, fmt::format("{}: {}", op, what), kShapeHint);
}

std::string desc(const Tensor& t) { return t.defined() ? t.str() : std::string("undefined"); }

void require_defined(const char* op, const char* name, const Tensor& t) {
  if (!t.defined()) shape_error(op, fmt::format("tensor '{}' is undefined", name));
}

// All defined tensors on the device of `first`; on the CPU, float ops need F32.
void check_operands(const char* op, std::initializer_list<std::pair<const char*, const Tensor*>> ts,
                    bool cpu_f32_only = true) {
  const Tensor* first = nullptr;
  for (const auto& [name, t] : ts) {
    if (!t->defined()) continue;
    if (!first) first = t;
    if (t->device() != first->device())
      throw Error(kExitSoftware,
                  fmt::format("{}: tensors on different devices ({} is {}, {} is {})", op, ts.begin()->first,
                              desc(*first), name, desc(*t)),
                  "move every operand to one device (Tensor::to(Device)) before calling the op");
    if (cpu_f32_only && t->device() == Device::CPU && t->dtype() != DType::F32)
      throw Error(kExitSoftware,
                  fmt::format("{}: '{}' is {}, but the CPU ops compute in F32 only", op, name, desc(*t)),
                  "cast with ops::cast(x, DType::F32) first (the CPU path is the fp32 reference)");
  }
}

// GEMM operands: the activation and the weight share one dtype (no per-call
// weight conversion on any backend); a bias is F32 or that dtype.
void check_gemm_dtypes(const char* op, const char* xn, const Tensor& x, const char* wn, const Tensor& w,
                       const Tensor& bias) {
  if (x.dtype() != w.dtype())
    throw Error(kExitSoftware,
                fmt::format("{}: '{}' is {} but '{}' is {}; activation and weight dtypes must match", op, xn, desc(x),
                            wn, desc(w)),
                "store the weight in the dtype the model computes in (cast it once when loading), or cast the "
                "activation with ops::cast");
  if (bias.defined() && bias.dtype() != DType::F32 && bias.dtype() != x.dtype())
    throw Error(kExitSoftware,
                fmt::format("{}: 'bias' is {}; it must be F32 or the dtype of '{}' ({})", op, desc(bias), xn,
                            dtype_name(x.dtype())),
                "store the bias in F32 or in the weight's dtype");
}

int normalize_dim(const char* op, int dim, int nd, const Tensor& x) {
  const int d = dim < 0 ? dim + nd : dim;
  if (d < 0 || d >= nd) shape_error(op, fmt::format("dim {} is out of range for {}", dim, desc(x)));
  return d;
}

// NumPy broadcast of a and b (right-aligned, size-1 dims stretch); errors name both shapes.
Shape broadcast_shapes(const char* op, const Tensor& a, const Tensor& b) {
  const int nd = std::max(a.dim(), b.dim());
  std::vector<int64_t> d(nd);
  for (int i = 0; i < nd; ++i) {
    const int ia = i - (nd - a.dim()), ib = i - (nd - b.dim());
    const int64_t da = ia >= 0 ? a.shape()[ia] : 1, db = ib >= 0 ? b.shape()[ib] : 1;
    if (da != db && da != 1 && db != 1)
      shape_error(op, fmt::format("shapes {} and {} do not broadcast (dim {}: {} vs {})", a.shape().str(),
                                  b.shape().str(), i, da, db));
    d[i] = da == 1 ? db : da;
  }
  return Shape(d);
}

// `small` must broadcast to x's shape without growing it (modulate, add_gated).
void check_broadcasts_to(const char* op, const char* name, const Tensor& small, const Tensor& x) {
  bool ok = small.dim() <= x.dim();
  for (int i = 0; ok && i < small.dim(); ++i) {
    const int64_t ds = small.shape()[i], dx = x.shape()[x.dim() - small.dim() + i];
    ok = ds == dx || ds == 1;
  }
  if (!ok) shape_error(op, fmt::format("'{}' {} does not broadcast to x {}", name, small.shape().str(), x.shape().str()));
}

void check_vector(const char* op, const char* name, const Tensor& t, int64_t n) {
  if (t.defined() && (t.dim() != 1 || t.size(0) != n))
    shape_error(op, fmt::format("'{}' is {}, expected [{}]", name, t.shape().str(), n));
}

}  // namespace

// ---- GEMM ---------------------------------------------------------------------

namespace {

void check_linear(const char* op, const Tensor& x, const Tensor& w, const Tensor& bias) {
  require_defined(op, "x", x);
  require_defined(op, "w", w);
  check_operands(op, {{"x", &x}, {"w", &w}, {"bias", &bias}});
  if (x.dim() < 1 || w.dim() != 2 || x.size(-1) != w.size(1))
    shape_error(op, fmt::format("x {} and w {} (expected x [..., K], w [N, K])", x.shape().str(), w.shape().str()));
  check_vector(op, "bias", bias, w.size(0));
  check_gemm_dtypes(op, "x", x, "w", w, bias);
}

}  // namespace

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias) {
  check_linear("linear", x, w, bias);
  const Backend& be = backend(x.device());
  if (!be.linear) unsupported("linear", be);
  return be.linear(x, w, bias);
}

Tensor linear_gelu_tanh(const Tensor& x, const Tensor& w, const Tensor& bias) {
  check_linear("linear_gelu_tanh", x, w, bias);
  const Backend& be = backend(x.device());
  if (!be.linear_gelu_tanh) unsupported("linear_gelu_tanh", be);
  return be.linear_gelu_tanh(x, w, bias);
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  require_defined("matmul", "a", a);
  require_defined("matmul", "b", b);
  check_operands("matmul", {{"a", &a}, {"b", &b}});
  bool ok = a.dim() >= 2 && a.dim() == b.dim() && a.size(-1) == b.size(-2);
  for (int i = 0; ok && i < a.dim() - 2; ++i) ok = a.size(i) == b.size(i);
  if (!ok)
    shape_error("matmul", fmt::format("a {} and b {} (expected a [..., M, K], b [..., K, N], equal leading dims)",
                                      a.shape().str(), b.shape().str()));
  check_gemm_dtypes("matmul", "a", a, "b", b, Tensor());
  const Backend& be = backend(a.device());
  if (!be.matmul) unsupported("matmul", be);
  return be.matmul(a, b);
}

// ---- normalisation ------------------------------------------------------------

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps) {
  require_defined("layer_norm", "x", x);
  check_operands("layer_norm", {{"x", &x}, {"weight", &weight}, {"bias", &bias}});
  if (x.dim() < 1) shape_error("layer_norm", fmt::format("x {} has no last dim", x.shape().str()));
  check_vector("layer_norm", "weight", weight, x.size(-1));
  check_vector("layer_norm", "bias", bias, x.size(-1));
  const Backend& be = backend(x.device());
  if (!be.layer_norm) unsupported("layer_norm", be);
  return be.layer_norm(x, weight, bias, eps);
}

Tensor layer_norm_modulate(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps, const Tensor& shift,
                           const Tensor& scale) {
  const char* op = "layer_norm_modulate";
  require_defined(op, "x", x);
  require_defined(op, "shift", shift);
  require_defined(op, "scale", scale);
  check_operands(op, {{"x", &x}, {"weight", &weight}, {"bias", &bias}, {"shift", &shift}, {"scale", &scale}});
  if (x.dim() < 1) shape_error(op, fmt::format("x {} has no last dim", x.shape().str()));
  check_vector(op, "weight", weight, x.size(-1));
  check_vector(op, "bias", bias, x.size(-1));
  check_broadcasts_to(op, "shift", shift, x);
  check_broadcasts_to(op, "scale", scale, x);
  const Backend& be = backend(x.device());
  if (!be.layer_norm_modulate) unsupported(op, be);
  return be.layer_norm_modulate(x, weight, bias, eps, shift, scale);
}

Tensor rms_norm(const Tensor& x, const Tensor& weight, float eps) {
  require_defined("rms_norm", "x", x);
  check_operands("rms_norm", {{"x", &x}, {"weight", &weight}});
  if (x.dim() < 1) shape_error("rms_norm", fmt::format("x {} has no last dim", x.shape().str()));
  check_vector("rms_norm", "weight", weight, x.size(-1));
  const Backend& be = backend(x.device());
  if (!be.rms_norm) unsupported("rms_norm", be);
  return be.rms_norm(x, weight, eps);
}

Tensor rms_norm_channels(const Tensor& x, const Tensor& gamma, float eps) {
  require_defined("rms_norm_channels", "x", x);
  require_defined("rms_norm_channels", "gamma", gamma);
  check_operands("rms_norm_channels", {{"x", &x}, {"gamma", &gamma}});
  bool ok = x.dim() >= 2 && gamma.dim() >= 1 && gamma.size(0) == x.size(1);
  for (int i = 1; ok && i < gamma.dim(); ++i) ok = gamma.size(i) == 1;
  if (!ok)
    shape_error("rms_norm_channels", fmt::format("x {} and gamma {} (expected x [B, C, ...], gamma [C] or [C, 1, ...])",
                                                 x.shape().str(), gamma.shape().str()));
  const Backend& be = backend(x.device());
  if (!be.rms_norm_channels) unsupported("rms_norm_channels", be);
  return be.rms_norm_channels(x, gamma, eps);
}

Tensor softmax(const Tensor& x) {
  require_defined("softmax", "x", x);
  check_operands("softmax", {{"x", &x}});
  if (x.dim() < 1) shape_error("softmax", fmt::format("x {} has no last dim", x.shape().str()));
  const Backend& be = backend(x.device());
  if (!be.softmax) unsupported("softmax", be);
  return be.softmax(x);
}

// ---- attention ----------------------------------------------------------------

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p) {
  const char* op = "attention";
  require_defined(op, "q", q);
  require_defined(op, "k", k);
  require_defined(op, "v", v);
  check_operands(op, {{"q", &q}, {"k", &k}, {"v", &v}, {"bias", &p.bias}});
  check_operands(op, {{"q", &q}, {"key_mask", &p.key_mask}}, /*cpu_f32_only=*/false);
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4 || k.size(0) != q.size(0) || v.size(0) != q.size(0) ||
      k.size(2) != q.size(2) || v.size(2) != q.size(2) || k.size(3) != q.size(3) || v.size(1) != k.size(1))
    shape_error(op, fmt::format("q {}, k {}, v {} (expected q [B, Nq, NH, D], k [B, Nk, NH, D], v [B, Nk, NH, Dv])",
                                q.shape().str(), k.shape().str(), v.shape().str()));
  const int64_t B = q.size(0), Nq = q.size(1), NH = q.size(2), Nk = k.size(1);
  AttentionParams pp = p;
  if (p.bias.defined()) {
    // Right-align the bias to 4-D, then every dim must equal the target or be 1.
    const int64_t target[4] = {B, NH, Nq, Nk};
    bool ok = p.bias.dim() <= 4;
    std::vector<int64_t> d(4, 1);
    for (int i = 0; ok && i < p.bias.dim(); ++i) {
      const int j = 4 - p.bias.dim() + i;
      d[j] = p.bias.size(i);
      ok = d[j] == target[j] || d[j] == 1;
    }
    if (!ok)
      shape_error(op, fmt::format("bias {} does not broadcast to [B, NH, Nq, Nk] = [{}, {}, {}, {}]",
                                  p.bias.shape().str(), B, NH, Nq, Nk));
    pp.bias = p.bias.reshape(Shape(d));
  }
  if (p.key_mask.defined()) {
    const DType dt = p.key_mask.dtype();
    if (dt != DType::I64 && dt != DType::I32 && dt != DType::U8 && dt != DType::F32)
      shape_error(op, fmt::format("key_mask is {}, expected I64, I32, U8 or F32", desc(p.key_mask)));
    if (p.key_mask.dim() != 2 || p.key_mask.size(0) != B || p.key_mask.size(1) != Nk)
      shape_error(op, fmt::format("key_mask {} (expected [B, Nk] = [{}, {}])", p.key_mask.shape().str(), B, Nk));
  }
  const Backend& be = backend(q.device());
  if (!be.attention) unsupported("attention", be);
  return be.attention(q, k, v, pp);
}

// ---- activations / elementwise ------------------------------------------------

Tensor gelu_tanh(const Tensor& x) {
  require_defined("gelu_tanh", "x", x);
  check_operands("gelu_tanh", {{"x", &x}});
  const Backend& be = backend(x.device());
  if (!be.gelu_tanh) unsupported("gelu_tanh", be);
  return be.gelu_tanh(x);
}

Tensor gelu_erf(const Tensor& x) {
  require_defined("gelu_erf", "x", x);
  check_operands("gelu_erf", {{"x", &x}});
  const Backend& be = backend(x.device());
  if (!be.gelu_erf) unsupported("gelu_erf", be);
  return be.gelu_erf(x);
}

Tensor silu(const Tensor& x) {
  require_defined("silu", "x", x);
  check_operands("silu", {{"x", &x}});
  const Backend& be = backend(x.device());
  if (!be.silu) unsupported("silu", be);
  return be.silu(x);
}

Tensor add(const Tensor& a, const Tensor& b) {
  require_defined("add", "a", a);
  require_defined("add", "b", b);
  check_operands("add", {{"a", &a}, {"b", &b}});
  broadcast_shapes("add", a, b);
  const Backend& be = backend(a.device());
  if (!be.add) unsupported("add", be);
  return be.add(a, b);
}

Tensor sub(const Tensor& a, const Tensor& b) {
  require_defined("sub", "a", a);
  require_defined("sub", "b", b);
  check_operands("sub", {{"a", &a}, {"b", &b}});
  broadcast_shapes("sub", a, b);
  const Backend& be = backend(a.device());
  if (!be.sub) unsupported("sub", be);
  return be.sub(a, b);
}

Tensor mul(const Tensor& a, const Tensor& b) {
  require_defined("mul", "a", a);
  require_defined("mul", "b", b);
  check_operands("mul", {{"a", &a}, {"b", &b}});
  broadcast_shapes("mul", a, b);
  const Backend& be = backend(a.device());
  if (!be.mul) unsupported("mul", be);
  return be.mul(a, b);
}

Tensor scale(const Tensor& x, float s) {
  require_defined("scale", "x", x);
  check_operands("scale", {{"x", &x}});
  const Backend& be = backend(x.device());
  if (!be.scale) unsupported("scale", be);
  return be.scale(x, s);
}

Tensor add_scalar(const Tensor& x, float s) {
  require_defined("add_scalar", "x", x);
  check_operands("add_scalar", {{"x", &x}});
  const Backend& be = backend(x.device());
  if (!be.add_scalar) unsupported("add_scalar", be);
  return be.add_scalar(x, s);
}

Tensor clamp(const Tensor& x, float lo, float hi) {
  require_defined("clamp", "x", x);
  check_operands("clamp", {{"x", &x}});
  if (!(lo <= hi)) shape_error("clamp", fmt::format("lower bound {} is above upper bound {}", lo, hi));
  const Backend& be = backend(x.device());
  if (!be.clamp) unsupported("clamp", be);
  return be.clamp(x, lo, hi);
}

Tensor modulate(const Tensor& x, const Tensor& shift, const Tensor& scale) {
  require_defined("modulate", "x", x);
  require_defined("modulate", "shift", shift);
  require_defined("modulate", "scale", scale);
  check_operands("modulate", {{"x", &x}, {"shift", &shift}, {"scale", &scale}});
  check_broadcasts_to("modulate", "shift", shift, x);
  check_broadcasts_to("modulate", "scale", scale, x);
  const Backend& be = backend(x.device());
  if (!be.modulate) unsupported("modulate", be);
  return be.modulate(x, shift, scale);
}

Tensor add_gated(const Tensor& x, const Tensor& y, const Tensor& gate) {
  require_defined("add_gated", "x", x);
  require_defined("add_gated", "y", y);
  require_defined("add_gated", "gate", gate);
  check_operands("add_gated", {{"x", &x}, {"y", &y}, {"gate", &gate}});
  if (y.shape() != x.shape())
    shape_error("add_gated", fmt::format("y {} must have x's shape {}", y.shape().str(), x.shape().str()));
  check_broadcasts_to("add_gated", "gate", gate, x);
  const Backend& be = backend(x.device());
  if (!be.add_gated) unsupported("add_gated", be);
  return be.add_gated(x, y, gate);
}

// ---- linear combination -------------------------------------------------------

void lincomb(Tensor& dst, std::span<const LinTerm> terms) {
  const char* op = "lincomb";
  require_defined(op, "dst", dst);
  if (dst.dtype() != DType::F32)
    throw Error(kExitSoftware, fmt::format("{}: 'dst' is {}; lincomb takes F32 only", op, desc(dst)),
                "keep the latents and velocities in F32 (the scheduler state is fp32)");
  std::vector<LinTerm> used;
  used.reserve(terms.size());
  for (size_t k = 0; k < terms.size(); ++k) {
    const LinTerm& t = terms[k];
    if (!std::isfinite(t.coef)) shape_error(op, fmt::format("coefficient {} of term {} is not finite", t.coef, k));
    if (t.coef == 0.0) continue;  // dropped even where the source holds inf (the sigma = 0 step)
    if (!t.src || !t.src->defined()) shape_error(op, fmt::format("term {} has no source tensor", k));
    const Tensor& s = *t.src;
    if (s.dtype() != DType::F32 || s.shape() != dst.shape() || s.device() != dst.device())
      shape_error(op, fmt::format("term {} is {} but dst is {} (sources must be F32 of dst's shape and device)", k,
                                  desc(s), desc(dst)));
    used.push_back(t);
  }
  const Backend& be = backend(dst.device());
  if (!be.lincomb) unsupported(op, be);
  be.lincomb(dst, used);
}

// ---- convolution / resampling ---------------------------------------------------

namespace {

// Output length of one conv axis, or a shape error when the padded input is shorter than the kernel.
int64_t conv_out_len(const char* op, const char* axis, int64_t n, int64_t pad, int64_t k, int64_t stride,
                     const Tensor& x, const Tensor& w) {
  if (stride < 1 || pad < 0 || n + pad < k)
    shape_error(op, fmt::format("x {} and w {}: axis {} has length {} + padding {} < kernel {} (or stride {} < 1, "
                                "negative padding)", x.shape().str(), w.shape().str(), axis, n, pad, k, stride));
  return (n + pad - k) / stride + 1;
}

}  // namespace

Tensor conv3d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv3dParams& p) {
  const char* op = "conv3d";
  require_defined(op, "x", x);
  require_defined(op, "w", w);
  check_operands(op, {{"x", &x}, {"w", &w}, {"bias", &bias}});
  check_gemm_dtypes(op, "x", x, "w", w, bias);
  if (x.dim() != 5 || w.dim() != 5 || w.size(1) != x.size(1))
    shape_error(op, fmt::format("x {} and w {} (expected x [B, Cin, T, H, W], w [Cout, Cin, kt, kh, kw])",
                                x.shape().str(), w.shape().str()));
  check_vector(op, "bias", bias, w.size(0));
  if (p.pad_t_front < 0 || p.pad_t_back < 0)
    shape_error(op, fmt::format("negative temporal padding ({}, {})", p.pad_t_front, p.pad_t_back));
  conv_out_len(op, "T", x.size(2), p.pad_t_front + p.pad_t_back, w.size(2), p.stride[0], x, w);
  conv_out_len(op, "H", x.size(3), 2 * p.pad_h, w.size(3), p.stride[1], x, w);
  conv_out_len(op, "W", x.size(4), 2 * p.pad_w, w.size(4), p.stride[2], x, w);
  const Backend& be = backend(x.device());
  if (!be.conv3d) unsupported("conv3d", be);
  return be.conv3d(x, w, bias, p);
}

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p) {
  const char* op = "conv2d";
  require_defined(op, "x", x);
  require_defined(op, "w", w);
  check_operands(op, {{"x", &x}, {"w", &w}, {"bias", &bias}});
  check_gemm_dtypes(op, "x", x, "w", w, bias);
  if (x.dim() != 4 || w.dim() != 4 || w.size(1) != x.size(1))
    shape_error(op, fmt::format("x {} and w {} (expected x [B, Cin, H, W], w [Cout, Cin, kh, kw])", x.shape().str(),
                                w.shape().str()));
  check_vector(op, "bias", bias, w.size(0));
  if (p.pad_top < 0 || p.pad_bottom < 0 || p.pad_left < 0 || p.pad_right < 0)
    shape_error(op, fmt::format("negative padding (top {}, bottom {}, left {}, right {})", p.pad_top, p.pad_bottom,
                                p.pad_left, p.pad_right));
  conv_out_len(op, "H", x.size(2), p.pad_top + p.pad_bottom, w.size(2), p.stride[0], x, w);
  conv_out_len(op, "W", x.size(3), p.pad_left + p.pad_right, w.size(3), p.stride[1], x, w);
  const Backend& be = backend(x.device());
  if (!be.conv2d) unsupported("conv2d", be);
  return be.conv2d(x, w, bias, p);
}

Tensor upsample_nearest2x(const Tensor& x) {
  require_defined("upsample_nearest2x", "x", x);
  check_operands("upsample_nearest2x", {{"x", &x}});
  if (x.dim() < 2) shape_error("upsample_nearest2x", fmt::format("x {} needs at least [H, W]", x.shape().str()));
  const Backend& be = backend(x.device());
  if (!be.upsample_nearest2x) unsupported("upsample_nearest2x", be);
  return be.upsample_nearest2x(x);
}

// ---- rotary embedding -------------------------------------------------------------

Tensor rope_3d(const Tensor& x, const Tensor& table) {
  require_defined("rope_3d", "x", x);
  require_defined("rope_3d", "table", table);
  check_operands("rope_3d", {{"x", &x}, {"table", &table}});
  if (x.dim() != 4 || x.size(3) % 2 != 0 || table.dim() != 3 || table.size(0) != x.size(1) ||
      table.size(1) != x.size(3) / 2 || table.size(2) != 2)
    shape_error("rope_3d", fmt::format("x {} and table {} (expected x [B, N, NH, D] with D even, table [N, D/2, 2])",
                                       x.shape().str(), table.shape().str()));
  const Backend& be = backend(x.device());
  if (!be.rope_3d) unsupported("rope_3d", be);
  return be.rope_3d(x, table);
}

// ---- layout ---------------------------------------------------------------------

Tensor concat(const std::vector<Tensor>& xs, int dim) {
  const char* op = "concat";
  if (xs.empty()) shape_error(op, "no tensors to concatenate");
  for (const Tensor& t : xs) require_defined(op, "xs[i]", t);
  const Tensor& x0 = xs[0];
  const int d = normalize_dim(op, dim, x0.dim(), x0);
  for (size_t i = 1; i < xs.size(); ++i) {
    const Tensor& t = xs[i];
    bool ok = t.dim() == x0.dim() && t.dtype() == x0.dtype() && t.device() == x0.device();
    for (int j = 0; ok && j < t.dim(); ++j) ok = j == d || t.size(j) == x0.size(j);
    if (!ok)
      shape_error(op, fmt::format("xs[{}] is {} but xs[0] is {} (all dims but {} must match, same dtype and device)",
                                  i, desc(t), desc(x0), d));
  }
  const Backend& be = backend(x0.device());
  if (!be.concat) unsupported("concat", be);
  return be.concat(xs, d);
}

Tensor slice(const Tensor& x, int dim, int64_t start, int64_t end) {
  const char* op = "slice";
  require_defined(op, "x", x);
  const int d = normalize_dim(op, dim, x.dim(), x);
  if (start < 0 || start > end || end > x.size(d))
    shape_error(op, fmt::format("range [{}, {}) is outside dim {} of {}", start, end, d, x.shape().str()));
  const Backend& be = backend(x.device());
  if (!be.slice) unsupported("slice", be);
  return be.slice(x, d, start, end);
}

Tensor permute(const Tensor& x, const std::vector<int>& perm) {
  const char* op = "permute";
  require_defined(op, "x", x);
  bool ok = (int)perm.size() == x.dim();
  std::vector<bool> seen(x.dim(), false);
  for (size_t i = 0; ok && i < perm.size(); ++i) {
    ok = perm[i] >= 0 && perm[i] < x.dim() && !seen[perm[i]];
    if (ok) seen[perm[i]] = true;
  }
  if (!ok) {
    std::string ps;
    for (int v : perm) ps += (ps.empty() ? "" : ", ") + std::to_string(v);
    shape_error(op, fmt::format("({}) is not a permutation of the {} dims of {}", ps, x.dim(), x.shape().str()));
  }
  const Backend& be = backend(x.device());
  if (!be.permute) unsupported("permute", be);
  return be.permute(x, perm);
}

Tensor contiguous_copy(const Tensor& x) {
  require_defined("contiguous_copy", "x", x);
  const Backend& be = backend(x.device());
  if (!be.contiguous_copy) unsupported("contiguous_copy", be);
  return be.contiguous_copy(x);
}

Tensor embedding(const Tensor& table, const Tensor& ids) {
  const char* op = "embedding";
  require_defined(op, "table", table);
  require_defined(op, "ids", ids);
  check_operands(op, {{"table", &table}, {"ids", &ids}}, /*cpu_f32_only=*/false);
  if (table.dim() != 2 || ids.dim() > kMaxDims - 1 || (ids.dtype() != DType::I64 && ids.dtype() != DType::I32))
    shape_error(op, fmt::format("table {} and ids {} (expected table [V, C], ids I64/I32 with at most {} dims)",
                                desc(table), desc(ids), kMaxDims - 1));
  const Backend& be = backend(table.device());
  if (!be.embedding) unsupported("embedding", be);
  return be.embedding(table, ids);
}

Tensor cast(const Tensor& x, DType dt) {
  require_defined("cast", "x", x);
  const Backend& be = backend(x.device());
  if (!be.cast) unsupported("cast", be);
  return be.cast(x, dt);
}

}  // namespace t2v::ops
