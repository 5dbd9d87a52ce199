// The test device's table: every entry downloads its arguments (float ones
// widened to F32), calls the CPU table's entry and uploads the result rounded
// to the dtype of the first tensor argument (test_device.h). Argument checks of
// kernels/ops.cpp have run; the checks here are the device's own (device and
// dtype of every argument), with the CUDA backend's messages.
#include <fmt/format.h>

#include <vector>

#include "core/error.h"
#include "kernels/test_device/backend_test_device.h"
#include "kernels/test_device/test_device.h"

namespace t2v::ops::test_device {
namespace {

const Backend& cpu() { return backend(Device::CPU); }

void require_test(const Tensor& t, const char* op, const char* name) {
  if (!t.defined()) fail(kExitSoftware, "{}: argument '{}' is undefined", op, name);
  if (t.device() != Device::Test)
    fail(kExitSoftware, "{}: argument '{}' is {} but the op runs on the test device; move it with .to(Device::Test)",
         op, name, t.str());
}

bool is_float(DType dt) { return dt == DType::F32 || dt == DType::BF16 || dt == DType::F16; }

// A float argument as host F32 (the device's widening load); undefined stays undefined.
Tensor f32(const Tensor& t, const char* op, const char* name) {
  if (!t.defined()) return Tensor();
  require_test(t, op, name);
  if (!is_float(t.dtype()))
    fail(kExitSoftware, "{}: argument '{}' is {}; the test device takes F32, BF16 or F16", op, name, t.str());
  const Tensor h = t.to(Device::CPU);
  return h.dtype() == DType::F32 ? h : h.to(DType::F32);
}

// Any argument's bytes on the host, unchanged (layout ops, ids, masks).
Tensor bytes(const Tensor& t, const char* op, const char* name) {
  if (!t.defined()) return Tensor();
  require_test(t, op, name);
  return t.to(Device::CPU);
}

// A host result stored on the device in `dt` (one rounding from F32).
Tensor store(const Tensor& host, DType dt) { return (host.dtype() == dt ? host : host.to(dt)).to(Device::Test); }

// ---- GEMM ---------------------------------------------------------------------

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias) {
  const char* op = "linear";
  return store(cpu().linear(f32(x, op, "x"), f32(w, op, "w"), f32(bias, op, "bias")), x.dtype());
}

Tensor linear_gelu_tanh(const Tensor& x, const Tensor& w, const Tensor& bias) {
  const char* op = "linear_gelu_tanh";
  return store(cpu().linear_gelu_tanh(f32(x, op, "x"), f32(w, op, "w"), f32(bias, op, "bias")), x.dtype());
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  const char* op = "matmul";
  return store(cpu().matmul(f32(a, op, "a"), f32(b, op, "b")), a.dtype());
}

// ---- normalisation ------------------------------------------------------------

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps) {
  const char* op = "layer_norm";
  return store(cpu().layer_norm(f32(x, op, "x"), f32(weight, op, "weight"), f32(bias, op, "bias"), eps), x.dtype());
}

Tensor layer_norm_modulate(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps, const Tensor& shift,
                           const Tensor& scale_t) {
  const char* op = "layer_norm_modulate";
  return store(cpu().layer_norm_modulate(f32(x, op, "x"), f32(weight, op, "weight"), f32(bias, op, "bias"), eps,
                                         f32(shift, op, "shift"), f32(scale_t, op, "scale")),
               x.dtype());
}

Tensor rms_norm(const Tensor& x, const Tensor& weight, float eps) {
  const char* op = "rms_norm";
  return store(cpu().rms_norm(f32(x, op, "x"), f32(weight, op, "weight"), eps), x.dtype());
}

Tensor rms_norm_channels(const Tensor& x, const Tensor& gamma, float eps) {
  const char* op = "rms_norm_channels";
  return store(cpu().rms_norm_channels(f32(x, op, "x"), f32(gamma, op, "gamma"), eps), x.dtype());
}

Tensor softmax(const Tensor& x) { return store(cpu().softmax(f32(x, "softmax", "x")), x.dtype()); }

// ---- attention ----------------------------------------------------------------

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p) {
  const char* op = "attention";
  AttentionParams hp;
  hp.scale = p.scale;
  hp.bias = f32(p.bias, op, "bias");
  hp.key_mask = bytes(p.key_mask, op, "key_mask");  // I64/I32/U8/F32 (ops.cpp checked)
  return store(cpu().attention(f32(q, op, "q"), f32(k, op, "k"), f32(v, op, "v"), hp), q.dtype());
}

// ---- activations / elementwise ------------------------------------------------

Tensor gelu_tanh(const Tensor& x) { return store(cpu().gelu_tanh(f32(x, "gelu_tanh", "x")), x.dtype()); }
Tensor gelu_erf(const Tensor& x) { return store(cpu().gelu_erf(f32(x, "gelu_erf", "x")), x.dtype()); }
Tensor silu(const Tensor& x) { return store(cpu().silu(f32(x, "silu", "x")), x.dtype()); }
Tensor add(const Tensor& a, const Tensor& b) { return store(cpu().add(f32(a, "add", "a"), f32(b, "add", "b")), a.dtype()); }
Tensor sub(const Tensor& a, const Tensor& b) { return store(cpu().sub(f32(a, "sub", "a"), f32(b, "sub", "b")), a.dtype()); }
Tensor mul(const Tensor& a, const Tensor& b) { return store(cpu().mul(f32(a, "mul", "a"), f32(b, "mul", "b")), a.dtype()); }
Tensor scale(const Tensor& x, float s) { return store(cpu().scale(f32(x, "scale", "x"), s), x.dtype()); }
Tensor add_scalar(const Tensor& x, float s) { return store(cpu().add_scalar(f32(x, "add_scalar", "x"), s), x.dtype()); }
Tensor clamp(const Tensor& x, float lo, float hi) { return store(cpu().clamp(f32(x, "clamp", "x"), lo, hi), x.dtype()); }

