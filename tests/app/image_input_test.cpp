// Image input for image-to-video: decoding as PIL's convert("RGB") (app/image_input,
// every model), PIL's Lanczos resize (bit-exact), torch's bicubic interpolate
// (core/image_resize), the official size formulas and the whole TI2V image preparation,
// against tools/golden/gen_image_goldens.py.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "app/i2v_conditioning.h"
#include "app/image_input.h"
#include "app/image_resize.h"
#include "core/error.h"
#include "core/image_resize.h"
#include "core/safetensors.h"

namespace t2v {
namespace {

const std::string kDir = std::string(T2V_TEST_DATA_DIR) + "/image";

InputImage from_tensor(const Tensor& t) {  // U8 [H, W, 3]
  InputImage img;
  img.height = static_cast<int>(t.size(0));
  img.width = static_cast<int>(t.size(1));
  const uint8_t* p = t.data<uint8_t>();
  img.rgb.assign(p, p + t.numel());
  return img;
}

TEST(ImageInput, DecodesEveryColourTypeAsPilConvertRgb) {
  ImageLimits small;  // the fixtures are 10x6, under the CLI's minimum side
  small.min_side = 1;
  for (const char* name : {"rgb", "gray", "rgba", "gray_alpha", "palette"}) {
    const InputImage got = load_rgb_image(kDir + "/" + name + ".png", "--image", small);
    SafetensorsFile want(kDir + "/" + name + ".rgb.safetensors");
    const InputImage w = from_tensor(want.get("rgb"));
    ASSERT_EQ(got.width, w.width) << name;
    ASSERT_EQ(got.height, w.height) << name;
    EXPECT_EQ(got.rgb, w.rgb) << name;
  }
}

TEST(ImageInput, RefusesWhatIsNotAnImage) {
  try {
    load_rgb_image(kDir + "/not_an_image.png", "--image");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), kExitDataErr) << e.what();
    EXPECT_NE(std::string(e.what()).find("not_an_image.png"), std::string::npos) << e.what();
  }
  try {
    load_rgb_image(kDir + "/missing.png", "--image");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), kExitNoInput) << e.what();
  }
}

TEST(ImageResize, LanczosIsBitExactWithPil) {
  SafetensorsFile f(kDir + "/resize.safetensors");
  int cases = 0;
  for (const auto& info : f.tensors()) {
    const std::string& n = info.name;
    if (n.size() < 3 || n.substr(n.size() - 3) != ".in") continue;
    const std::string name = n.substr(0, n.size() - 3);
    const InputImage in = from_tensor(f.get(n));
    const InputImage want = from_tensor(f.get(name + ".out"));
    const InputImage got = resize_lanczos_pil(in, want.width, want.height);
    ASSERT_EQ(got.width, want.width);
    ASSERT_EQ(got.height, want.height);
    int64_t diff = 0;
    for (size_t i = 0; i < got.rgb.size(); ++i) diff += got.rgb[i] != want.rgb[i];
    std::printf("%-12s %dx%d -> %dx%d: %lld differing bytes\n", name.c_str(), in.width, in.height, want.width,
                want.height, static_cast<long long>(diff));
    EXPECT_EQ(diff, 0) << name;
    ++cases;
  }
  EXPECT_EQ(cases, 8);
}

TEST(ImageResize, BicubicMatchesTorch) {
  SafetensorsFile f(kDir + "/bicubic.safetensors");
  for (const char* name : {"up", "down", "same", "mixed"}) {
    const Tensor in = f.get(std::string(name) + ".in").clone();
    const Tensor want = f.get(std::string(name) + ".out").clone();
    const Tensor got = resize_bicubic(in, want.size(1), want.size(2));
    ASSERT_EQ(got.shape(), want.shape());
    double err = 0;
    for (int64_t i = 0; i < got.numel(); ++i)
      err = std::max(err, static_cast<double>(std::fabs(got.data<float>()[i] - want.data<float>()[i])));
    std::printf("bicubic %-6s %s -> %s: max abs %.2e\n", name, in.shape().str().c_str(), want.shape().str().c_str(), err);
    EXPECT_LE(err, 1e-6) << name;  // fp32 sums of 16 terms in [-1.3, 1.3]: a few ulp
  }
}

TEST(ImageResize, SizesAreTheOfficialOnes) {
  std::ifstream in(kDir + "/sizes.json");
  const nlohmann::json j = nlohmann::json::parse(in);
  for (const auto& c : j["cases"]) {
    const int iw = c["iw"], ih = c["ih"];
    const int64_t area = c["area"];
    const auto ti2v = best_output_size(iw, ih, 32, 32, area);
    EXPECT_EQ(ti2v.first, c["ti2v"][0].get<int>()) << c.dump();
    EXPECT_EQ(ti2v.second, c["ti2v"][1].get<int>()) << c.dump();
    // Wan2.2 I2V-A14B sizes its video as Wan2.1 I2V does (app/i2v_conditioning).
    const I2VSize a14b = i2v_output_size(area, iw, ih);
    EXPECT_EQ(a14b.width, c["a14b"][0].get<int>()) << c.dump();
    EXPECT_EQ(a14b.height, c["a14b"][1].get<int>()) << c.dump();
  }
  EXPECT_EQ(py_round(2.5), 2);
  EXPECT_EQ(py_round(3.5), 4);
  EXPECT_EQ(py_round(-2.5), -2);
  EXPECT_EQ(py_floordiv(7.0, 2.0), 3.0);
}

TEST(ImageResize, Ti2vImageIsTheOfficialTensor) {
  SafetensorsFile f(kDir + "/ti2v.safetensors");
  const nlohmann::json cases = nlohmann::json::parse(f.metadata().at("cases"));
  for (const auto& c : cases) {
    const std::string name = c[0];
    const int64_t area = c[1];
    // --size W x H with W * H = area (the divisor nearest below the square root; any
    // factorisation gives the same area, which is all the official code uses).
    int w = static_cast<int>(std::sqrt(static_cast<double>(area)));
    while (area % w) --w;
    const int h = static_cast<int>(area / w);
    ASSERT_EQ(static_cast<int64_t>(w) * h, area);
    const PreparedImage p = prepare_ti2v_image(from_tensor(f.get(name + ".in")), w, h);
    EXPECT_EQ(p.width, c[2].get<int>()) << name;
    EXPECT_EQ(p.height, c[3].get<int>()) << name;
    EXPECT_EQ(p.resized_w, c[4].get<int>()) << name;
    EXPECT_EQ(p.resized_h, c[5].get<int>()) << name;
    const Tensor got = rgb_image_to_tensor(p.image);
    const Tensor want = f.get(name + ".out").clone();
    ASSERT_EQ(got.numel(), want.numel()) << name;
    // The uint8 image is bit-exact; (u/255 - 0.5)/0.5 is the same fp32 arithmetic.
    EXPECT_EQ(std::memcmp(got.data<float>(), want.data<float>(), want.nbytes()), 0) << name;
  }
}

}  // namespace
}  // namespace t2v
