// Philox4x32-10: Random123 known-answer vectors, element indexing, thread-count
// independence and the moments of the normal samples.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>

#include "core/philox.h"
#include "core/safetensors.h"

using namespace t2v;

TEST(Philox, KnownAnswerVectors) {
  // Random123 kat_vectors, "philox4x32 10" lines: counter, key, expected output.
  struct Kat {
    uint32_t ctr[4];
    uint32_t key[2];
    uint32_t out[4];
  } kats[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
       {0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
       {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const Kat& k : kats) {
    uint32_t out[4];
    Philox4x32::block(out, k.ctr, k.key);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(out[i], k.out[i]) << "word " << i << " of KAT ctr " << std::hex << k.ctr[0];
  }
}

// philox_normal(seed, i) == Box-Muller of the block at counter (i lo, i hi, 0, 0)
// with key (seed lo, seed hi): checks the counter/key layout, including the high words.
TEST(Philox, NormalUsesDocumentedCounterAndKey) {
  const uint64_t seeds[] = {0, 42, 0x123456789abcdefull};
  const uint64_t idx[] = {0, 1, 12345, 0x100000000ull + 7};
  for (uint64_t s : seeds)
    for (uint64_t i : idx) {
      uint32_t key[2] = {static_cast<uint32_t>(s), static_cast<uint32_t>(s >> 32)};
      uint32_t ctr[4] = {static_cast<uint32_t>(i), static_cast<uint32_t>(i >> 32), 0, 0};
      uint32_t x[4];
      Philox4x32::block(x, ctr, key);
      double u0 = (x[0] + 1.0) / 4294967296.0, u1 = (x[1] + 1.0) / 4294967296.0;
      float z = static_cast<float>(std::sqrt(-2.0 * std::log(u0)) * std::cos(2.0 * M_PI * u1));
      EXPECT_EQ(philox_normal(s, i), z) << "seed " << s << " index " << i;
    }
  EXPECT_NE(philox_normal(1, 0), philox_normal(2, 0));
  EXPECT_NE(philox_normal(1, 0), philox_normal(1, 0x100000000ull));
}

// Values from an independent Python implementation (tools/make_philox_golden.py
// writes tests/data/core/philox_golden.safetensors).
TEST(Philox, MatchesPythonGolden) {
  SafetensorsFile f(std::string(T2V_TEST_DATA_DIR) + "/core/philox_golden.safetensors");
  Tensor idx = f.get("index");
  Tensor want = f.get("normal_seed42");
  Tensor want2 = f.get("normal_seed_big");
  const uint64_t big = std::stoull(f.metadata().at("seed_big"));
  int64_t n = idx.numel();
  int max_ulp = 0;
  for (int64_t k = 0; k < n; ++k) {
    uint64_t i = static_cast<uint64_t>(idx.data<int64_t>()[k]);
    for (auto [seed, ref] : {std::pair{uint64_t{42}, want.data<float>()[k]}, std::pair{big, want2.data<float>()[k]}}) {
      float z = philox_normal(seed, i);
      int32_t a, b;
      std::memcpy(&a, &z, 4);
      std::memcpy(&b, &ref, 4);
      max_ulp = std::max(max_ulp, std::abs(a - b));
    }
  }
  // Both sides round the same double-precision formula to fp32; libm's log/cos
  // may differ from Python's by an ulp in double, which can flip the fp32 rounding.
  EXPECT_LE(max_ulp, 1);
  std::printf("[ philox ] %lld indices x 2 seeds vs Python: max difference %d ulp\n", static_cast<long long>(n),
              max_ulp);
}

TEST(Philox, RandnIsThreadCountIndependent) {
  const Shape shape{3, 5, 7, 11, 13};  // 15015 elements, an odd split across threads
  int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  Tensor a = randn_philox(shape, 1234);
  omp_set_num_threads(2);
  Tensor b = randn_philox(shape, 1234);
  omp_set_num_threads(saved);
  ASSERT_EQ(a.shape(), shape);
  EXPECT_EQ(std::memcmp(a.raw(), b.raw(), a.nbytes()), 0);
  EXPECT_EQ(a.data<float>()[15014], philox_normal(1234, 15014));
}

TEST(Philox, NormalMoments) {
  const int64_t n = 1000000;
  Tensor t = randn_philox({n}, 7);
  const float* p = t.data<float>();
  double s1 = 0, s2 = 0, s4 = 0;
  int64_t beyond2 = 0;
  for (int64_t i = 0; i < n; ++i) {
    double x = p[i];
    ASSERT_TRUE(std::isfinite(x));
    s1 += x;
    s2 += x * x;
    s4 += x * x * x * x;
    beyond2 += std::fabs(x) > 2.0;
  }
  double mean = s1 / n, var = s2 / n - mean * mean, kurt = s4 / n;
  double tail = static_cast<double>(beyond2) / n;
  std::printf("[ philox ] 1e6 samples: mean %.5f var %.5f E[x^4] %.4f P(|x|>2) %.5f\n", mean, var, kurt, tail);
  // 5-sigma bounds: sd(mean) = 1e-3, sd(var) = sqrt(2/n) = 1.4e-3, sd(E x^4) = sqrt(96/n) = 9.8e-3,
  // sd(tail) = sqrt(p(1-p)/n) = 2.1e-4 with p = 0.0455.
  EXPECT_LT(std::fabs(mean), 5e-3);
  EXPECT_LT(std::fabs(var - 1.0), 7.1e-3);
  EXPECT_LT(std::fabs(kurt - 3.0), 4.9e-2);
  EXPECT_LT(std::fabs(tail - 0.0455), 1.05e-3);
}
