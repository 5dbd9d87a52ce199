// The fused ops on the CPU against the compositions they replace, on random
// inputs of several shapes (odd ones included): bit-equal, so switching model
// code to them changes no CPU number.
//   layer_norm_modulate(x, w, b, eps, shift, scale) == modulate(layer_norm(x, w, b, eps), shift, scale)
//   linear_gelu_tanh(x, w, bias)                    == gelu_tanh(linear(x, w, bias))
#include <gtest/gtest-spi.h>

#include <cmath>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "kernel_test_util.h"
#include "kernels/ops.h"

namespace t2v {
namespace {

using test::expect_equal;
using test::random_tensor;

TEST(FusedOps, LayerNormModulateEqualsTheComposition) {
  struct Case { Shape x, shift, scale; bool affine; };
  const std::vector<Case> cases = {
      {Shape{1}, Shape{1}, Shape{1}, false},
      {Shape{1, 1, 1}, Shape{1, 1, 1}, Shape{1, 1, 1}, true},
      {Shape{2, 13, 31}, Shape{2, 1, 31}, Shape{2, 1, 31}, false},  // the DiT's [B, 1, C] time modulation
      {Shape{2, 13, 31}, Shape{2, 1, 31}, Shape{2, 1, 31}, true},
      {Shape{3, 7, 64}, Shape{64}, Shape{3, 7, 64}, true},           // mixed broadcasts
      {Shape{5, 4, 3, 33}, Shape{5, 1, 1, 33}, Shape{4, 1, 1}, false},
      {Shape{2, 257, 96}, Shape{2, 257, 1}, Shape{1, 1, 96}, true},
  };
  uint32_t seed = 100;
  for (const Case& c : cases) {
    const int64_t C = c.x[c.x.ndim() - 1];
    // A non-zero mean: the variance's two passes matter.
    const Tensor x = ops::add_scalar(random_tensor(c.x, seed++, -2.0f, 2.0f), 1.5f);
    const Tensor shift = random_tensor(c.shift, seed++), scale = random_tensor(c.scale, seed++);
    const Tensor w = c.affine ? random_tensor(Shape{C}, seed++, 0.5f, 1.5f) : Tensor();
    const Tensor b = c.affine ? random_tensor(Shape{C}, seed++) : Tensor();
    for (float eps : {1e-6f, 1e-5f}) {
      const Tensor fused = ops::layer_norm_modulate(x, w, b, eps, shift, scale);
      const Tensor composed = ops::modulate(ops::layer_norm(x, w, b, eps), shift, scale);
      expect_equal(fused, composed,
                   fmt::format("layer_norm_modulate x{} shift{} scale{}{} eps {}", c.x.str(), c.shift.str(),
                               c.scale.str(), c.affine ? " affine" : "", eps));
    }
  }
}

TEST(FusedOps, LinearGeluTanhEqualsTheComposition) {
  struct Case { Shape x; int64_t N; bool bias; };
  const std::vector<Case> cases = {{Shape{1, 1}, 1, true},        {Shape{7, 13}, 5, false},  {Shape{33, 64}, 17, true},
                                   {Shape{2, 9, 96}, 130, true},  {Shape{3, 0}, 4, true},    {Shape{1, 257, 48}, 31, false}};
  uint32_t seed = 200;
  for (const Case& c : cases) {
    const int64_t K = c.x[c.x.ndim() - 1];
    const Tensor x = random_tensor(c.x, seed++, -3.0f, 3.0f), w = random_tensor(Shape{c.N, K}, seed++, -0.5f, 0.5f);
    const Tensor b = c.bias ? random_tensor(Shape{c.N}, seed++) : Tensor();
    expect_equal(ops::linear_gelu_tanh(x, w, b), ops::gelu_tanh(ops::linear(x, w, b)),
                 fmt::format("linear_gelu_tanh x{} N{}{}", c.x.str(), c.N, c.bias ? " +bias" : ""));
  }
}

// The equality above must be able to fail: an exact comparison sees a one-ulp change.
TEST(FusedOps, TheEqualityCheckSeesOneUlp) {
  const Tensor a = random_tensor(Shape{4, 9}, 300);
  Tensor b = a.clone();
  b.data<float>()[17] = std::nextafter(b.data<float>()[17], 10.0f);
  EXPECT_NONFATAL_FAILURE(expect_equal(a, b, "one ulp"), "1 of 36 values differ");
}

}  // namespace
}  // namespace t2v
