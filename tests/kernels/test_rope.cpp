// Wan 3D RoPE rotation (docs/wan.md §2.8): against a double loop, and pair norms
// preserved.
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

// The (cos, sin) table of the Wan angles for a T x H x W grid, straight from the
// formula above (the DiT builds its own: tests/diffusion/test_dit_geometry.cpp).
Tensor angle_table(int64_t T, int64_t H, int64_t W, int64_t D) {
  const int64_t N = T * H * W;
  Tensor t = Tensor::empty(Shape{N, D / 2, 2}, DType::F32);
  float* p = t.data<float>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < D / 2; ++k) {
      const double phi = rope_angle(D, k, n / (H * W), (n / W) % H, n % W);
      p[(n * (D / 2) + k) * 2] = (float)std::cos(phi);
      p[(n * (D / 2) + k) * 2 + 1] = (float)std::sin(phi);
    }
  return t;
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
    const Tensor y = ops::rope_3d(x, angle_table(c.T, c.H, c.W, c.D));
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
