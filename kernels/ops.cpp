// The public op set: argument checks, then dispatch on the device of the first
// tensor to the fp32 CPU reference (kernels/cpu) or the CUDA backend
// (kernels/cuda, same function names and signatures). Shape/dtype/device
// problems throw t2v::Error(70) naming the op and the shapes.
//
// Dtype rule: on the CPU, float ops take F32 only; layout ops (concat, slice,
// permute, copies, embedding) move any dtype. CUDA tensors are checked for
// shapes and devices here; which storage dtypes a CUDA kernel accepts is
// decided (and refused with a clear message) by the CUDA backend.
#include "kernels/ops.h"

#include <algorithm>
#include <string>

#include "kernels/cpu/ops_cpu.h"
#ifdef T2V_HAVE_CUDA
#include "kernels/cuda/ops_cuda.h"
#endif

namespace t2v::ops {
namespace {

constexpr const char* kShapeHint = "the model code passed tensors of inconsistent shapes (check the model config against the checkpoint)";

[[noreturn]] void shape_error(const char* op, const std::string& what) {
  throw Error(kExitSoftware, fmt::format("{}: {}", op, what), kShapeHint);
}

#ifndef T2V_HAVE_CUDA
[[noreturn]] void no_cuda(const char* op) {
  throw Error(kExitUnavailable, fmt::format("{}: CUDA backend not built", op),
              "rebuild with the CUDA toolkit installed (cmake -DT2V_CUDA=ON) or run on the CPU");
}
#endif

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

bool on_cpu(const Tensor& t) { return t.device() == Device::CPU; }

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

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias) {
  require_defined("linear", "x", x);
  require_defined("linear", "w", w);
  check_operands("linear", {{"x", &x}, {"w", &w}, {"bias", &bias}});
  if (x.dim() < 1 || w.dim() != 2 || x.size(-1) != w.size(1))
    shape_error("linear", fmt::format("x {} and w {} (expected x [..., K], w [N, K])", x.shape().str(), w.shape().str()));
  check_vector("linear", "bias", bias, w.size(0));
  if (on_cpu(x)) return cpu::linear(x, w, bias);
#ifdef T2V_HAVE_CUDA
  return cuda::linear(x, w, bias);
#else
  no_cuda("linear");
#endif
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
  if (on_cpu(a)) return cpu::matmul(a, b);
#ifdef T2V_HAVE_CUDA
  return cuda::matmul(a, b);
#else
  no_cuda("matmul");
#endif
}

// ---- normalisation ------------------------------------------------------------

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps) {
  require_defined("layer_norm", "x", x);
  check_operands("layer_norm", {{"x", &x}, {"weight", &weight}, {"bias", &bias}});
  if (x.dim() < 1) shape_error("layer_norm", fmt::format("x {} has no last dim", x.shape().str()));
  check_vector("layer_norm", "weight", weight, x.size(-1));
  check_vector("layer_norm", "bias", bias, x.size(-1));
  if (on_cpu(x)) return cpu::layer_norm(x, weight, bias, eps);
#ifdef T2V_HAVE_CUDA
  return cuda::layer_norm(x, weight, bias, eps);
#else
  no_cuda("layer_norm");
#endif
}

Tensor rms_norm(const Tensor& x, const Tensor& weight, float eps) {
  require_defined("rms_norm", "x", x);
  check_operands("rms_norm", {{"x", &x}, {"weight", &weight}});
  if (x.dim() < 1) shape_error("rms_norm", fmt::format("x {} has no last dim", x.shape().str()));
  check_vector("rms_norm", "weight", weight, x.size(-1));
  if (on_cpu(x)) return cpu::rms_norm(x, weight, eps);
#ifdef T2V_HAVE_CUDA
  return cuda::rms_norm(x, weight, eps);
#else
  no_cuda("rms_norm");
#endif
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
  if (on_cpu(x)) return cpu::rms_norm_channels(x, gamma, eps);
#ifdef T2V_HAVE_CUDA
  return cuda::rms_norm_channels(x, gamma, eps);
#else
  no_cuda("rms_norm_channels");
#endif
}

