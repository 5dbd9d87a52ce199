// What sampling does differently for Wan2.2 (app/wan22_sampling.h), element by element on
// random latents: the expert switch at the boundary (inclusive), the per-token timesteps of
// TI2V image-to-video, the I2V-A14B mask and the first-frame replacement.
// The end-to-end goldens (wan22_pipeline_test) cover the same through the official pipelines.
#include <gtest/gtest.h>

#include <random>

#include "app/i2v_conditioning.h"
#include "app/wan22_sampling.h"

namespace t2v {
namespace {

Tensor random_tensor(const Shape& s, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> n(0.0f, 1.0f);
  Tensor t = Tensor::empty(s, DType::F32);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = n(rng);
  return t;
}

TEST(Wan22Sampling, HighNoiseExpertWhileTAtOrAboveTheBoundary) {
  // The official generate(): `t.item() >= boundary * num_train_timesteps` picks the high-noise model.
  EXPECT_TRUE(high_noise_step(875.0, 0.875));
  EXPECT_FALSE(high_noise_step(874.0, 0.875));
  EXPECT_TRUE(high_noise_step(900.0, 0.9));
  EXPECT_FALSE(high_noise_step(899.0, 0.9));
  EXPECT_TRUE(high_noise_step(1000.0, 1.0));
  // --boundary, then model_index.json, then the official configs' ratios.
  EXPECT_EQ(expert_boundary(WanModelKind::T2V, 0.5, 0.875), 0.5);
  EXPECT_EQ(expert_boundary(WanModelKind::T2V, std::nullopt, 0.8), 0.8);
  EXPECT_EQ(expert_boundary(WanModelKind::T2V, std::nullopt, std::nullopt), 0.875);
  EXPECT_EQ(expert_boundary(WanModelKind::I2VA14B, std::nullopt, std::nullopt), 0.9);
}

TEST(Wan22Sampling, Ti2vImageTokensGetTimestepZero) {
  for (const auto& [B, T, n] : {std::tuple<int64_t, int64_t, int64_t>{1, 3, 6}, {2, 5, 7}, {2, 1, 4}}) {
    const Tensor ts = ti2v_token_timesteps(937.0f, B, T, n);
    ASSERT_EQ(ts.shape(), (Shape{B, T * n}));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t k = 0; k < T * n; ++k)
        EXPECT_EQ(ts.data<float>()[b * T * n + k], k < n ? 0.0f : 937.0f) << B << " " << T << " " << n << " " << k;
  }
}

TEST(Wan22Sampling, I2vA14bMaskIsOneOnLatentFrameZero) {
  // I2V-A14B builds its mask as Wan2.1 I2V does (app/i2v_conditioning): all 4 channels 1 on
  // latent frame 0 only (no last frame).
  for (const auto& [F, h, w] : {std::tuple<int64_t, int64_t, int64_t>{9, 2, 3}, {1, 3, 1}, {5, 1, 4}}) {
    const Tensor m = i2v_mask(F, h, w, /*last_frame=*/false);
    const int64_t T = (F - 1) / 4 + 1;
    ASSERT_EQ(m.shape(), (Shape{4, T, h, w}));
    const float* p = m.data<float>();
    for (int64_t ch = 0; ch < 4; ++ch)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t i = 0; i < h * w; ++i) EXPECT_EQ(p[(ch * T + t) * h * w + i], t == 0 ? 1.0f : 0.0f);
  }
}

TEST(Wan22Sampling, FirstFrameReplacedExactly) {
  for (const int64_t T : {1, 2, 4}) {
    const Tensor x = random_tensor(Shape{1, 3, T, 2, 5}, 11);
    const Tensor f = random_tensor(Shape{1, 3, 1, 2, 5}, 12);
    const Tensor y = with_first_frame(x, f);
    ASSERT_EQ(y.shape(), x.shape());
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t i = 0; i < 10; ++i)
          EXPECT_EQ(y.data<float>()[(c * T + t) * 10 + i],
                    t == 0 ? f.data<float>()[c * 10 + i] : x.data<float>()[(c * T + t) * 10 + i]);
  }
}

}  // namespace
}  // namespace t2v
