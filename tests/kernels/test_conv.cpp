// conv3d / conv2d against a direct double loop; causal front padding equals an
// explicit zero-frame concat; nearest upsampling by index.
#include <omp.h>

#include "kernel_test_util.h"
#include "kernels/ops.h"

namespace t2v {
namespace {

using test::expect_close;
using test::random_tensor;
using ops::Conv2dParams;
using ops::Conv3dParams;

Conv3dParams c3(std::array<int, 3> stride, int front, int back, int pad_h, int pad_w) {
  Conv3dParams p;
  p.stride = stride;
  p.pad_t_front = front;
  p.pad_t_back = back;
  p.pad_h = pad_h;
  p.pad_w = pad_w;
  return p;
}

Conv2dParams c2(std::array<int, 2> stride, int top, int bottom, int left, int right) {
  Conv2dParams p;
  p.stride = stride;
  p.pad_top = top;
  p.pad_bottom = bottom;
  p.pad_left = left;
  p.pad_right = right;
  return p;
}

// Direct convolution over a zero-padded input: pads (front, back) per axis.
std::vector<double> conv_ref(const Tensor& x, const Tensor& w, const Tensor& bias, const int64_t stride[3],
                             const int64_t pad0[3], const int64_t pad1[3], Shape* out_shape) {
  const int64_t B = x.size(0), Ci = x.size(1), T = x.size(2), H = x.size(3), W = x.size(4);
  const int64_t Co = w.size(0), kt = w.size(2), kh = w.size(3), kw = w.size(4);
  const int64_t To = (T + pad0[0] + pad1[0] - kt) / stride[0] + 1, Ho = (H + pad0[1] + pad1[1] - kh) / stride[1] + 1,
                Wo = (W + pad0[2] + pad1[2] - kw) / stride[2] + 1;
  *out_shape = Shape{B, Co, To, Ho, Wo};
  const std::vector<float> xv = x.to_vector(), wv = w.to_vector();
  std::vector<double> y(B * Co * To * Ho * Wo);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t co = 0; co < Co; ++co)
      for (int64_t t = 0; t < To; ++t)
        for (int64_t oy = 0; oy < Ho; ++oy)
          for (int64_t ox = 0; ox < Wo; ++ox) {
            double s = bias.defined() ? bias.item(co) : 0.0;
            for (int64_t ci = 0; ci < Ci; ++ci)
              for (int64_t dt = 0; dt < kt; ++dt) {
                const int64_t it = t * stride[0] - pad0[0] + dt;
                if (it < 0 || it >= T) continue;
                for (int64_t dy = 0; dy < kh; ++dy) {
                  const int64_t iy = oy * stride[1] - pad0[1] + dy;
                  if (iy < 0 || iy >= H) continue;
                  for (int64_t dx = 0; dx < kw; ++dx) {
                    const int64_t ix = ox * stride[2] - pad0[2] + dx;
                    if (ix < 0 || ix >= W) continue;
                    s += (double)xv[(((b * Ci + ci) * T + it) * H + iy) * W + ix] *
                         wv[(((co * Ci + ci) * kt + dt) * kh + dy) * kw + dx];
                  }
                }
              }
            y[(((b * Co + co) * To + t) * Ho + oy) * Wo + ox] = s;
          }
  return y;
}

struct Conv3dCase {
  Shape x;                  // [B, Cin, T, H, W]
  std::array<int64_t, 4> w;  // Cout, kt, kh, kw
  Conv3dParams p;
  bool bias;
};

TEST(Conv3d, MatchesDoubleLoop) {
  // fp32 GEMM over K = Cin·kt·kh·kw <= 1728: rtol 1e-5.
  const Conv3dCase cases[] = {
      {{1, 3, 4, 7, 9}, {5, 3, 3, 3}, c3({1, 1, 1}, 2, 0, 1, 1), true},   // causal 3x3x3
      {{2, 3, 5, 6, 5}, {4, 3, 3, 3}, c3({1, 2, 2}, 2, 0, 1, 1), false},
      {{1, 4, 3, 5, 7}, {6, 1, 1, 1}, {}, true},                                          // pointwise
      {{1, 4, 7, 3, 5}, {4, 3, 1, 1}, c3({2, 1, 1}, 0, 0, 0, 0), true},                        // temporal downsample
      {{1, 2, 3, 4, 4}, {3, 3, 1, 1}, c3({1, 1, 1}, 2, 0, 0, 0), true},                           // time_conv, pad 2 front
      {{1, 2, 2, 5, 6}, {3, 2, 3, 2}, c3({1, 1, 1}, 1, 2, 2, 0), true},
      {{1, 1, 1, 1, 1}, {1, 1, 1, 1}, {}, false},
      // Wan-like latent frame (60x104): K·Wo·Ho exceeds the column budget, so rows are processed in blocks.
      {{1, 64, 2, 60, 104}, {2, 3, 3, 3}, c3({1, 1, 1}, 2, 0, 1, 1), true},
  };
  // 1 thread: one GEMM per block (multi-threaded where there are threads); 2 and 3:
  // (frame, row block) tasks per thread where there are enough, an uneven split with 3.
  const int saved_threads = omp_get_max_threads();
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    uint32_t seed = 1;
    for (const Conv3dCase& c : cases) {
      const Tensor x = random_tensor(c.x, seed++);
      const Tensor w = random_tensor(Shape{c.w[0], c.x[1], c.w[1], c.w[2], c.w[3]}, seed++);
      const Tensor b = c.bias ? random_tensor(Shape{c.w[0]}, seed++) : Tensor();
      const int64_t stride[3] = {c.p.stride[0], c.p.stride[1], c.p.stride[2]};
      const int64_t pad0[3] = {c.p.pad_t_front, c.p.pad_h, c.p.pad_w}, pad1[3] = {c.p.pad_t_back, c.p.pad_h, c.p.pad_w};
      Shape want;
      const std::vector<double> ref = conv_ref(x, w, b, stride, pad0, pad1, &want);
      const Tensor y = ops::conv3d(x, w, b, c.p);
      ASSERT_EQ(y.shape(), want);
      expect_close(y, ref, 1e-5, "conv3d x" + c.x.str() + " w" + w.shape().str() + " threads " + std::to_string(threads));
    }
  }
  omp_set_num_threads(saved_threads);
}

