// The image-to-video DiT (I2V and FLF2V) against the official Wan2.1 WanModel on
// tiny random models (tools/golden/gen_dit_i2v_goldens.py; the diffusers copy is
// cross-checked against WanTransformer3DModel by the generator), from every layout:
// the image embedder, the text + image cross-attention, whole forwards.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/safetensors.h"
#include "diffusion/wan_dit.h"
#include "kernels/test_device/test_device.h"
#include "dit_test_util.h"

namespace t2v {
namespace {

using test::diff;
using test::dit_data;

struct Case {
  std::string name, model;
  std::vector<std::string> intermediates;
};

std::vector<Case> cases_of(const std::string& model) {
  std::ifstream f(dit_data("i2v_cases.json"));
  const nlohmann::json j = nlohmann::json::parse(f);
  std::vector<Case> out;
  for (const auto& c : j["cases"])
    if (c["model"] == model) out.push_back({c["name"], c["model"], c["intermediates"]});
  EXPECT_FALSE(out.empty()) << "no " << model << " cases";
  return out;
}

const SafetensorsFile& goldens() {
  static SafetensorsFile f(dit_data("i2v_cases.safetensors"));
  return f;
}

// The reference computes the timestep sinusoid in float64 (t2v's default). The head
// count of these 48-wide models is not in their shapes: the config comes from the
// diffusers copy of the same model.
WanDiT load(const std::string& path) {
  const TensorStore store = TensorStore::open(path);
  const bool flf = path.find("flf2v") != std::string::npos;
  const WanDiTConfig cfg =
      WanDiTConfig::from_json(dit_data(flf ? "tiny_dit_i2v/flf2v_diffusers/config.json" : "tiny_dit_i2v/i2v_diffusers/config.json"));
  return WanDiT(cfg, load_wan_dit(store, cfg));
}

void check(const WanDiT& model, const std::string& type, const std::string& label) {
  for (const Case& c : cases_of(type)) {
    std::map<std::string, Tensor> dumps;
    auto hook = [&](const std::string& name, const Tensor& t) { dumps[name] = t; };
    const Tensor out = model.forward(goldens().get(c.name + ".hidden_states"), goldens().get(c.name + ".timestep"),
                                     goldens().get(c.name + ".encoder_hidden_states"),
                                     goldens().get(c.name + ".image_features"), hook);
    const auto d = diff(out, goldens().get(c.name + ".sample"));
    std::printf("  %-10s %-16s sample rel %.3e\n", label.c_str(), c.name.c_str(), d.rel());
    // fp32 against the official WanModel: measured 3.5e-7 to 4.3e-7 in every layout
    // (the acceptance bound is 1e-4 relative).
    EXPECT_LE(d.rel(), 3e-6) << label << " " << c.name;
    ASSERT_FALSE(c.intermediates.empty());
    for (const std::string& name : c.intermediates) {
      if (name == "text_embedding") continue;  // t2v keeps the padding rows as one (docs/wan.md §2.7)
      ASSERT_TRUE(dumps.count(name)) << "no intermediate " << name;
      const Tensor r = goldens().get(c.name + "." + name);
      const auto di = diff(dumps[name].reshape(r.shape()), r);
      std::printf("  %-10s %-16s %-24s rel %.3e\n", label.c_str(), c.name.c_str(), name.c_str(), di.rel());
      // measured up to 1.1e-6 (FLF2V block 1 cross-attention); image embedding 2.9e-7
      EXPECT_LE(di.rel(), 6e-6) << label << " " << c.name << " " << name;
    }
  }
}

TEST(DitI2VGolden, OriginalSingleFile) { check(load(dit_data("tiny_dit_i2v/i2v.safetensors")), "i2v", "original"); }
TEST(DitI2VGolden, ComfyPrefixedFile) { check(load(dit_data("tiny_dit_i2v/i2v_comfy.safetensors")), "i2v", "comfy"); }
TEST(DitI2VGolden, DiffusersFolder) { check(load(dit_data("tiny_dit_i2v/i2v_diffusers")), "i2v", "diffusers"); }
TEST(DitI2VGolden, FirstLastFrameOriginal) {
  check(load(dit_data("tiny_dit_i2v/flf2v.safetensors")), "flf2v", "original");
}
TEST(DitI2VGolden, FirstLastFrameDiffusers) {
  check(load(dit_data("tiny_dit_i2v/flf2v_diffusers")), "flf2v", "diffusers");
}

// The image branch on the test device: with F32 weights the CPU forward bit for bit;
// with BF16 weights (bf16 GEMMs, the image embedder's LayerNorms and the residual
// stream in fp32) near the official fp32 output.
TEST(DitI2VGolden, OnTheTestDevice) {
  ops::open_test_device();
  double worst_bf16 = 0;
  for (const char* type : {"i2v", "flf2v"}) {
    const bool flf = std::string(type) == "flf2v";
    const WanDiTConfig cfg = WanDiTConfig::from_json(
        dit_data(flf ? "tiny_dit_i2v/flf2v_diffusers/config.json" : "tiny_dit_i2v/i2v_diffusers/config.json"));
    const TensorStore store = TensorStore::open(dit_data(flf ? "tiny_dit_i2v/flf2v.safetensors" : "tiny_dit_i2v/i2v.safetensors"));
    const WanDiT cpu(cfg, load_wan_dit(store, cfg));
    for (const DType dt : {DType::F32, DType::BF16}) {
      WanDiTLoadOptions o;
      o.device = Device::Test;
      o.dtype = dt;
      const WanDiT dev(cfg, load_wan_dit(store, cfg, o));
      EXPECT_EQ(dev.weights().blocks[0].cross_attn.k_img.weight.dtype(), dt);
      EXPECT_EQ(dev.weights().img_emb.proj_0.weight.dtype(), DType::F32) << "an fp32 island";
      for (const Case& c : cases_of(type)) {
        const Tensor x = goldens().get(c.name + ".hidden_states"), t = goldens().get(c.name + ".timestep"),
                     ctx = goldens().get(c.name + ".encoder_hidden_states"),
                     img = goldens().get(c.name + ".image_features");
        const Tensor out = dev.forward(x.to(Device::Test), t, ctx.to(Device::Test), img.to(Device::Test));
        ASSERT_EQ(out.device(), Device::Test);
        ASSERT_EQ(out.dtype(), DType::F32);
        const Tensor host = out.to(Device::CPU);
        if (dt == DType::F32) {
          EXPECT_EQ(host.to_vector(), cpu.forward(x, t, ctx, img).to_vector()) << c.name << ": test device F32";
        } else {
          const auto d = diff(host, goldens().get(c.name + ".sample"));
          std::printf("  test device bf16 %-6s %-16s rel %.3e\n", type, c.name.c_str(), d.rel());
          worst_bf16 = std::max(worst_bf16, d.rel());
        }
      }
    }
  }
  // 5x the worst measured (5.1e-3, i2v_t3_h4_w6), as for the text-to-video DiT.
  EXPECT_LE(worst_bf16, 3e-2);
  EXPECT_GT(worst_bf16, 0.0) << "bf16 storage must change the output";
}

TEST(DitI2VConfig, DetectedFromWeightsAndConfigs) {
  const WanDiTConfig c = WanDiTConfig::from_json(dit_data("tiny_dit_i2v/i2v_diffusers/config.json"));
  EXPECT_EQ(c.image_dim, 40);
  EXPECT_EQ(c.image_pos_len, 0);
  EXPECT_EQ(c.in_dim, 36);
  EXPECT_EQ(c.model_type(), "i2v");
  const WanDiTConfig f = WanDiTConfig::from_json(dit_data("tiny_dit_i2v/flf2v_diffusers/config.json"));
  EXPECT_EQ(f.image_dim, 40);
  EXPECT_EQ(f.image_pos_len, 10);
  EXPECT_EQ(f.model_type(), "flf2v");
  const WanDiTConfig o = WanDiTConfig::from_json_text(
      R"({"dim": 5120, "num_heads": 40, "in_dim": 36, "ffn_dim": 13824, "num_layers": 40, "model_type": "i2v"})",
      "i2v/config.json");
  EXPECT_EQ(o.image_dim, 1280);
  EXPECT_EQ(o.preset_name, "wan2.1-i2v-14b");
  EXPECT_EQ(WanDiTConfig::preset("wan2.1-flf2v-14b").image_pos_len, 514);
  // A diffusers config with image_dim but no added_kv_proj_dim is not a Wan I2V model.
  EXPECT_THROW(WanDiTConfig::from_json_text(R"({"num_attention_heads": 2, "attention_head_dim": 24, "image_dim": 40})",
                                            "half-i2v"),
               Error);
}

TEST(DitI2V, ImageFeaturesAreRequiredAndChecked) {
  const WanDiT model = load(dit_data("tiny_dit_i2v/i2v.safetensors"));
  const std::string n = cases_of("i2v").front().name;
  const Tensor x = goldens().get(n + ".hidden_states"), t = goldens().get(n + ".timestep"),
               ctx = goldens().get(n + ".encoder_hidden_states");
  EXPECT_THROW(model.forward(x, t, ctx), Error);  // no image features
  EXPECT_THROW(model.forward(x, t, ctx, Tensor::zeros(Shape{1, 5, 41}, DType::F32)), Error);  // wrong width
  WanDiTConfig tc = WanDiTConfig::from_json(dit_data("tiny_dit/diffusers/config.json"));
  const WanDiT t2v(tc, load_wan_dit(TensorStore::open(dit_data("tiny_dit/diffusers")), tc));
  EXPECT_THROW(t2v.forward(Tensor::zeros(Shape{1, 16, 1, 2, 2}, DType::F32), t,
                           Tensor::zeros(Shape{1, 3, 32}, DType::F32), Tensor::zeros(Shape{1, 5, 40}, DType::F32)),
               Error);
}

TEST(DitI2V, FlopsCountTheImageTokens) {
  const WanDiTConfig t2v = WanDiTConfig::preset("wan2.1-t2v-14b"), i2v = WanDiTConfig::preset("wan2.1-i2v-14b");
  const WanDiTFlops a = wan_dit_flops_for_video(t2v, 81, 480, 832), b = wan_dit_flops_for_video(i2v, 81, 480, 832);
  // 257 more keys for every query in every block; k_img and v_img on 257 tokens.
  const double N = 21.0 * 30 * 52, d = 5120;
  EXPECT_DOUBLE_EQ(b.cross_attn_sdpa - a.cross_attn_sdpa, 40 * 4.0 * N * 257 * d);
  EXPECT_DOUBLE_EQ(b.cross_attn_proj - a.cross_attn_proj, 40 * 2 * 2.0 * 257 * d * d);
  EXPECT_GT(b.patch_embedding, a.patch_embedding);  // 36 input channels
  EXPECT_EQ(wan_dit_image_tokens(WanDiTConfig::preset("wan2.1-flf2v-14b")), 514);
}

}  // namespace
}  // namespace t2v
