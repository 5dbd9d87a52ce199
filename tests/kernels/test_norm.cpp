// layer_norm, rms_norm, rms_norm_channels and softmax against double loops.
#include <cmath>

#include "kernel_test_util.h"
#include "kernels/ops.h"

namespace t2v {
namespace {

using test::expect_close;
using test::random_tensor;

const Shape kRowShapes[] = {{1, 1}, {3, 7}, {113, 203}, {2, 3, 1023}, {5}};

TEST(LayerNorm, MatchesDoubleLoop) {
  // Double accumulation inside, one fp32 rounding at the end: rtol 1e-6.
  uint32_t seed = 1;
  for (const Shape& s : kRowShapes) {
    for (int affine = 0; affine < 2; ++affine) {
      // Offset mean (+3) so that a one-pass E[x^2]-E[x]^2 would lose digits.
      const Tensor x = random_tensor(s, seed++, 2.0f, 4.0f);
      const int64_t C = s[s.ndim() - 1], R = s.numel() / C;
      const Tensor w = affine ? random_tensor(Shape{C}, seed++) : Tensor();
      const Tensor b = affine ? random_tensor(Shape{C}, seed++) : Tensor();
      const float eps = 1e-6f;
      const Tensor y = ops::layer_norm(x, w, b, eps);
      const std::vector<float> xv = x.to_vector();
      std::vector<double> ref(xv.size());
      for (int64_t r = 0; r < R; ++r) {
        double mean = 0, var = 0;
        for (int64_t c = 0; c < C; ++c) mean += xv[r * C + c];
        mean /= C;
        for (int64_t c = 0; c < C; ++c) var += (xv[r * C + c] - mean) * (xv[r * C + c] - mean);
        var /= C;
        for (int64_t c = 0; c < C; ++c) {
          double v = (xv[r * C + c] - mean) / std::sqrt(var + eps);
          if (affine) v = v * w.item(c) + b.item(c);
          ref[r * C + c] = v;
        }
      }
      expect_close(y, ref, 1e-6, "layer_norm " + s.str() + (affine ? " affine" : ""));
    }
  }
}

TEST(RmsNorm, MatchesDoubleLoop) {
  // rtol 1e-6 (double sum of squares; normalised value and weight product rounded in fp32).
  uint32_t seed = 50;
  for (const Shape& s : kRowShapes) {
    for (int weighted = 0; weighted < 2; ++weighted) {
      const Tensor x = random_tensor(s, seed++);
      const int64_t C = s[s.ndim() - 1], R = s.numel() / C;
      const Tensor w = weighted ? random_tensor(Shape{C}, seed++) : Tensor();
      const Tensor y = ops::rms_norm(x, w, 1e-6f);
      const std::vector<float> xv = x.to_vector();
      std::vector<double> ref(xv.size());
      for (int64_t r = 0; r < R; ++r) {
        double ms = 0;
        for (int64_t c = 0; c < C; ++c) ms += (double)xv[r * C + c] * xv[r * C + c];
        const double inv = 1.0 / std::sqrt(ms / C + 1e-6);
        for (int64_t c = 0; c < C; ++c) ref[r * C + c] = xv[r * C + c] * inv * (weighted ? w.item(c) : 1.0);
      }
      expect_close(y, ref, 1e-6, "rms_norm " + s.str() + (weighted ? " weighted" : ""));
    }
  }
}

TEST(RmsNormChannels, MatchesDoubleLoop) {
  // x / max(||x||_C, eps) * sqrt(C) * gamma; rtol 1e-6.
  struct Case {
    Shape x, gamma;
  };
  const Case cases[] = {{{2, 5, 3, 4, 7}, {5, 1, 1, 1}},
                        {{1, 3, 1, 1, 1}, {3, 1, 1, 1}},
                        {{2, 7, 13, 11}, {7, 1, 1}},
                        {{1, 96, 2, 17, 29}, {96}},
                        {{3, 1, 300}, {1, 1}}};
  uint32_t seed = 80;
  for (const Case& c : cases) {
    const Tensor x = random_tensor(c.x, seed++), g = random_tensor(c.gamma, seed++);
    const Tensor y = ops::rms_norm_channels(x, g);
    const int64_t B = c.x[0], C = c.x[1], S = x.numel() / (B * C);
    const std::vector<float> xv = x.to_vector(), gv = g.to_vector();
    std::vector<double> ref(xv.size());
    for (int64_t b = 0; b < B; ++b)
      for (int64_t s = 0; s < S; ++s) {
        double ss = 0;
        for (int64_t ch = 0; ch < C; ++ch) ss += (double)xv[(b * C + ch) * S + s] * xv[(b * C + ch) * S + s];
        const double n = std::max(std::sqrt(ss), 1e-12);
        for (int64_t ch = 0; ch < C; ++ch)
          ref[(b * C + ch) * S + s] = xv[(b * C + ch) * S + s] / n * std::sqrt((double)C) * gv[ch];
      }
    expect_close(y, ref, 1e-6, "rms_norm_channels " + c.x.str());
  }
  // An all-zero column stays zero (eps guards the division).
  const Tensor z = Tensor::zeros(Shape{1, 4, 2, 2, 2}, DType::F32);
  for (float v : ops::rms_norm_channels(z, Tensor::full(Shape{4}, 1.0f)).to_vector()) EXPECT_EQ(v, 0.0f);
}

TEST(Softmax, MatchesDoubleLoop) {
  // rtol 1e-6. Logits up to +-30 exercise the max subtraction.
  uint32_t seed = 120;
  for (const Shape& s : kRowShapes) {
    const Tensor x = random_tensor(s, seed++, -30.0f, 30.0f);
    const int64_t C = s[s.ndim() - 1], R = s.numel() / C;
    const std::vector<float> xv = x.to_vector();
    std::vector<double> ref(xv.size());
    for (int64_t r = 0; r < R; ++r) {
      double mx = -INFINITY, sum = 0;
      for (int64_t c = 0; c < C; ++c) mx = std::max(mx, (double)xv[r * C + c]);
      for (int64_t c = 0; c < C; ++c) sum += std::exp(xv[r * C + c] - mx);
      for (int64_t c = 0; c < C; ++c) ref[r * C + c] = std::exp(xv[r * C + c] - mx) / sum;
    }
    expect_close(ops::softmax(x), ref, 1e-6, "softmax " + s.str());
  }
}

TEST(Softmax, AllMinusInfinityRowIsZero) {
  // Documented choice (kernels/cpu/backend_cpu.h): a row with no finite logit gives zeros, like attention's masked rows.
  const Tensor x = Tensor::from_floats({-INFINITY, -INFINITY, -INFINITY, 0.0f, -INFINITY, 0.0f}, Shape{2, 3});
  const std::vector<float> y = ops::softmax(x).to_vector();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(y[i], 0.0f);
  EXPECT_EQ(y[3], 0.5f);
  EXPECT_EQ(y[4], 0.0f);
  EXPECT_EQ(y[5], 0.5f);
}

}  // namespace
}  // namespace t2v