Tensor softmax(const Tensor& x) {
  require_defined("softmax", "x", x);
  check_operands("softmax", {{"x", &x}});
  if (x.dim() < 1) shape_error("softmax", fmt::format("x {} has no last dim", x.shape().str()));
  if (on_cpu(x)) return cpu::softmax(x);
#ifdef T2V_HAVE_CUDA
  return cuda::softmax(x);
#else
  no_cuda("softmax");
#endif
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
  if (on_cpu(q)) return cpu::attention(q, k, v, pp);
#ifdef T2V_HAVE_CUDA
  return cuda::attention(q, k, v, pp);
#else
  no_cuda(op);
#endif
}

// ---- activations / elementwise ------------------------------------------------

Tensor gelu_tanh(const Tensor& x) {
  require_defined("gelu_tanh", "x", x);
  check_operands("gelu_tanh", {{"x", &x}});
  if (on_cpu(x)) return cpu::gelu_tanh(x);
#ifdef T2V_HAVE_CUDA
  return cuda::gelu_tanh(x);
#else
  no_cuda("gelu_tanh");
#endif
}

Tensor gelu_erf(const Tensor& x) {
  require_defined("gelu_erf", "x", x);
  check_operands("gelu_erf", {{"x", &x}});
  if (on_cpu(x)) return cpu::gelu_erf(x);
#ifdef T2V_HAVE_CUDA
  return cuda::gelu_erf(x);
#else
  no_cuda("gelu_erf");
#endif
}

Tensor silu(const Tensor& x) {
  require_defined("silu", "x", x);
  check_operands("silu", {{"x", &x}});
  if (on_cpu(x)) return cpu::silu(x);
#ifdef T2V_HAVE_CUDA
  return cuda::silu(x);
#else
  no_cuda("silu");
#endif
}

Tensor add(const Tensor& a, const Tensor& b) {
  require_defined("add", "a", a);
  require_defined("add", "b", b);
  check_operands("add", {{"a", &a}, {"b", &b}});
  broadcast_shapes("add", a, b);
  if (on_cpu(a)) return cpu::add(a, b);
#ifdef T2V_HAVE_CUDA
  return cuda::add(a, b);
#else
  no_cuda("add");
#endif
}

Tensor sub(const Tensor& a, const Tensor& b) {
  require_defined("sub", "a", a);
  require_defined("sub", "b", b);
  check_operands("sub", {{"a", &a}, {"b", &b}});
  broadcast_shapes("sub", a, b);
  if (on_cpu(a)) return cpu::sub(a, b);
#ifdef T2V_HAVE_CUDA
  return cuda::sub(a, b);
#else
  no_cuda("sub");
#endif
}

Tensor mul(const Tensor& a, const Tensor& b) {
  require_defined("mul", "a", a);
  require_defined("mul", "b", b);
  check_operands("mul", {{"a", &a}, {"b", &b}});
  broadcast_shapes("mul", a, b);
  if (on_cpu(a)) return cpu::mul(a, b);
#ifdef T2V_HAVE_CUDA
  return cuda::mul(a, b);
#else
  no_cuda("mul");
#endif
}

Tensor scale(const Tensor& x, float s) {
  require_defined("scale", "x", x);
  check_operands("scale", {{"x", &x}});
  if (on_cpu(x)) return cpu::scale(x, s);
#ifdef T2V_HAVE_CUDA
  return cuda::scale(x, s);
#else
  no_cuda("scale");
#endif
}

Tensor add_scalar(const Tensor& x, float s) {
  require_defined("add_scalar", "x", x);
  check_operands("add_scalar", {{"x", &x}});
  if (on_cpu(x)) return cpu::add_scalar(x, s);
#ifdef T2V_HAVE_CUDA
  return cuda::add_scalar(x, s);
#else
  no_cuda("add_scalar");
#endif
}

Tensor clamp(const Tensor& x, float lo, float hi) {
  require_defined("clamp", "x", x);
  check_operands("clamp", {{"x", &x}});
  if (!(lo <= hi)) shape_error("clamp", fmt::format("lower bound {} is above upper bound {}", lo, hi));
  if (on_cpu(x)) return cpu::clamp(x, lo, hi);
#ifdef T2V_HAVE_CUDA
  return cuda::clamp(x, lo, hi);
#else
  no_cuda("clamp");
#endif
}

