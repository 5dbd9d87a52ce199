// Activations and broadcast arithmetic against double loops.
#include <cmath>
#include <functional>

#include "kernel_test_util.h"
#include "kernels/ops.h"

namespace t2v {
namespace {

using test::expect_close;
using test::random_tensor;

std::vector<double> map_ref(const Tensor& x, const std::function<double(double)>& f) {
  std::vector<double> r;
  for (float v : x.to_vector()) r.push_back(f(v));
  return r;
}

TEST(Activations, MatchDoubleFormulas) {
  // Evaluated in double, rounded once: rtol 1e-6.
  const Shape shapes[] = {{1}, {3, 7}, {113, 203}, {1023}};
  uint32_t seed = 1;
  for (const Shape& s : shapes) {
    const Tensor x = random_tensor(s, seed++, -8.0f, 8.0f);
    expect_close(ops::gelu_tanh(x), map_ref(x, [](double v) {
                   return 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
                 }), 1e-6, "gelu_tanh " + s.str());
    expect_close(ops::gelu_erf(x), map_ref(x, [](double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); }),
                 1e-6, "gelu_erf " + s.str());
    expect_close(ops::silu(x), map_ref(x, [](double v) { return v / (1 + std::exp(-v)); }), 1e-6, "silu " + s.str());
    expect_close(ops::scale(x, 0.37f), map_ref(x, [](double v) { return v * 0.37f; }), 1e-7, "scale " + s.str());
    expect_close(ops::add_scalar(x, 1.5f), map_ref(x, [](double v) { return v + 1.5; }), 1e-7, "add_scalar " + s.str());
    expect_close(ops::clamp(x, -2.0f, 3.0f), map_ref(x, [](double v) { return std::min(std::max(v, -2.0), 3.0); }), 0,
                 "clamp " + s.str());
  }
}

TEST(Activations, ClampKeepsNaN) {
  // torch.clamp propagates NaN; so must we (a NaN latent must stay visible, not become a bound).
  const Tensor x = Tensor::from_floats({NAN, -5.0f, 0.25f, 9.0f}, Shape{4});
  const std::vector<float> y = ops::clamp(x, -1.0f, 1.0f).to_vector();
  EXPECT_TRUE(std::isnan(y[0]));
  EXPECT_EQ(y[1], -1.0f);
  EXPECT_EQ(y[2], 0.25f);
  EXPECT_EQ(y[3], 1.0f);
}

// Broadcast reference: index each operand by right-aligned coordinates.
std::vector<double> broadcast_ref(const Tensor& a, const Tensor& b, const Shape& out,
                                  const std::function<double(double, double)>& f) {
  const std::vector<float> av = a.to_vector(), bv = b.to_vector();
  const int nd = out.ndim();
  std::vector<double> r(out.numel());
  for (int64_t i = 0; i < out.numel(); ++i) {
    int64_t rem = i, ia = 0, ib = 0, sa = 1, sb = 1;
    for (int d = nd - 1; d >= 0; --d) {
      const int64_t c = rem % out[d];
      rem /= out[d];
      const int da = d - (nd - a.dim()), db = d - (nd - b.dim());
      if (da >= 0) {
        if (a.size(da) != 1) ia += c * sa;
        sa *= a.size(da);
      }
      if (db >= 0) {
        if (b.size(db) != 1) ib += c * sb;
        sb *= b.size(db);
      }
    }
    r[i] = f(av[ia], bv[ib]);
  }
  return r;
}

TEST(Binary, BroadcastingMatchesDoubleLoop) {
  // One fp32 rounding per element: rtol 1e-7 (|err| <= 2^-24 |ref|).
  struct Case {
    Shape a, b, out;
  };
  const Case cases[] = {{{113, 203}, {113, 203}, {113, 203}}, {{2, 3, 4}, {4}, {2, 3, 4}},
                        {{2, 1, 4}, {3, 1}, {2, 3, 4}},        {{1}, {5, 6}, {5, 6}},
                        {{2, 3, 4, 5, 6}, {3, 1, 5, 1}, {2, 3, 4, 5, 6}}, {{7, 1, 1}, {1, 1, 1023}, {7, 1, 1023}},
                        {{1, 1}, {1}, {1, 1}},                 {{2, 7, 3}, {2, 1, 3}, {2, 7, 3}}};
  uint32_t seed = 10;
  for (const Case& c : cases) {
    const Tensor a = random_tensor(c.a, seed++), b = random_tensor(c.b, seed++);
    const std::string tag = c.a.str() + " " + c.b.str();
    const Tensor s = ops::add(a, b);
    ASSERT_EQ(s.shape(), c.out) << tag;
    expect_close(s, broadcast_ref(a, b, c.out, [](double x, double y) { return x + y; }), 1e-7, "add " + tag);
    expect_close(ops::sub(a, b), broadcast_ref(a, b, c.out, [](double x, double y) { return x - y; }), 1e-7, "sub " + tag);
    expect_close(ops::mul(a, b), broadcast_ref(a, b, c.out, [](double x, double y) { return x * y; }), 1e-7, "mul " + tag);
    // Commuted operands broadcast the other way round.
    expect_close(ops::sub(b, a), broadcast_ref(b, a, c.out, [](double x, double y) { return x - y; }), 1e-7, "sub^T " + tag);
  }
}

TEST(Modulate, MatchesDoubleLoopAndBroadcasts) {
  // x * (1 + scale) + shift: three fp32 roundings, rtol 1e-6.
  struct Case {
    Shape x, shift, scale;
  };
  const Case cases[] = {{{2, 7, 16}, {2, 1, 16}, {2, 1, 16}}, {{3, 113, 33}, {33}, {1, 33}},
                        {{1, 1, 1}, {1}, {1, 1, 1}},          {{2, 5, 3, 8}, {2, 1, 1, 8}, {8}}};
  uint32_t seed = 40;
  for (const Case& c : cases) {
    const Tensor x = random_tensor(c.x, seed++), sh = random_tensor(c.shift, seed++), sc = random_tensor(c.scale, seed++);
    const Tensor y = ops::modulate(x, sh, sc);
    ASSERT_EQ(y.shape(), c.x);
    const std::vector<double> xs = broadcast_ref(x, sc, c.x, [](double a, double s) { return a * (1 + s); });
    const std::vector<double> shb = broadcast_ref(x, sh, c.x, [](double, double s) { return s; });
    std::vector<double> ref(xs.size());
    for (size_t i = 0; i < ref.size(); ++i) ref[i] = xs[i] + shb[i];
    expect_close(y, ref, 1e-6, "modulate " + c.x.str());
  }
}

TEST(AddGated, MatchesDoubleLoopAndBroadcasts) {
  // x + y * gate: two fp32 roundings, rtol 1e-6.
  const Shape xs[] = {{2, 7, 16}, {1, 113, 203}, {3}};
  const Shape gs[] = {{2, 1, 16}, {203}, {1}};
  uint32_t seed = 60;
  for (int i = 0; i < 3; ++i) {
    const Tensor x = random_tensor(xs[i], seed++), y = random_tensor(xs[i], seed++), g = random_tensor(gs[i], seed++);
    const std::vector<double> yg = broadcast_ref(y, g, xs[i], [](double a, double b) { return a * b; });
    const std::vector<float> xv = x.to_vector();
    std::vector<double> ref(yg.size());
    for (size_t j = 0; j < ref.size(); ++j) ref[j] = xv[j] + yg[j];
    expect_close(ops::add_gated(x, y, g), ref, 1e-6, "add_gated " + xs[i].str());
  }
}

}  // namespace
}  // namespace t2v
