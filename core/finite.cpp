#include "core/finite.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace t2v {

namespace {

// All-ones exponent = Inf or NaN (F8_E4M3 has no Inf: only S.1111.111 is NaN).
template <class U>
struct Pattern {
  U mask, value;
};

// True when any of n elements matches; written so the compiler vectorises the loop.
template <class U>
bool any_match(const U* p, int64_t n, Pattern<U> pat) {
  U hit = 0;
  for (int64_t i = 0; i < n; ++i) hit |= static_cast<U>((p[i] & pat.mask) == pat.value);
  return hit != 0;
}

template <class U>
int64_t first_match(const void* data, int64_t n, Pattern<U> pat) {
  const U* p = static_cast<const U*>(data);
  constexpr int64_t kBlock = 1 << 14;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  int64_t first_block = blocks;
#pragma omp parallel for reduction(min : first_block) schedule(static) if (n > (1 << 18))
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t lo = b * kBlock, len = std::min(kBlock, n - lo);
    if (any_match(p + lo, len, pat)) first_block = std::min(first_block, b);
  }
  if (first_block == blocks) return -1;
  for (int64_t i = first_block * kBlock; i < n; ++i)
    if ((p[i] & pat.mask) == pat.value) return i;
  return -1;  // not reached
}

}  // namespace

int64_t first_non_finite(const Tensor& t) {
  if (!t.defined() || t.numel() == 0) return -1;
  T2V_ASSERT(t.device() == Device::CPU, "first_non_finite needs a CPU tensor");
  const int64_t n = t.numel();
  switch (t.dtype()) {
    case DType::F32:
      return first_match<uint32_t>(t.raw(), n, {0x7f800000u, 0x7f800000u});
    case DType::F16:
      return first_match<uint16_t>(t.raw(), n, {0x7c00, 0x7c00});
    case DType::BF16:
      return first_match<uint16_t>(t.raw(), n, {0x7f80, 0x7f80});
    case DType::F8_E4M3:
      return first_match<uint8_t>(t.raw(), n, {0x7f, 0x7f});
    case DType::F8_E5M2:
      return first_match<uint8_t>(t.raw(), n, {0x7c, 0x7c});
    default:
      return -1;
  }
}

int64_t first_non_finite_anywhere(const Tensor& t) {
  if (!t.defined()) return -1;
  return first_non_finite(t.device() == Device::CPU ? t : t.to(Device::CPU));
}

}  // namespace t2v
