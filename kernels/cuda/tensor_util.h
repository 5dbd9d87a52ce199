// Argument checks and conversions shared by the Tensor-level CUDA ops
// (ops_*.cpp, gemm_cublaslt.cpp): device/dtype checks with errors that name the
// op and the argument, broadcast views, and casts of side tensors. Host code only.
#pragma once

#include <string>

#include "core/tensor.h"
#include "kernels/cuda/launch.h"

namespace t2v::ops::cuda {

// Throws t2v::Error(70) unless `t` is defined and on the CUDA device.
void require_cuda(const Tensor& t, const char* op, const char* name);
// The float element code of `t` (F32/BF16/F16); throws Error(70) for other dtypes.
Elem float_elem(const Tensor& t, const char* op, const char* name);
Elem to_elem(DType dt);
DType to_dtype(Elem e);
// Code of any dtype the cast kernel handles; throws Error(70) for FP8.
CastCode cast_code(DType dt, const char* op);

// NumPy broadcast of two shapes; throws Error(70) naming the op and shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
// A view of `t` broadcast to `out` (t's shape right-aligned against out's).
BView broadcast_view(const Tensor& t, const Shape& out, const char* op, const char* name);
OutShape out_shape(const Shape& s);

// `t` in dtype `dt` on the device (itself when it already is).
Tensor cast_to(const Tensor& t, DType dt);

}  // namespace t2v::ops::cuda
