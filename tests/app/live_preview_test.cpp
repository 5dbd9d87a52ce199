// Live latent previews (app/latent_preview.h): the map, its file, and `t2v generate
// --live-preview` leaving the video exactly as it is without.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>

#include <gtest/gtest.h>

#include "app/latent_preview.h"
#include "cli_test_util.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "video_io/mp4_reader.h"

namespace t2v::test {
namespace {

namespace fs = std::filesystem;

TEST(LatentPreview, FrameIsTheMapOfTheCleanEstimate) {
  // Odd sizes, fresh random inputs, a random map: every pixel against the formula in double.
  std::mt19937 rng(7);
  std::normal_distribution<float> n(0.0f, 1.0f);
  for (auto [C, T, h, w] : {std::array<int, 4>{16, 3, 5, 7}, {12, 1, 2, 3}, {3, 2, 1, 1}}) {
    LatentRgbMap map;
    for (int c = 0; c < C; ++c) map.factors.push_back({0.3 * n(rng), 0.3 * n(rng), 0.3 * n(rng)});
    map.bias = {0.1 * n(rng), 0.1 * n(rng), 0.1 * n(rng)};
    std::vector<float> x(static_cast<size_t>(C) * T * h * w), v(x.size());
    for (float& f : x) f = n(rng);
    for (float& f : v) f = n(rng);
    const double sigma = 0.37;
    for (int t = 0; t < T; ++t) {
      std::vector<uint8_t> rgb = latent_frame_rgb(x.data(), v.data(), sigma, C, T, h, w, t, map);
      ASSERT_EQ(rgb.size(), static_cast<size_t>(h) * w * 3);
      for (int p = 0; p < h * w; ++p) {
        for (int k = 0; k < 3; ++k) {
          double acc = map.bias[k];
          for (int c = 0; c < C; ++c) {
            const size_t at = (static_cast<size_t>(c) * T + t) * h * w + p;
            acc += (double{x[at]} - sigma * v[at]) * map.factors[c][k];
          }
          const double want = std::round((std::min(1.0, std::max(-1.0, acc)) + 1.0) * 127.5);
          ASSERT_EQ(rgb[static_cast<size_t>(p) * 3 + k], want) << "C " << C << " t " << t << " p " << p;
        }
      }
    }
  }
}

TEST(LatentPreview, Wan21TableIsComfyUIs) {
  LatentRgbMap m = wan21_latent_rgb_map();
  ASSERT_EQ(m.channels(), 16);
  // First and last rows and the bias of comfy/latent_formats.py Wan21, the cited source.
  EXPECT_EQ(m.factors[0], (std::array<double, 3>{-0.1299, -0.1692, 0.2932}));
  EXPECT_EQ(m.factors[15], (std::array<double, 3>{0.1984, 0.0913, 0.1861}));
  EXPECT_EQ(m.bias, (std::array<double, 3>{-0.1835, -0.0868, -0.3360}));
}

TEST(LatentPreview, MapFileIsReadOrRefusedNamingTheKey) {
  TempDir dir;
  write_text(dir.file("latent_rgb.json"), R"({"factors": [[1, 0, 0], [0, 1, 0]], "bias": [0.5, 0, -0.5]})");
  LatentRgbMap m = find_latent_rgb_map(dir.path(), "");
  EXPECT_EQ(m.channels(), 2);
  EXPECT_EQ(m.bias[0], 0.5);
  EXPECT_EQ(m.source, dir.file("latent_rgb.json"));
  // Beside the VAE weights when the model folder has none.
  fs::create_directories(dir.file("model/vae"));
  write_text(dir.file("model/vae/latent_rgb.json"), R"({"factors": [[1, 1, 1]]})");
  EXPECT_EQ(find_latent_rgb_map(dir.file("model"), dir.file("model/vae")).channels(), 1);
  // Neither: the Wan2.1 table.
  EXPECT_EQ(find_latent_rgb_map(dir.file("elsewhere"), "").channels(), 16);
  for (const char* bad : {"[1]", R"({"factors": []})", R"({"factors": [[1, 2]]})", R"({"factors": [[1, 2, "x"]]})",
                          R"({"factors": [[1, 2, 3]], "bias": [1]})", "{"}) {
    write_text(dir.file("bad.json"), bad);
    try {
      read_latent_rgb_map(dir.file("bad.json"));
      ADD_FAILURE() << bad << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), 78) << bad;
      EXPECT_NE(std::string(e.what()).find("bad.json"), std::string::npos) << e.what();
    }
  }
}