TEST(Conv3d, CausalPaddingEqualsZeroFrameConcat) {
  // Front padding must be exactly two zero frames: bitwise equal to padding by hand.
  const Tensor x = random_tensor(Shape{1, 5, 3, 6, 7}, 70), w = random_tensor(Shape{4, 5, 3, 3, 3}, 71);
  const Tensor b = random_tensor(Shape{4}, 72);
  const Tensor padded = ops::concat({Tensor::zeros(Shape{1, 5, 2, 6, 7}, DType::F32), x}, 2);
  const Tensor a = ops::conv3d(x, w, b, c3({1, 1, 1}, 2, 0, 1, 1));
  const Tensor e = ops::conv3d(padded, w, b, c3({1, 1, 1}, 0, 0, 1, 1));
  test::expect_equal(a, e, "causal pad vs zero-frame concat");
}

TEST(Conv2d, AsymmetricPaddingAndStride) {
  // rtol 1e-5. The VAE downsample pads right/bottom by one and strides 2.
  struct Case {
    Shape x;
    std::array<int64_t, 3> w;  // Cout, kh, kw
    Conv2dParams p;
  };
  const Case cases[] = {
      {{2, 3, 9, 11}, {4, 3, 3}, c2({2, 2}, 0, 1, 0, 1)},
      {{1, 5, 8, 13}, {3, 3, 3}, c2({1, 2}, 2, 0, 1, 3)},
      {{1, 4, 7, 7}, {6, 1, 1}, {}},
      {{1, 2, 5, 4}, {3, 3, 3}, c2({1, 1}, 1, 1, 1, 1)},
  };
  uint32_t seed = 90;
  for (const Case& c : cases) {
    const Tensor x = random_tensor(c.x, seed++);
    const Tensor w = random_tensor(Shape{c.w[0], c.x[1], c.w[1], c.w[2]}, seed++);
    const Tensor b = random_tensor(Shape{c.w[0]}, seed++);
    const int64_t stride[3] = {1, c.p.stride[0], c.p.stride[1]};
    const int64_t pad0[3] = {0, c.p.pad_top, c.p.pad_left}, pad1[3] = {0, c.p.pad_bottom, c.p.pad_right};
    Shape s5;
    const std::vector<double> ref = conv_ref(x.reshape(Shape{c.x[0], c.x[1], 1, c.x[2], c.x[3]}),
                                             w.reshape(Shape{c.w[0], c.x[1], 1, c.w[1], c.w[2]}), b, stride, pad0, pad1, &s5);
    const Tensor y = ops::conv2d(x, w, b, c.p);
    ASSERT_EQ(y.shape(), (Shape{s5[0], s5[1], s5[3], s5[4]}));
    expect_close(y, ref, 1e-5, "conv2d x" + c.x.str() + " w" + w.shape().str());
  }
}

TEST(UpsampleNearest2x, CopiesEachPixelToA2x2Block) {
  for (const Shape& s : {Shape{2, 3, 5, 7}, Shape{4, 5}, Shape{1, 2, 3, 1, 1}}) {
    const Tensor x = random_tensor(s, 5);
    const Tensor y = ops::upsample_nearest2x(x);
    const int nd = s.ndim();
    const int64_t H = s[nd - 2], W = s[nd - 1], P = s.numel() / (H * W);
    ASSERT_EQ(y.numel(), 4 * x.numel());
    EXPECT_EQ(y.size(-2), 2 * H);
    EXPECT_EQ(y.size(-1), 2 * W);
    const std::vector<float> xv = x.to_vector(), yv = y.to_vector();
    for (int64_t p = 0; p < P; ++p)
      for (int64_t i = 0; i < 2 * H; ++i)
        for (int64_t j = 0; j < 2 * W; ++j)
          ASSERT_EQ(yv[(p * 2 * H + i) * 2 * W + j], xv[(p * H + i / 2) * W + j / 2]) << s.str();
  }
}

}  // namespace
}  // namespace t2v
