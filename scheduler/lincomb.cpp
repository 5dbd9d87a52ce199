// lincomb (scheduler/lincomb.h): argument checks, device dispatch and the CPU
// float32 reference.
#include "scheduler/lincomb.h"

#include <atomic>
#include <cmath>
#include <vector>

namespace t2v {
namespace {

std::atomic<LincombFn> g_cuda_lincomb{nullptr};

}  // namespace

void register_lincomb(Device dev, LincombFn fn) {
  T2V_ASSERT(dev == Device::CUDA, "lincomb for {} is built in", device_name(dev));
  g_cuda_lincomb.store(fn);
}

void lincomb(Tensor& dst, std::span<const LinTerm> terms) {
  T2V_ASSERT(dst.defined() && dst.dtype() == DType::F32, "lincomb destination {}", dst.str());
  std::vector<LinTerm> used;
  for (const LinTerm& t : terms) {
    T2V_ASSERT(std::isfinite(t.coef), "lincomb coefficient {} is not finite", t.coef);
    if (t.coef == 0.0) continue;
    T2V_ASSERT(t.src && t.src->defined() && t.src->dtype() == DType::F32 && t.src->shape() == dst.shape() &&
                   t.src->device() == dst.device(),
               "lincomb source {} for destination {}", t.src ? t.src->str() : "null", dst.str());
    used.push_back(t);
  }
  if (dst.device() == Device::CPU) return lincomb_cpu(dst, used);
  const LincombFn fn = g_cuda_lincomb.load();
  if (!fn)
    throw Error(kExitUnavailable, "the scheduler step (lincomb) is not available for CUDA tensors in this build",
                "run the scheduler on CPU tensors");
  fn(dst, used);
}

void lincomb_cpu(Tensor& dst, std::span<const LinTerm> terms) {
  std::vector<const float*> src;
  std::vector<double> coef;
  for (const LinTerm& t : terms) {
    src.push_back(t.src->data<float>());
    coef.push_back(t.coef);
  }
  float* out = dst.data<float>();
  const int64_t n = dst.numel();
  const size_t k = src.size();
#pragma omp parallel for schedule(static) if (n >= (1 << 16))
  for (int64_t j = 0; j < n; ++j) {
    double acc = 0.0;
    for (size_t t = 0; t < k; ++t) acc += coef[t] * static_cast<double>(src[t][j]);
    out[j] = static_cast<float>(acc);
  }
}

}  // namespace t2v
