// Shared helpers of the DiT tests: golden paths and error measures.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>

#include "core/tensor.h"

namespace t2v::test {

inline std::string dit_data(const std::string& rel) { return std::string(T2V_TEST_DATA_DIR) + "/diffusion/" + rel; }

struct Diff {
  double max_abs = 0;   // max |a - b|
  double ref_max = 0;   // max |b|
  double rel() const { return ref_max > 0 ? max_abs / ref_max : max_abs; }  // max error relative to the tensor's scale
};

// a: computed, b: reference; both CPU F32 of one shape.
inline Diff diff(const Tensor& a, const Tensor& b) {
  Diff d;
  const auto va = a.to(Device::CPU).to(DType::F32).to_vector(), vb = b.to(Device::CPU).to(DType::F32).to_vector();
  if (va.size() != vb.size()) {
    d.max_abs = INFINITY;
    return d;
  }
  for (size_t i = 0; i < va.size(); ++i) {
    const double e = std::fabs(static_cast<double>(va[i]) - vb[i]);
    d.max_abs = std::isnan(e) ? INFINITY : std::max(d.max_abs, e);
    d.ref_max = std::max(d.ref_max, std::fabs(static_cast<double>(vb[i])));
  }
  return d;
}

}  // namespace t2v::test
