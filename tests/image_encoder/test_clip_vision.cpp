// The CLIP vision tower against the official Wan2.1 code (wan/modules/clip.py,
// CLIPModel.visual: preprocessing and the second-to-last block) on a tiny random
// ViT (tools/golden/gen_clip_goldens.py), loaded from each layout t2v reads; plus
// config detection and the weight checks.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/safetensors.h"
#include "image_encoder/clip_vision.h"
#include "kernels/test_device/test_device.h"

namespace t2v {
namespace {

namespace fs = std::filesystem;

std::string data(const std::string& rel) { return std::string(T2V_TEST_DATA_DIR) + "/image_encoder/" + rel; }

const SafetensorsFile& goldens() {
  static SafetensorsFile f(data("cases.safetensors"));
  return f;
}

std::vector<std::string> case_names() {
  std::ifstream f(data("cases.json"));
  const nlohmann::json index = nlohmann::json::parse(f);
  std::vector<std::string> names;
  for (const auto& c : index["cases"]) names.push_back(c["name"]);
  EXPECT_GE(names.size(), 4u) << "no golden cases read";
  return names;
}

// max |a - b| / max |b|
double rel_err(const Tensor& a, const Tensor& b) {
  const auto va = a.to(Device::CPU).to_vector(), vb = b.to_vector();
  EXPECT_EQ(va.size(), vb.size());
  double e = 0, m = 0;
  for (size_t i = 0; i < va.size() && i < vb.size(); ++i) {
    e = std::max(e, std::fabs(static_cast<double>(va[i]) - vb[i]));
    m = std::max(m, std::fabs(static_cast<double>(vb[i])));
  }
  return m > 0 ? e / m : e;
}

ClipVisionConfig tiny_config() { return ClipVisionConfig::from_json(data("tiny_clip/config.json")); }

// Preprocessing and features of every case; returns the worst feature error.
double check_cases(const ClipVisionEncoder& enc, const std::string& label) {
  double worst = 0;
  const std::vector<std::string> names = case_names();
  EXPECT_FALSE(names.empty());
  for (const std::string& name : names) {
    const Tensor pixels = clip_vision_preprocess(goldens().get(name + ".image").clone(), enc.config());
    const double ep = rel_err(pixels, goldens().get(name + ".pixel_values"));
    // Bicubic squash + normalisation in PyTorch's float32 order: measured 0 to 2.0e-7.
    EXPECT_LE(ep, 1e-6) << label << " " << name << " pixel_values";
    const Tensor feats = enc.forward(goldens().get(name + ".pixel_values"));
    const double ef = rel_err(feats, goldens().get(name + ".features"));
    std::printf("  %-12s %-14s features %-14s rel %.3e (pixels %.1e)\n", label.c_str(), name.c_str(),
                feats.shape().str().c_str(), ef, ep);
    // fp32 against the reference: measured 2.6e-7 to 3.3e-7 (same in every layout).
    EXPECT_LE(ef, 2e-6) << label << " " << name;
    worst = std::max(worst, ef);
  }
  return worst;
}

TEST(ClipVisionGolden, DiffusersImageEncoderFolder) {
  const ClipVisionConfig cfg = ClipVisionConfig::resolve("", data("tiny_clip"));
  EXPECT_EQ(cfg.hidden, 64);
  EXPECT_EQ(cfg.num_heads, 2);
  EXPECT_EQ(cfg.num_tokens(), 17);
  check_cases(ClipVisionEncoder::load(data("tiny_clip"), cfg), "diffusers");
}

TEST(ClipVisionGolden, ComfyF16SingleFile) {
  // Weights were rounded to float16 values by the generator, so F16 storage is exact.
  WeightReport report;
  ClipVisionLoadOptions o;
  o.strict = true;  // visual_projection and position_ids are not "unexpected"
  o.report = &report;
  check_cases(ClipVisionEncoder::load(data("tiny_clip_comfy_f16.safetensors"), tiny_config(), o), "comfy-f16");
  EXPECT_EQ(report.layout, "transformers");
}

TEST(ClipVisionGolden, WanOpenClipLayout) {
  WeightReport report;
  ClipVisionLoadOptions o;
  o.strict = true;  // the text tower and log_scale are not "unexpected"
  o.report = &report;
  check_cases(ClipVisionEncoder::load(data("tiny_clip_wan.safetensors"), tiny_config(), o), "wan");
  EXPECT_EQ(report.layout, "wan");
}

// On the test device (the CPU kernels behind the device interface): with F32 weights
// the CPU forward bit for bit; with BF16 weights (bf16 GEMMs and attention, fp32
// residual stream and LayerNorms) near the fp32 reference. Output F32 either way.
TEST(ClipVisionGolden, TestDeviceMatchesCpu) {
  ops::open_test_device();
  const ClipVisionEncoder cpu = ClipVisionEncoder::load(data("tiny_clip"), tiny_config());
  double worst_bf16 = 0;
  for (const DType dt : {DType::F32, DType::BF16}) {
    ClipVisionLoadOptions o;
    o.device = Device::Test;
    o.dtype = dt;
    const ClipVisionEncoder enc = ClipVisionEncoder::load(data("tiny_clip"), tiny_config(), o);
    for (const std::string& name : case_names()) {
      const Tensor pixels = goldens().get(name + ".pixel_values");
      const Tensor feats = enc.forward(pixels);
      ASSERT_EQ(feats.device(), Device::Test);
      ASSERT_EQ(feats.dtype(), DType::F32);
      const Tensor host = feats.to(Device::CPU);
      if (dt == DType::F32) {
        EXPECT_EQ(host.to_vector(), cpu.forward(pixels).to_vector()) << name << ": test device F32 differs";
      } else {
        const double e = rel_err(host, goldens().get(name + ".features"));
        std::printf("  test device bf16 %-14s rel %.3e\n", name.c_str(), e);
        worst_bf16 = std::max(worst_bf16, e);
      }
    }
  }
  // 5x the worst measured (4.9e-3, large_61x45): bf16 GEMM operands and attention.
  EXPECT_LE(worst_bf16, 2.5e-2);
  EXPECT_GT(worst_bf16, 0.0) << "bf16 storage must change the output";
}

TEST(ClipVisionConfig, FromWeightsReadsSizesAndAsksForHeadsOffViTH) {
  const TensorStore store = TensorStore::open(data("tiny_clip_comfy_f16.safetensors"));
  try {
    ClipVisionConfig::from_weights(store);
    FAIL() << "a width-64 encoder has no head count in its shapes";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), kExitDataErr);
    EXPECT_NE(std::string(e.what()).find("config.json"), std::string::npos) << e.what();
  }
}