Tensor modulate(const Tensor& x, const Tensor& shift, const Tensor& scale) {
  require_defined("modulate", "x", x);
  require_defined("modulate", "shift", shift);
  require_defined("modulate", "scale", scale);
  check_operands("modulate", {{"x", &x}, {"shift", &shift}, {"scale", &scale}});
  check_broadcasts_to("modulate", "shift", shift, x);
  check_broadcasts_to("modulate", "scale", scale, x);
  if (on_cpu(x)) return cpu::modulate(x, shift, scale);
#ifdef T2V_HAVE_CUDA
  return cuda::modulate(x, shift, scale);
#else
  no_cuda("modulate");
#endif
}

Tensor add_gated(const Tensor& x, const Tensor& y, const Tensor& gate) {
  require_defined("add_gated", "x", x);
  require_defined("add_gated", "y", y);
  require_defined("add_gated", "gate", gate);
  check_operands("add_gated", {{"x", &x}, {"y", &y}, {"gate", &gate}});
  if (y.shape() != x.shape())
    shape_error("add_gated", fmt::format("y {} must have x's shape {}", y.shape().str(), x.shape().str()));
  check_broadcasts_to("add_gated", "gate", gate, x);
  if (on_cpu(x)) return cpu::add_gated(x, y, gate);
#ifdef T2V_HAVE_CUDA
  return cuda::add_gated(x, y, gate);
#else
  no_cuda("add_gated");
#endif
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
  if (x.dim() != 5 || w.dim() != 5 || w.size(1) != x.size(1))
    shape_error(op, fmt::format("x {} and w {} (expected x [B, Cin, T, H, W], w [Cout, Cin, kt, kh, kw])",
                                x.shape().str(), w.shape().str()));
  check_vector(op, "bias", bias, w.size(0));
  if (p.pad_t_front < 0 || p.pad_t_back < 0)
    shape_error(op, fmt::format("negative temporal padding ({}, {})", p.pad_t_front, p.pad_t_back));
  conv_out_len(op, "T", x.size(2), p.pad_t_front + p.pad_t_back, w.size(2), p.stride[0], x, w);
  conv_out_len(op, "H", x.size(3), 2 * p.pad_h, w.size(3), p.stride[1], x, w);
  conv_out_len(op, "W", x.size(4), 2 * p.pad_w, w.size(4), p.stride[2], x, w);
  if (on_cpu(x)) return cpu::conv3d(x, w, bias, p);
#ifdef T2V_HAVE_CUDA
  return cuda::conv3d(x, w, bias, p);
#else
  no_cuda(op);
#endif
}

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p) {
  const char* op = "conv2d";
  require_defined(op, "x", x);
  require_defined(op, "w", w);
  check_operands(op, {{"x", &x}, {"w", &w}, {"bias", &bias}});
  if (x.dim() != 4 || w.dim() != 4 || w.size(1) != x.size(1))
    shape_error(op, fmt::format("x {} and w {} (expected x [B, Cin, H, W], w [Cout, Cin, kh, kw])", x.shape().str(),
                                w.shape().str()));
  check_vector(op, "bias", bias, w.size(0));
  if (p.pad_top < 0 || p.pad_bottom < 0 || p.pad_left < 0 || p.pad_right < 0)
    shape_error(op, fmt::format("negative padding (top {}, bottom {}, left {}, right {})", p.pad_top, p.pad_bottom,
                                p.pad_left, p.pad_right));
  conv_out_len(op, "H", x.size(2), p.pad_top + p.pad_bottom, w.size(2), p.stride[0], x, w);
  conv_out_len(op, "W", x.size(3), p.pad_left + p.pad_right, w.size(3), p.stride[1], x, w);
  if (on_cpu(x)) return cpu::conv2d(x, w, bias, p);
#ifdef T2V_HAVE_CUDA
  return cuda::conv2d(x, w, bias, p);
#else
  no_cuda(op);
#endif
}

Tensor upsample_nearest2x(const Tensor& x) {
  require_defined("upsample_nearest2x", "x", x);
  check_operands("upsample_nearest2x", {{"x", &x}});
  if (x.dim() < 2) shape_error("upsample_nearest2x", fmt::format("x {} needs at least [H, W]", x.shape().str()));
  if (on_cpu(x)) return cpu::upsample_nearest2x(x);
#ifdef T2V_HAVE_CUDA
  return cuda::upsample_nearest2x(x);
#else
  no_cuda("upsample_nearest2x");
#endif
}

