// The one numeric primitive of the schedulers: dst = sum_k coef_k * src_k over
// whole tensors. Every sampler step is a few of these, with the coefficients
// computed on the host in double (scheduler/*.cpp); porting the schedulers to
// another device only needs this function for that device.
#pragma once

#include <initializer_list>
#include <span>

#include "core/tensor.h"

namespace t2v {

struct LinTerm {
  double coef;
  const Tensor* src;  // F32, same shape as dst
};

// dst[j] = float(sum_k coef_k * double(src_k[j])), accumulated in double and
// rounded once. Terms whose coefficient is exactly 0 are skipped, so a sigma = 0
// step yields x0 exactly even where the dropped term holds inf. dst may be one of
// the sources (elementwise, read before write). All tensors F32 on one device:
// CPU runs the reference loop below; another device runs the function registered
// for it (Error(69) if none).
void lincomb(Tensor& dst, std::span<const LinTerm> terms);
inline void lincomb(Tensor& dst, std::initializer_list<LinTerm> terms) {
  lincomb(dst, std::span<const LinTerm>(terms.begin(), terms.size()));
}

// A device implementation receives only the non-zero terms (at most 4 in the
// samplers), already checked for dtype, shape and device. The CUDA backend
// registers one at startup, the way it registers its DeviceBackend.
using LincombFn = void (*)(Tensor& dst, std::span<const LinTerm> terms);
void register_lincomb(Device dev, LincombFn fn);

// The CPU float32 reference, also the oracle for device versions.
void lincomb_cpu(Tensor& dst, std::span<const LinTerm> terms);

}  // namespace t2v
