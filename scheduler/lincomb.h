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
// the sources (elementwise, read before write). All tensors F32 on one device;
// CPU only for now (CUDA tensors throw Error(69)).
void lincomb(Tensor& dst, std::span<const LinTerm> terms);
inline void lincomb(Tensor& dst, std::initializer_list<LinTerm> terms) {
  lincomb(dst, std::span<const LinTerm>(terms.begin(), terms.size()));
}

}  // namespace t2v