// ---- rotary embedding -------------------------------------------------------------

Tensor rope_3d_table(int64_t T, int64_t H, int64_t W, int64_t head_dim, double theta) {
  if (T < 0 || H < 0 || W < 0 || head_dim < 2 || head_dim % 2 != 0 || !(theta > 0.0))
    shape_error("rope_3d_table", fmt::format("grid {}x{}x{}, head_dim {}, theta {} (need a non-negative grid, an even "
                                             "head_dim >= 2 and theta > 0)", T, H, W, head_dim, theta));
  // The table is built on the CPU (fp64 angles); callers move it to their device once.
  return cpu::rope_3d_table(T, H, W, head_dim, theta);
}

Tensor rope_3d(const Tensor& x, const Tensor& table) {
  require_defined("rope_3d", "x", x);
  require_defined("rope_3d", "table", table);
  check_operands("rope_3d", {{"x", &x}, {"table", &table}});
  if (x.dim() != 4 || x.size(3) % 2 != 0 || table.dim() != 3 || table.size(0) != x.size(1) ||
      table.size(1) != x.size(3) / 2 || table.size(2) != 2)
    shape_error("rope_3d", fmt::format("x {} and table {} (expected x [B, N, NH, D] with D even, table [N, D/2, 2])",
                                       x.shape().str(), table.shape().str()));
  if (on_cpu(x)) return cpu::rope_3d(x, table);
#ifdef T2V_HAVE_CUDA
  return cuda::rope_3d(x, table);
#else
  no_cuda("rope_3d");
#endif
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
  if (on_cpu(x0)) return cpu::concat(xs, d);
#ifdef T2V_HAVE_CUDA
  return cuda::concat(xs, d);
#else
  no_cuda(op);
#endif
}

Tensor slice(const Tensor& x, int dim, int64_t start, int64_t end) {
  const char* op = "slice";
  require_defined(op, "x", x);
  const int d = normalize_dim(op, dim, x.dim(), x);
  if (start < 0 || start > end || end > x.size(d))
    shape_error(op, fmt::format("range [{}, {}) is outside dim {} of {}", start, end, d, x.shape().str()));
  if (on_cpu(x)) return cpu::slice(x, d, start, end);
#ifdef T2V_HAVE_CUDA
  return cuda::slice(x, d, start, end);
#else
  no_cuda(op);
#endif
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
  if (on_cpu(x)) return cpu::permute(x, perm);
#ifdef T2V_HAVE_CUDA
  return cuda::permute(x, perm);
#else
  no_cuda(op);
#endif
}

Tensor contiguous_copy(const Tensor& x) {
  require_defined("contiguous_copy", "x", x);
  if (on_cpu(x)) return cpu::contiguous_copy(x);
#ifdef T2V_HAVE_CUDA
  return cuda::contiguous_copy(x);
#else
  no_cuda("contiguous_copy");
#endif
}

Tensor embedding(const Tensor& table, const Tensor& ids) {
  const char* op = "embedding";
  require_defined(op, "table", table);
  require_defined(op, "ids", ids);
  check_operands(op, {{"table", &table}, {"ids", &ids}}, /*cpu_f32_only=*/false);
  if (table.dim() != 2 || ids.dim() > kMaxDims - 1 || (ids.dtype() != DType::I64 && ids.dtype() != DType::I32))
    shape_error(op, fmt::format("table {} and ids {} (expected table [V, C], ids I64/I32 with at most {} dims)",
                                desc(table), desc(ids), kMaxDims - 1));
  if (on_cpu(table)) return cpu::embedding(table, ids);
#ifdef T2V_HAVE_CUDA
  return cuda::embedding(table, ids);
#else
  no_cuda(op);
#endif
}

Tensor cast(const Tensor& x, DType dt) {
  require_defined("cast", "x", x);
  if (on_cpu(x)) return cpu::cast(x, dt);
#ifdef T2V_HAVE_CUDA
  return cuda::cast(x, dt);
#else
  no_cuda("cast");
#endif
}

}  // namespace t2v::ops
