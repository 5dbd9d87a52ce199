// CPU float32 reference of lincomb (scheduler/lincomb.h).
#include "scheduler/lincomb.h"

#include <cmath>
#include <vector>

namespace t2v {

void lincomb(Tensor& dst, std::span<const LinTerm> terms) {
  T2V_ASSERT(dst.defined() && dst.dtype() == DType::F32, "lincomb destination {}", dst.str());
  std::vector<const float*> src;
  std::vector<double> coef;
  for (const LinTerm& t : terms) {
    T2V_ASSERT(std::isfinite(t.coef), "lincomb coefficient {} is not finite", t.coef);
    if (t.coef == 0.0) continue;
    T2V_ASSERT(t.src && t.src->defined() && t.src->dtype() == DType::F32 && t.src->shape() == dst.shape() &&
                   t.src->device() == dst.device(),
               "lincomb source {} for destination {}", t.src ? t.src->str() : "null", dst.str());
    src.push_back(t.src->data<float>());
    coef.push_back(t.coef);
  }
  if (dst.device() != Device::CPU)
    throw Error(kExitUnavailable, "scheduler step (lincomb) is not yet implemented on CUDA",
                "run the scheduler on CPU tensors");

  float* out = dst.data<float>();
  const int64_t n = dst.numel();
  const size_t k = src.size();
  for (int64_t j = 0; j < n; ++j) {
    double acc = 0.0;
    for (size_t t = 0; t < k; ++t) acc += coef[t] * static_cast<double>(src[t][j]);
    out[j] = static_cast<float>(acc);
  }
}

}  // namespace t2v
