// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
// SC'11), checked against the Random123 known-answer vectors in tests/core.
//
// Normal sample i of stream `seed`:
//   key = (seed & 0xffffffff, seed >> 32), counter = (i & 0xffffffff, i >> 32, 0, 0)
//   (x0, x1, -, -) = Philox4x32-10(counter, key)
//   u0 = (x0 + 1) / 2^32,  u1 = (x1 + 1) / 2^32          both in (0, 1], exact in double
//   z  = sqrt(-2 ln u0) * cos(2 pi u1)                    in double, rounded once to fp32
// Double precision makes the fp32 result the correctly rounded value on any
// libm/device (barring a ~1e-9-probability double-rounding tie), so CPU and CUDA
// agree; u0 > 0 keeps the log finite (|z| <= sqrt(64 ln 2) ~ 6.66).
#include "core/philox.h"

#include <cmath>

namespace t2v {

namespace {

constexpr uint32_t kMul0 = 0xD2511F53u;
constexpr uint32_t kMul1 = 0xCD9E8D57u;
constexpr uint32_t kWeyl0 = 0x9E3779B9u;  // golden ratio
constexpr uint32_t kWeyl1 = 0xBB67AE85u;  // sqrt(3) - 1

inline void mulhilo(uint32_t a, uint32_t b, uint32_t* hi, uint32_t* lo) {
  uint64_t p = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(p >> 32);
  *lo = static_cast<uint32_t>(p);
}

}  // namespace

void Philox4x32::block(uint32_t out[4], const uint32_t counter[4], const uint32_t key[2]) {
  uint32_t c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3];
  uint32_t k0 = key[0], k1 = key[1];
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {  // the key schedule bumps between rounds
      k0 += kWeyl0;
      k1 += kWeyl1;
    }
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo(kMul0, c0, &hi0, &lo0);
    mulhilo(kMul1, c2, &hi1, &lo1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

float philox_normal(uint64_t seed, uint64_t index) {
  const uint32_t key[2] = {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)};
  const uint32_t ctr[4] = {static_cast<uint32_t>(index), static_cast<uint32_t>(index >> 32), 0u, 0u};
  uint32_t x[4];
  Philox4x32::block(x, ctr, key);
  constexpr double kInv2p32 = 1.0 / 4294967296.0;
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  double u0 = (static_cast<double>(x[0]) + 1.0) * kInv2p32;
  double u1 = (static_cast<double>(x[1]) + 1.0) * kInv2p32;
  return static_cast<float>(std::sqrt(-2.0 * std::log(u0)) * std::cos(kTwoPi * u1));
}

Tensor randn_philox(const Shape& shape, uint64_t seed) {
  Tensor t = Tensor::empty(shape, DType::F32);
  float* p = t.data<float>();
  const int64_t n = t.numel();
#pragma omp parallel for schedule(static) if (n > 4096)
  for (int64_t i = 0; i < n; ++i) p[i] = philox_normal(seed, static_cast<uint64_t>(i));
  return t;
}

}  // namespace t2v