std::vector<float> frames_of(const std::string& dump) {
  SafetensorsFile f(dump);
  return f.get("frames").to_vector();
}

TEST(GenerateLivePreview, WritesPreviewsAndLeavesTheFramesUnchanged) {
  TempDir dir;
  const std::vector<std::string> common = {"generate",
                                           "--model",
                                           test_model_dir(),
                                           "-p",
                                           "a blue square moving up",
                                           "--size",
                                           "32x32",
                                           "--frames",
                                           "9",
                                           "--steps",
                                           "6",
                                           "--seed",
                                           "5",
                                           "-q"};
  std::vector<std::string> with = common, without = common;
  for (std::string a :
       {std::string("-o"), dir.file("with.mp4"), std::string("--dump-frames"), dir.file("with.safetensors"),
        std::string("--live-preview"), dir.file("live.png"), std::string("--live-preview-every"), std::string("2")})
    with.push_back(a);
  for (std::string a :
       {std::string("-o"), dir.file("without.mp4"), std::string("--dump-frames"), dir.file("without.safetensors")})
    without.push_back(a);
  RunResult r = run_t2v(with);
  ASSERT_EQ(r.code, 0) << r.err;
  RunResult r2 = run_t2v(without);
  ASSERT_EQ(r2.code, 0) << r2.err;
  // Bit for bit the same decoded frames.
  std::vector<float> a = frames_of(dir.file("with.safetensors")), b = frames_of(dir.file("without.safetensors"));
  ASSERT_EQ(a.size(), static_cast<size_t>(9) * 32 * 32 * 3);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
  // The preview: a strip of the 3 latent frames (9 frames = 1 + 2*4), 128 px tiles, 2 px gaps.
  Mp4Reader png;
  png.open(dir.file("live.png"));
  EXPECT_EQ(png.info().width, 3 * 128 + 4 * 2);
  EXPECT_EQ(png.info().height, 128 + 2 * 2);
  // No temp file of the atomic replacement is left.
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) files += e.path().filename().string()[0] == '.';
  EXPECT_EQ(files, 0);
  // --live-preview-every must be positive.
  std::vector<std::string> bad(with.begin(), with.end() - 1);
  bad.emplace_back("0");
  EXPECT_EQ(run_t2v(bad).code, 64);
}

// The default model's fitted map (models/t2v-tiny/latent_rgb.json): the preview of the last
// step looks like the video. Tile 0 of the strip (latent frame 0, upscaled 2x past the video's
// 64x64) averaged back to 64x64 against the decoded frame 0: 27.1 dB measured; the bound allows
// 5x its squared error.
TEST(GenerateLivePreview, DefaultModelPreviewLooksLikeTheVideo) {
  TempDir dir;
  const std::string model = std::string(T2V_SOURCE_DIR) + "/models/t2v-tiny";
  ASSERT_TRUE(fs::exists(model + "/latent_rgb.json"));
  RunResult r = run_t2v({"generate", "--model", model, "-p", "a red ball rolling to the left on a white background",
                         "--seed", "1", "-o", dir.file("ball.mp4"), "--live-preview", dir.file("live.png"),
                         "--live-preview-every", "1000", "-q"});
  ASSERT_EQ(r.code, 0) << r.err;
  Mp4Reader video, png;
  video.open(dir.file("ball.mp4"));
  png.open(dir.file("live.png"));
  std::vector<uint8_t> frame, strip;
  ASSERT_TRUE(video.read_frame(frame));
  ASSERT_TRUE(png.read_frame(strip));
  const int sw = png.info().width;
  ASSERT_EQ(png.info().height, 128 + 4);
  double se = 0;
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 64; ++x)
      for (int k = 0; k < 3; ++k) {
        double sum = 0;
        for (int dy = 0; dy < 2; ++dy)
          for (int dx = 0; dx < 2; ++dx)
            sum += strip[((2 + 2 * y + dy) * static_cast<size_t>(sw) + 2 + 2 * x + dx) * 3 + k];
        const double d = sum / 4 - frame[(static_cast<size_t>(y) * 64 + x) * 3 + k];
        se += d * d;
      }
  const double psnr = 10 * std::log10(255.0 * 255.0 / (se / (64 * 64 * 3)));
  EXPECT_GT(psnr, 20.1) << "the preview of the last step does not look like the video";
}

}  // namespace
}  // namespace t2v::test
