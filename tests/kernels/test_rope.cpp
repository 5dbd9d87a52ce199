// Wan 3D RoPE (docs/wan.md §2.8): table entries against the direct double formula,
// the rotation against a double loop, and pair norms preserved.
#include <cmath>

#include "kernel_test_util.h"
#include "kernels/ops.h"

namespace t2v {
namespace {

using test::expect_close;
using test::random_tensor;

// The angle of pair k for grid position (f, y, x) with head dim D, written
// straight from the spec: 22/21/21 pairs for D = 128, omega_j = theta^(-2j/d_axis).
double rope_angle(int64_t D, int64_t k, int64_t f, int64_t y, int64_t x, double theta = 10000.0) {
  const int64_t dh = 2 * (D / 6), dt = D - 2 * dh;
  if (k < dt / 2) return (double)f * std::pow(theta, -2.0 * (double)k / (double)dt);
  if (k < dt / 2 + dh / 2) return (double)y * std::pow(theta, -2.0 * (double)(k - dt / 2) / (double)dh);
  return (double)x * std::pow(theta, -2.0 * (double)(k - dt / 2 - dh / 2) / (double)dh);
}

TEST(Rope3dTable, MatchesDirectFormula) {
  // cos/sin of fp64 angles stored as fp32: each entry within 1 fp32 ulp (6e-8) of the double value.
  struct Case {
    int64_t T, H, W, D;
  };
  for (const Case& c : {Case{3, 4, 5, 128}, Case{2, 3, 7, 16}, Case{21, 30, 52, 128}, Case{1, 1, 1, 12}}) {
    const Tensor t = ops::rope_3d_table(c.T, c.H, c.W, c.D);
    ASSERT_EQ(t.shape(), (Shape{c.T * c.H * c.W, c.D / 2, 2}));
    const std::vector<float> tv = t.to_vector();
    double worst = 0;
    for (int64_t n = 0; n < c.T * c.H * c.W; n += 1 + n / 7) {  // spot checks, denser near the start
      const int64_t f = n / (c.H * c.W), y = (n / c.W) % c.H, x = n % c.W;
      for (int64_t k = 0; k < c.D / 2; ++k) {
        const double phi = rope_angle(c.D, k, f, y, x);
        worst = std::max({worst, std::fabs(tv[(n * (c.D / 2) + k) * 2] - std::cos(phi)),
                          std::fabs(tv[(n * (c.D / 2) + k) * 2 + 1] - std::sin(phi))});
      }
    }
    std::printf("  [rope_3d_table %ldx%ldx%ld D=%ld] max abs err %.2e\n", (long)c.T, (long)c.H, (long)c.W, (long)c.D, worst);
    EXPECT_LE(worst, 6e-8);
  }
  // Pinned structure for D = 128: pair 21 is the last frame pair, 22 the first row pair (omega 1),
  // 43 the first column pair (omega 1). Token (f=2, y=3, x=4) on a 3x4x5 grid.
  const Tensor t = ops::rope_3d_table(3, 4, 5, 128);
  const int64_t n = (2 * 4 + 3) * 5 + 4;
  EXPECT_FLOAT_EQ(t.item((n * 64 + 22) * 2 + 1), (float)std::sin(3.0));
  EXPECT_FLOAT_EQ(t.item((n * 64 + 43) * 2 + 1), (float)std::sin(4.0));
  EXPECT_FLOAT_EQ(t.item((n * 64 + 0) * 2 + 1), (float)std::sin(2.0));
  EXPECT_FLOAT_EQ(t.item((n * 64 + 21) * 2 + 1), (float)std::sin(2.0 * std::pow(10000.0, -42.0 / 44.0)));
}

TEST(Rope3d, RotatesInterleavedPairs) {
  // Rotation in double from the fp32 table, one rounding: rtol 1e-6 against cos/sin of the exact angle.
  struct Case {
    int64_t B, T, H, W, NH, D;
  };
  uint32_t seed = 1;
  for (const Case& c : {Case{1, 2, 3, 4, 2, 128}, Case{2, 1, 3, 5, 3, 16}, Case{1, 3, 1, 1, 1, 12}}) {
    const int64_t N = c.T * c.H * c.W;
    const Tensor x = random_tensor(Shape{c.B, N, c.NH, c.D}, seed++);
    const Tensor y = ops::rope_3d(x, ops::rope_3d_table(c.T, c.H, c.W, c.D));
    ASSERT_EQ(y.shape(), x.shape());
    const std::vector<float> xv = x.to_vector(), yv = y.to_vector();
    std::vector<double> ref(xv.size());
    double worst_norm = 0;
    for (int64_t b = 0; b < c.B; ++b)
      for (int64_t n = 0; n < N; ++n)
        for (int64_t h = 0; h < c.NH; ++h)
          for (int64_t k = 0; k < c.D / 2; ++k) {
            const int64_t f = n / (c.H * c.W), yy = (n / c.W) % c.H, xx = n % c.W;
            const double phi = rope_angle(c.D, k, f, yy, xx);
            const int64_t i = ((b * N + n) * c.NH + h) * c.D + 2 * k;
            ref[i] = xv[i] * std::cos(phi) - xv[i + 1] * std::sin(phi);
            ref[i + 1] = xv[i] * std::sin(phi) + xv[i + 1] * std::cos(phi);
            const double n_in = std::hypot((double)xv[i], (double)xv[i + 1]);
            const double n_out = std::hypot((double)yv[i], (double)yv[i + 1]);
            worst_norm = std::max(worst_norm, std::fabs(n_out - n_in) / (n_in + 1e-30));
          }
    expect_close(y, ref, 1e-6, "rope_3d " + x.shape().str());
    std::printf("  [rope_3d %s] pair norm max rel change %.2e\n", x.shape().str().c_str(), worst_norm);
    EXPECT_LE(worst_norm, 1e-6);  // a rotation preserves each pair's length
  }
}

}  // namespace
}  // namespace t2v