TEST(ClipVisionConfig, PresetIsVitH14) {
  const ClipVisionConfig c = ClipVisionConfig::preset("clip-vit-h-14");
  EXPECT_EQ(c.num_tokens(), 257);
  EXPECT_EQ(c.head_dim(), 80);
  EXPECT_EQ(c.layers_run(), 31);
  // Parameters Wan uses: embeddings, pre-norm and 31 blocks of ViT-H/14.
  int64_t n = 0;
  for (const auto& r : clip_vision_weight_list(c)) n += r.shape.numel();
  const int64_t block = 4 * (1280 * 1280 + 1280) + 2 * 1280 * 5120 + 5120 + 1280 + 4 * 1280;
  EXPECT_EQ(n, 1280 * 3 * 14 * 14 + 1280 + 257 * 1280 + 2 * 1280 + 31 * block);
  EXPECT_THROW(ClipVisionConfig::preset("clip-vit-l-14"), Error);
}

TEST(ClipVisionConfig, RefusesQuickGelu) {
  try {
    ClipVisionConfig::from_json_text(R"({"hidden_size": 64, "num_attention_heads": 2, "num_hidden_layers": 3,
                                        "patch_size": 4, "image_size": 16, "hidden_act": "quick_gelu"})",
                                     "x/config.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), kExitConfig);
    EXPECT_NE(std::string(e.what()).find("quick_gelu"), std::string::npos);
  }
}

TEST(ClipVisionLoad, MissingTensorIsOneErrorNamingIt) {
  const fs::path dir = fs::temp_directory_path() / "t2v_clip_missing";
  fs::create_directories(dir);
  SafetensorsFile src(data("tiny_clip/model.safetensors"));
  std::vector<std::pair<std::string, Tensor>> kept;
  for (const auto& t : src.tensors())
    if (t.name != "vision_model.encoder.layers.1.mlp.fc2.weight") kept.emplace_back(t.name, src.get(t.name).clone());
  save_safetensors((dir / "clip.safetensors").string(), kept);
  try {
    ClipVisionEncoder::load((dir / "clip.safetensors").string(), tiny_config());
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), kExitDataErr);
    EXPECT_NE(std::string(e.what()).find("encoder.layers.1.mlp.fc2.weight"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

TEST(ClipVisionLoad, NotAClipIsRefused) {
  const std::string dit = std::string(T2V_TEST_DATA_DIR) + "/diffusion/tiny_dit/original.safetensors";
  const TensorStore store = TensorStore::open(dit);
  EXPECT_FALSE(is_clip_vision(store));
  try {
    detect_clip_vision_layout(store, nullptr);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), kExitDataErr);
    EXPECT_NE(std::string(e.what()).find("not a CLIP vision encoder"), std::string::npos);
  }
}

TEST(ClipVisionLoad, WrongInputSizeIsRefused) {
  const ClipVisionEncoder enc = ClipVisionEncoder::load(data("tiny_clip"), tiny_config());
  EXPECT_THROW(enc.forward(Tensor::zeros(Shape{1, 3, 15, 16}, DType::F32)), Error);
}

}  // namespace
}  // namespace t2v
