// Argument checks and conversions for the CUDA ops (see tensor_util.h).
#include "kernels/cuda/tensor_util.h"

#include <fmt/format.h>

#include "core/error.h"
#include "kernels/ops.h"

namespace t2v::ops::cuda {

void require_cuda(const Tensor& t, const char* op, const char* name) {
  if (!t.defined()) fail(kExitSoftware, "{}: argument '{}' is undefined", op, name);
  if (t.device() != Device::CUDA)
    fail(kExitSoftware, "{}: argument '{}' is {} but the op runs on cuda; move it with .to(Device::CUDA)", op, name,
         t.str());
}

Elem to_elem(DType dt) {
  switch (dt) {
    case DType::BF16: return Elem::BF16;
    case DType::F16: return Elem::F16;
    default: return Elem::F32;
  }
}

DType to_dtype(Elem e) {
  switch (e) {
    case Elem::BF16: return DType::BF16;
    case Elem::F16: return DType::F16;
    default: return DType::F32;
  }
}

Elem float_elem(const Tensor& t, const char* op, const char* name) {
  const DType dt = t.dtype();
  if (dt != DType::F32 && dt != DType::BF16 && dt != DType::F16)
    fail(kExitSoftware, "{}: argument '{}' is {}; the CUDA op takes F32, BF16 or F16", op, name, t.str());
  return to_elem(dt);
}

CastCode cast_code(DType dt, const char* op) {
  switch (dt) {
    case DType::F32: return CastCode::F32;
    case DType::BF16: return CastCode::BF16;
    case DType::F16: return CastCode::F16;
    case DType::I64: return CastCode::I64;
    case DType::I32: return CastCode::I32;
    case DType::U8: return CastCode::U8;
    default: fail(kExitSoftware, "{}: dtype {} is not supported on CUDA", op, dtype_name(dt));
  }
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const int nd = std::max(a.ndim(), b.ndim());
  if (nd > kMaxBroadcastDims) fail(kExitSoftware, "{}: shapes {} and {} have more than 5 dims", op, a.str(), b.str());
  std::vector<int64_t> out(nd);
  for (int i = 0; i < nd; ++i) {
    const int ia = a.ndim() - nd + i, ib = b.ndim() - nd + i;
    const int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
    if (da != db && da != 1 && db != 1)
      fail(kExitSoftware, "{}: shapes {} and {} do not broadcast (dim {}: {} vs {})", op, a.str(), b.str(), i, da,
           db);
    out[i] = da == 1 ? db : da;
  }
  return Shape(out);
}

OutShape out_shape(const Shape& s) {
  OutShape o;
  o.nd = s.ndim();
  for (int i = 0; i < s.ndim(); ++i) o.size[i] = s[i];
  return o;
}

BView broadcast_view(const Tensor& t, const Shape& out, const char* op, const char* name) {
  const Shape& s = t.shape();
  if (s.ndim() > out.ndim())
    fail(kExitSoftware, "{}: '{}' {} has more dims than the output {}", op, name, s.str(), out.str());
  BView v;
  v.p = t.raw();
  v.dt = float_elem(t, op, name);
  int64_t stride = 1;
  for (int i = out.ndim() - 1; i >= 0; --i) {
    const int it = s.ndim() - out.ndim() + i;
    const int64_t d = it >= 0 ? s[it] : 1;
    if (d != out[i] && d != 1)
      fail(kExitSoftware, "{}: '{}' {} does not broadcast to {}", op, name, s.str(), out.str());
    v.stride[i] = (d == 1) ? 0 : stride;
    stride *= d;
  }
  return v;
}

Tensor cast_to(const Tensor& t, DType dt) { return t.dtype() == dt ? t : ops::cast(t, dt); }

}  // namespace t2v::ops::cuda
