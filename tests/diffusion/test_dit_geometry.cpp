// The DiT's token geometry (diffusion/wan_dit_geometry.h): patchify_3d /
// unpatchify_3d against Conv3d and the direct index formulas for several patch
// sizes, bit-exact on the test device in every storage dtype; the RoPE table
// against the direct double formula.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "diffusion/wan_dit_geometry.h"
#include "dit_test_util.h"
#include "kernels/ops.h"
#include "kernels/test_device/test_device.h"

namespace t2v {
namespace {

Tensor random_tensor(const Shape& s, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(s.numel()));
  for (auto& x : v) x = nd(rng);
  return Tensor::from_floats(v, s);
}

using Patch = std::array<int64_t, 3>;

TEST(DitGeometry, PatchifyLinearEqualsConv3d) {
  // Odd grid, non-square patches, pt = 1 (Wan's) and pt = 2: the gathered-patch GEMM equals the strided Conv3d.
  for (const Patch patch : {Patch{1, 3, 2}, Patch{2, 3, 2}, Patch{1, 2, 2}, Patch{4, 1, 5}}) {
    const auto [pt, ph, pw] = patch;
    const Shape xs{2, 3, 4, 6, 10};
    const int64_t N = (4 / pt) * (6 / ph) * (10 / pw), K = 3 * pt * ph * pw;
    const Tensor x = random_tensor(xs, 1), w = random_tensor(Shape{5, 3, pt, ph, pw}, 2), b = random_tensor(Shape{5}, 3);
    ops::Conv3dParams p;
    p.stride = {static_cast<int>(pt), static_cast<int>(ph), static_cast<int>(pw)};
    const Tensor conv = ops::conv3d(x, w, b, p);   // [2, 5, T', H', W']
    const Tensor tokens = patchify_3d(x, patch);  // [2, N, K]
    ASSERT_EQ(tokens.shape(), (Shape{2, N, K}));
    const Tensor lin = ops::linear(tokens, w.reshape(Shape{5, K}), b);  // [2, N, 5]
    const Tensor conv_tokens = ops::permute(conv.reshape(Shape{2, 5, N}), {0, 2, 1});
    const auto d = test::diff(lin, conv_tokens);
    EXPECT_LE(d.rel(), 1e-6) << d.max_abs << " patch " << pt << "x" << ph << "x" << pw;
  }
}

TEST(DitGeometry, PatchifyIsChannelSlowestIndexForIndex) {
  for (const Patch patch : {Patch{1, 2, 2}, Patch{2, 3, 1}, Patch{3, 1, 2}}) {
    const auto [pt, ph, pw] = patch;
    const int64_t B = 2, C = 3, T = 2 * pt, H = 3 * ph, W = 4 * pw, Hp = 3, Wp = 4, N = 2 * Hp * Wp;
    const int64_t K = C * pt * ph * pw;
    const Tensor x = random_tensor(Shape{B, C, T, H, W}, 4);
    const std::vector<float> xv = x.to_vector(), tv = patchify_3d(x, patch).to_vector();
    ASSERT_EQ(static_cast<int64_t>(tv.size()), B * N * K);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t n = 0; n < N; ++n)
        for (int64_t c = 0; c < C; ++c)
          for (int64_t kt = 0; kt < pt; ++kt)
            for (int64_t ky = 0; ky < ph; ++ky)
              for (int64_t kx = 0; kx < pw; ++kx) {
                const int64_t f = n / (Hp * Wp), y = (n / Wp) % Hp, xx = n % Wp;
                const int64_t src = (((b * C + c) * T + f * pt + kt) * H + y * ph + ky) * W + xx * pw + kx;
                const int64_t dst = (b * N + n) * K + ((c * pt + kt) * ph + ky) * pw + kx;
                ASSERT_EQ(tv[static_cast<size_t>(dst)], xv[static_cast<size_t>(src)]) << "patch " << pt << ph << pw;
              }
  }
}

