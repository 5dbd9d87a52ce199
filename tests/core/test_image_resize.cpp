// resize_bicubic against torch.nn.functional.interpolate(mode="bicubic",
// align_corners=False) on random images (tools/golden/gen_resize_goldens.py):
// up- and down-sampling, squashing to 224x224, batches, odd and one-pixel sizes.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/image_resize.h"
#include "core/safetensors.h"

namespace t2v {
namespace {

const std::string kData = std::string(T2V_TEST_DATA_DIR) + "/core/";

TEST(ImageResize, MatchesTorchBicubic) {
  std::ifstream f(kData + "bicubic.json");
  const auto index = nlohmann::json::parse(f);
  SafetensorsFile golden(kData + "bicubic.safetensors");
  ASSERT_GE(index["cases"].size(), 8u);
  for (const auto& c : index["cases"]) {
    const std::string name = c["name"];
    const Tensor x = golden.get(name + ".input").clone();
    const Tensor want = golden.get(name + ".output");
    const Tensor got = resize_bicubic(x, want.size(-2), want.size(-1));
    ASSERT_EQ(got.shape(), want.shape()) << name;
    const std::vector<float> g = got.to_vector(), w = want.to_vector();
    double worst = 0;
    for (size_t i = 0; i < g.size(); ++i) worst = std::max(worst, std::fabs(static_cast<double>(g[i]) - w[i]));
    std::printf("  %-28s %-16s -> %-16s max|err| %.3g\n", name.c_str(), x.shape().str().c_str(),
                want.shape().str().c_str(), worst);
    // The float32 steps follow PyTorch's order and multiply-adds; measured 0 to 4.8e-7
    // (summation details of its vectorised loop). Values are in [-1.3, 1.3].
    EXPECT_LE(worst, 1e-6) << name;
  }
}

// Identity size gives the input back exactly: t = 0 puts weight 1 on the centre tap.
TEST(ImageResize, SameSizeIsIdentity) {
  Tensor x = Tensor::empty(Shape{2, 5, 7}, DType::F32);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = std::sin(0.7f * static_cast<float>(i)) * 3.0f;
  const Tensor y = resize_bicubic(x, 5, 7);
  EXPECT_EQ(x.to_vector(), y.to_vector());
}

// A constant image stays constant: the four float32 weights sum to 1 within a few ulp
// (PyTorch gives the same 0.24999988 here).
TEST(ImageResize, ConstantStaysConstant) {
  const Tensor x = Tensor::full(Shape{3, 9, 4}, 0.25f);
  const Tensor y = resize_bicubic(x, 31, 2);
  for (float v : y.to_vector()) EXPECT_NEAR(v, 0.25f, 1e-6f);
}

}  // namespace
}  // namespace t2v