Tensor modulate(const Tensor& x, const Tensor& shift, const Tensor& scale_t) {
  const char* op = "modulate";
  return store(cpu().modulate(f32(x, op, "x"), f32(shift, op, "shift"), f32(scale_t, op, "scale")), x.dtype());
}

Tensor add_gated(const Tensor& x, const Tensor& y, const Tensor& gate) {
  const char* op = "add_gated";
  return store(cpu().add_gated(f32(x, op, "x"), f32(y, op, "y"), f32(gate, op, "gate")), x.dtype());
}

void lincomb(Tensor& dst, std::span<const LinTerm> terms) {
  const char* op = "lincomb";
  require_test(dst, op, "dst");
  if (dst.dtype() != DType::F32) fail(kExitSoftware, "lincomb: dst {} must be F32", dst.str());
  // Every source is downloaded before dst is written: dst may be one of them.
  std::vector<Tensor> src;
  src.reserve(terms.size());
  std::vector<LinTerm> host_terms;
  for (const LinTerm& t : terms) {
    require_test(*t.src, op, "src");
    if (t.src->dtype() != DType::F32) fail(kExitSoftware, "lincomb: source {} must be F32", t.src->str());
    src.push_back(t.src->to(Device::CPU));
    host_terms.push_back({t.coef, &src.back()});
  }
  Tensor out = Tensor::empty(dst.shape(), DType::F32);
  cpu().lincomb(out, host_terms);
  dst.copy_from(out);
}

// ---- convolution / resampling ---------------------------------------------------

Tensor conv3d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv3dParams& p) {
  const char* op = "conv3d";
  return store(cpu().conv3d(f32(x, op, "x"), f32(w, op, "w"), f32(bias, op, "bias"), p), x.dtype());
}

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p) {
  const char* op = "conv2d";
  return store(cpu().conv2d(f32(x, op, "x"), f32(w, op, "w"), f32(bias, op, "bias"), p), x.dtype());
}

// Widening and rounding back are exact for a copy of float values.
Tensor upsample_nearest2x(const Tensor& x) {
  return store(cpu().upsample_nearest2x(f32(x, "upsample_nearest2x", "x")), x.dtype());
}

Tensor rope_3d(const Tensor& x, const Tensor& table) {
  return store(cpu().rope_3d(f32(x, "rope_3d", "x"), f32(table, "rope_3d", "table")), x.dtype());
}

// ---- layout: bytes of any dtype ---------------------------------------------------

Tensor concat(const std::vector<Tensor>& xs, int dim) {
  std::vector<Tensor> h;
  h.reserve(xs.size());
  for (const Tensor& t : xs) h.push_back(bytes(t, "concat", "xs[i]"));
  return cpu().concat(h, dim).to(Device::Test);
}

Tensor slice(const Tensor& x, int dim, int64_t start, int64_t end) {
  return cpu().slice(bytes(x, "slice", "x"), dim, start, end).to(Device::Test);
}

Tensor permute(const Tensor& x, const std::vector<int>& perm) {
  return cpu().permute(bytes(x, "permute", "x"), perm).to(Device::Test);
}

Tensor contiguous_copy(const Tensor& x) {
  return cpu().contiguous_copy(bytes(x, "contiguous_copy", "x")).to(Device::Test);
}

Tensor embedding(const Tensor& table, const Tensor& ids) {
  return cpu().embedding(bytes(table, "embedding", "table"), bytes(ids, "embedding", "ids")).to(Device::Test);
}

// The CUDA cast kernel's dtypes: floats and I64/I32/U8 (no FP8).
Tensor cast(const Tensor& x, DType dt) {
  for (const DType d : {x.dtype(), dt})
    if (d == DType::F8_E4M3 || d == DType::F8_E5M2)
      fail(kExitSoftware, "cast: dtype {} is not supported on the test device (as on CUDA)", dtype_name(d));
  return cpu().cast(bytes(x, "cast", "x"), dt).to(Device::Test);
}

// ---- device hooks --------------------------------------------------------------------

size_t peak_bytes() { return test_device_memory_stats().peak_in_use_bytes; }

}  // namespace

void register_backend(Backend& b) {
  b.open = open_test_device;
  b.peak_memory_bytes = peak_bytes;
  b.reset_peak_memory = reset_test_device_peak_memory;
  b.linear = linear;
  b.linear_gelu_tanh = linear_gelu_tanh;
  b.matmul = matmul;
  b.layer_norm = layer_norm;
  b.layer_norm_modulate = layer_norm_modulate;
  b.rms_norm = rms_norm;
  b.rms_norm_channels = rms_norm_channels;
  b.softmax = softmax;
  b.attention = attention;
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
  b.lincomb = lincomb;
  b.conv3d = conv3d;
  b.conv2d = conv2d;
  b.upsample_nearest2x = upsample_nearest2x;
  b.rope_3d = rope_3d;
  b.concat = concat;
  b.slice = slice;
  b.permute = permute;
  b.contiguous_copy = contiguous_copy;
  b.embedding = embedding;
  b.cast = cast;
}

}  // namespace t2v::ops::test_device