TEST(DitGeometry, UnpatchifyIsChannelFastest) {
  for (const Patch patch : {Patch{1, 2, 2}, Patch{2, 2, 3}, Patch{3, 1, 2}}) {
    const auto [pt, ph, pw] = patch;
    const std::array<int64_t, 3> grid{2, 3, 4};
    const int64_t C = 3, N = 24, K = pt * ph * pw * C, T = 2 * pt, H = 3 * ph, W = 4 * pw;
    std::vector<float> v(static_cast<size_t>(2 * N * K));
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
    const Tensor y = Tensor::from_floats(v, Shape{2, N, K});
    const Tensor out = unpatchify_3d(y, grid, patch, C);
    ASSERT_EQ(out.shape(), (Shape{2, C, T, H, W}));
    const auto o = out.to_vector();
    int64_t checked = 0;
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t f = 0; f < T; ++f)
          for (int64_t yy = 0; yy < H; ++yy)
            for (int64_t xx = 0; xx < W; ++xx) {
              const int64_t n = ((f / pt) * 3 + yy / ph) * 4 + xx / pw;
              const int64_t k = (((f % pt) * ph + yy % ph) * pw + xx % pw) * C + c;
              ASSERT_EQ(o[static_cast<size_t>((((b * C + c) * T + f) * H + yy) * W + xx)],
                        v[static_cast<size_t>((b * N + n) * K + k)]);
              ++checked;
            }
    EXPECT_EQ(checked, out.numel());
  }
}

// Pure data movement: on the test device, in every storage dtype, the bytes of the CPU result.
TEST(DitGeometry, PatchesAreBitExactOnTheTestDevice) {
  ops::open_test_device();
  for (const DType dt : {DType::F32, DType::BF16, DType::F16})
    for (const auto& [xs, patch] : std::vector<std::pair<Shape, Patch>>{
             {Shape{2, 3, 4, 6, 10}, {2, 2, 2}}, {Shape{1, 5, 3, 4, 6}, {1, 2, 2}}, {Shape{1, 2, 2, 3, 5}, {2, 3, 5}}}) {
      const Tensor x = random_tensor(xs, 5).to(dt);
      const Tensor tokens = patchify_3d(x.to(Device::Test), patch);
      ASSERT_EQ(tokens.device(), Device::Test);
      const Tensor host_tokens = tokens.to(Device::CPU);
      ASSERT_EQ(host_tokens.dtype(), dt);
      // The CPU reference in F32 (its ops take F32 only); dt -> F32 -> dt is exact.
      const Tensor ref = patchify_3d(x.to(DType::F32), patch).to(dt);
      ASSERT_EQ(0, std::memcmp(host_tokens.raw(), ref.raw(), ref.nbytes())) << dtype_name(dt) << " " << xs.str();
      const std::array<int64_t, 3> grid{xs[2] / patch[0], xs[3] / patch[1], xs[4] / patch[2]};
      const Tensor back = unpatchify_3d(tokens, grid, patch, xs[1]).to(Device::CPU);
      const Tensor ref_back = unpatchify_3d(ref.to(DType::F32), grid, patch, xs[1]).to(dt);
      ASSERT_EQ(0, std::memcmp(back.raw(), ref_back.raw(), ref_back.nbytes())) << dtype_name(dt) << " " << xs.str();
    }
}

TEST(DitGeometry, RejectsOddLatentAndWrongRows) {
  EXPECT_THROW(patchify_3d(Tensor::zeros(Shape{1, 16, 1, 3, 4}, DType::F32), {1, 2, 2}), Error);
  EXPECT_THROW(unpatchify_3d(Tensor::zeros(Shape{1, 5, 64}, DType::F32), {1, 2, 2}, {1, 2, 2}, 16), Error);
}

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
    const Tensor t = rope_3d_table(c.T, c.H, c.W, c.D);
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
    std::printf("  [rope_3d_table %ldx%ldx%ld D=%ld] max abs err %.2e\n", (long)c.T, (long)c.H, (long)c.W, (long)c.D,
                worst);
    EXPECT_LE(worst, 6e-8);
  }
  // Pinned structure for D = 128: pair 21 is the last frame pair, 22 the first row pair (omega 1),
  // 43 the first column pair (omega 1). Token (f=2, y=3, x=4) on a 3x4x5 grid.
  const Tensor t = rope_3d_table(3, 4, 5, 128);
  const int64_t n = (2 * 4 + 3) * 5 + 4;
  EXPECT_FLOAT_EQ(t.item((n * 64 + 22) * 2 + 1), (float)std::sin(3.0));
  EXPECT_FLOAT_EQ(t.item((n * 64 + 43) * 2 + 1), (float)std::sin(4.0));
  EXPECT_FLOAT_EQ(t.item((n * 64 + 0) * 2 + 1), (float)std::sin(2.0));
  EXPECT_FLOAT_EQ(t.item((n * 64 + 21) * 2 + 1), (float)std::sin(2.0 * std::pow(10000.0, -42.0 / 44.0)));
}

TEST(Rope3dTable, RejectsOddHeadDim) {
  try {
    rope_3d_table(1, 1, 1, 7);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), kExitSoftware);
    EXPECT_NE(std::string(e.what()).find("head_dim 7"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace t2v
