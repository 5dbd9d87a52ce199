// Argument checks: every shape/dtype mistake throws t2v::Error(70) whose message
// names the op and the shapes involved.
#include <cmath>
#include <functional>

#include "kernel_test_util.h"
#include "kernels/ops.h"

namespace t2v {
namespace {

using test::random_tensor;

// Runs f, expects an Error with `code` whose message contains every string in `needles`.
void expect_error(const std::function<void()>& f, int code, const std::vector<std::string>& needles) {
  try {
    f();
    ADD_FAILURE() << "no error thrown (expected " << needles[0] << ")";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    for (const std::string& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what();
  }
}

ops::AttentionParams params_with(Tensor bias, Tensor key_mask) {
  ops::AttentionParams p;
  p.bias = std::move(bias);
  p.key_mask = std::move(key_mask);
  return p;
}

TEST(OpErrors, ShapeMismatchesNameOpAndShapes) {
  const Tensor a = random_tensor(Shape{2, 3}, 1), b = random_tensor(Shape{4, 5}, 2);
  expect_error([&] { ops::linear(a, b); }, 70, {"linear", "[2, 3]", "[4, 5]"});
  expect_error([&] { ops::linear(a, random_tensor(Shape{4, 3}, 3), random_tensor(Shape{5}, 4)); }, 70, {"linear", "bias"});
  expect_error([&] { ops::matmul(a, b); }, 70, {"matmul", "[2, 3]", "[4, 5]"});
  expect_error([&] { ops::add(a, b); }, 70, {"add", "[2, 3]", "[4, 5]"});
  expect_error([&] { ops::mul(random_tensor(Shape{3, 2}, 5), random_tensor(Shape{3}, 6)); }, 70, {"mul", "[3, 2]", "[3]"});
  expect_error([&] { ops::layer_norm(a, random_tensor(Shape{4}, 7), Tensor(), 1e-6f); }, 70, {"layer_norm", "weight", "[4]"});
  expect_error([&] { ops::modulate(a, random_tensor(Shape{2, 2, 3}, 8), random_tensor(Shape{3}, 9)); }, 70,
               {"modulate", "shift", "[2, 2, 3]"});
  expect_error([&] { ops::add_gated(a, b, a); }, 70, {"add_gated", "[4, 5]"});
  const Tensor q = random_tensor(Shape{1, 4, 2, 8}, 10), k = random_tensor(Shape{1, 5, 3, 8}, 11);
  expect_error([&] { ops::attention(q, k, k, {}); }, 70, {"attention", "[1, 4, 2, 8]", "[1, 5, 3, 8]"});
  expect_error([&] { ops::attention(q, q, q, params_with(random_tensor(Shape{3, 4, 4}, 12), {})); }, 70, {"attention", "bias", "[3, 4, 4]"});
  expect_error([&] { ops::attention(q, q, q, params_with({}, random_tensor(Shape{1, 5}, 13))); }, 70, {"attention", "key_mask", "[1, 5]"});
  ops::Conv2dParams stride0;
  stride0.stride = {0, 1};
  const Tensor x5 = random_tensor(Shape{1, 3, 2, 4, 4}, 14);
  expect_error([&] { ops::conv3d(x5, random_tensor(Shape{2, 4, 1, 1, 1}, 15), Tensor(), {}); }, 70, {"conv3d", "[1, 3, 2, 4, 4]", "[2, 4, 1, 1, 1]"});
  expect_error([&] { ops::conv3d(x5, random_tensor(Shape{2, 3, 3, 3, 3}, 16), Tensor(), {}); }, 70, {"conv3d", "kernel"});
  expect_error([&] { ops::conv2d(random_tensor(Shape{1, 3, 4, 4}, 17), random_tensor(Shape{2, 3, 3, 3}, 18), Tensor(),
                                 stride0); }, 70, {"conv2d", "stride"});
  expect_error([&] { ops::rope_3d(q, random_tensor(Shape{3, 4, 2}, 19)); }, 70, {"rope_3d", "[1, 4, 2, 8]", "[3, 4, 2]"});
  expect_error([&] { ops::concat({a, b}, 0); }, 70, {"concat", "[2, 3]", "[4, 5]"});
  expect_error([&] { ops::concat({}, 0); }, 70, {"concat"});
  expect_error([&] { ops::slice(a, 1, 2, 4); }, 70, {"slice", "[2, 4)", "[2, 3]"});
  expect_error([&] { ops::slice(a, 2, 0, 1); }, 70, {"slice", "dim 2"});
  expect_error([&] { ops::permute(a, {0, 0}); }, 70, {"permute", "(0, 0)", "[2, 3]"});
  expect_error([&] { ops::embedding(a, a); }, 70, {"embedding", "ids"});
  expect_error([&] { ops::rms_norm_channels(x5, random_tensor(Shape{4, 1, 1, 1}, 19)); }, 70, {"rms_norm_channels", "[4, 1, 1, 1]"});
  // The fused ops check what their compositions check.
  const Tensor x3 = random_tensor(Shape{2, 5, 3}, 20), m = random_tensor(Shape{2, 1, 3}, 21);
  expect_error([&] { ops::layer_norm_modulate(x3, random_tensor(Shape{4}, 22), Tensor(), 1e-6f, m, m); }, 70,
               {"layer_norm_modulate", "weight", "[4]"});
  expect_error([&] { ops::layer_norm_modulate(x3, Tensor(), Tensor(), 1e-6f, random_tensor(Shape{2, 2, 3}, 23), m); },
               70, {"layer_norm_modulate", "shift", "[2, 2, 3]"});
  expect_error([&] { ops::layer_norm_modulate(x3, Tensor(), Tensor(), 1e-6f, m, Tensor()); }, 70,
               {"layer_norm_modulate", "'scale'", "undefined"});
  expect_error([&] { ops::linear_gelu_tanh(a, b); }, 70, {"linear_gelu_tanh", "[2, 3]", "[4, 5]"});
  expect_error([&] { ops::linear_gelu_tanh(a, random_tensor(Shape{4, 3}, 24), random_tensor(Shape{5}, 25)); }, 70,
               {"linear_gelu_tanh", "bias"});
  // lincomb: sources of dst's shape, finite coefficients.
  Tensor dst = random_tensor(Shape{2, 3}, 26);
  expect_error([&] { ops::lincomb(dst, {{1.0, &b}}); }, 70, {"lincomb", "[4, 5]", "[2, 3]"});
  expect_error([&] { ops::lincomb(dst, {{std::nan(""), &a}}); }, 70, {"lincomb", "not finite"});
  expect_error([&] { ops::lincomb(dst, {{1.0, nullptr}}); }, 70, {"lincomb", "no source"});
}

TEST(OpErrors, CpuRefusesNonF32AndUndefined) {
  const Tensor a = random_tensor(Shape{2, 3}, 1);
  expect_error([&] { ops::silu(ops::cast(a, DType::BF16)); }, 70, {"silu", "BF16", "F32"});
  expect_error([&] { ops::linear(a, ops::cast(random_tensor(Shape{4, 3}, 2), DType::F16)); }, 70, {"linear", "'w'", "F16"});
  expect_error([&] { ops::gelu_tanh(Tensor()); }, 70, {"gelu_tanh", "undefined"});
  expect_error([&] { ops::add(a, Tensor()); }, 70, {"add", "'b'", "undefined"});
  expect_error([&] { ops::linear_gelu_tanh(a, ops::cast(random_tensor(Shape{4, 3}, 3), DType::BF16)); }, 70,
               {"linear_gelu_tanh", "'w'", "BF16"});
  expect_error([&] { ops::layer_norm_modulate(ops::cast(a, DType::BF16), Tensor(), Tensor(), 1e-6f, a, a); }, 70,
               {"layer_norm_modulate", "'x'", "BF16"});
  Tensor half = ops::cast(a, DType::BF16);
  expect_error([&] { ops::lincomb(half, {{1.0, &a}}); }, 70, {"lincomb", "BF16", "F32"});
}

}  // namespace
}  // namespace t2v
