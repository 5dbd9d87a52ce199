// The Wan2.2 TI2V DiT (48 channels, per-token timesteps) against the official WanModel
// (Wan-Video/Wan2.2 wan/modules/model.py) and diffusers' WanTransformer3DModel, goldens
// from tools/golden/gen_wan22_dit_goldens.py: text-to-video (every token t), image-to-video
// (latent frame 0 at 0), batch 2, an arbitrary value per token, and a [B] timestep.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/safetensors.h"
#include "diffusion/wan_dit.h"
#include "diffusion/wan_dit_timestep.h"
#include "diffusion/wan_dit_weights.h"
#include "tests/diffusion/dit_test_util.h"

namespace t2v {
namespace {

using test::diff;

std::string data22(const std::string& rel) { return std::string(T2V_TEST_DATA_DIR) + "/diffusion22/" + rel; }

// Bounds on max |ours - reference| / max |reference|, fp32 CPU, about 5x the measured error:
//   vs the official WanModel (float64 sinusoid, the config's default): measured 6.3e-7 (scattered)
//   vs diffusers (its fp32 sinusoid): measured 1.7e-6 (scalar); diffusers and the official model
//   differ from each other by up to 6.9e-6 (tools/golden/gen_wan22_dit_goldens.py prints it)
constexpr double kOfficialTol = 3e-6;
constexpr double kDiffusersTol = 1e-5;

const TensorStore& cases() {
  static const TensorStore s = TensorStore::open(data22("cases.safetensors"));
  return s;
}
Tensor input(const std::string& name) { return cases().get(name).to(DType::F32).clone(); }

WanDiT load(const std::string& weights, const WanDiTConfig& cfg) {
  TensorStore store = TensorStore::open(weights);
  return WanDiT(cfg, load_wan_dit(store, cfg));
}

TEST(Wan22DiT, ConfigIsTi2v) {
  const WanDiTConfig a = WanDiTConfig::from_json(data22("tiny_ti2v/config.json"));
  const WanDiTConfig b = WanDiTConfig::resolve("", data22("tiny_ti2v/diffusers"));
  // A single file: the config.json beside it (dim 48 hides its head count from the shapes).
  const WanDiTConfig c = WanDiTConfig::resolve("", data22("tiny_ti2v/original.safetensors"));
  for (const WanDiTConfig* x : {&a, &b, &c}) {
    EXPECT_EQ(x->model_type(), "ti2v");
    EXPECT_EQ(x->in_dim, 48);
    EXPECT_EQ(x->out_dim, 48);
  }
  const WanDiTConfig p = WanDiTConfig::preset("wan2.2-ti2v-5b");
  EXPECT_EQ(wan_dit_param_count(p), 4999787712);  // docs/wan.md §2.1
  EXPECT_EQ(p.model_type(), "ti2v");
}

// Wan2.1 I2V-14B and a Wan2.2 I2V-A14B expert have the same original config.json (model_type
// "i2v", in_dim 36): the weights decide whether there is an image embedder (docs/wan.md §8.5).
TEST(Wan22DiT, OriginalI2vConfigIsSettledByTheWeights) {
  const std::string data = std::string(T2V_TEST_DATA_DIR);
  // The A14B expert fixture: a config.json with model_type i2v beside weights without img_emb.
  const WanDiTConfig a14b = WanDiTConfig::resolve("", data + "/pipeline22/a14b_files/i2v_high.safetensors");
  EXPECT_EQ(a14b.image_dim, 0);
  EXPECT_FALSE(a14b.image_to_video());
  EXPECT_EQ(a14b.in_dim, 36);
  EXPECT_EQ(a14b.model_type(), "i2v");
  // The same config given for weights that have an image embedder keeps Wan2.1's CLIP width.
  const WanDiTConfig wan21 = WanDiTConfig::resolve(data + "/pipeline22/a14b_files/config.json",
                                                   data + "/diffusion/tiny_dit_i2v/i2v.safetensors");
  EXPECT_EQ(wan21.image_dim, 1280);
  EXPECT_TRUE(wan21.image_to_video());
  // Without weights to ask (a config alone) the config's reading stands: Wan2.1 I2V.
  EXPECT_EQ(WanDiTConfig::resolve(data + "/pipeline22/a14b_files/config.json", "").image_dim, 1280);
}

TEST(Wan22DiT, MatchesTheOfficialModelAndDiffusers) {
  const WanDiTConfig cfg = WanDiTConfig::from_json(data22("tiny_ti2v/config.json"));
  const nlohmann::json names =
      nlohmann::json::parse(SafetensorsFile(data22("cases.safetensors")).metadata().at("cases"));
  for (const std::string& weights : {data22("tiny_ti2v/original.safetensors"), data22("tiny_ti2v/diffusers")}) {
    const WanDiT dit = load(weights, cfg);
    WanDiTConfig cfg32 = cfg;
    cfg32.sinusoid = TimestepSinusoid::Float32Diffusers;
    const WanDiT dit32(cfg32, dit.weights());
    for (const auto& item : names) {
      const std::string name = item.get<std::string>();
      const Tensor x = input(name + ".hidden_states"), t = input(name + ".timestep");
      const Tensor ctx = input(name + ".encoder_hidden_states");
      const double e = diff(dit.forward(x, t, ctx), input(name + ".sample")).rel();
      const double ed = diff(dit32.forward(x, t, ctx), input(name + ".sample_diffusers")).rel();
      std::printf("%-10s t %s: vs official %.2e, vs diffusers %.2e (%s)\n", name.c_str(), t.shape().str().c_str(), e,
                  ed, weights.substr(weights.rfind('/') + 1).c_str());
      EXPECT_LE(e, kOfficialTol) << name;
      EXPECT_LE(ed, kDiffusersTol) << name;
    }
  }
}

TEST(Wan22DiT, TimestepGroupsFollowThePattern) {
  const WanDiTConfig cfg = WanDiTConfig::from_json(data22("tiny_ti2v/config.json"));
  const WanDiT dit = load(data22("tiny_ti2v/original.safetensors"), cfg);
  // i2v: one value per latent frame -> per-frame groups (T = 3 frames of 2 x 3 tokens).
  const WanTimeConditioning i2v = wan_time_conditioning(dit.weights(), cfg, input("i2v.timestep"), 1, 18, 6, Device::CPU);
  EXPECT_EQ(i2v.groups, 3);
  EXPECT_EQ(i2v.e0.shape(), (Shape{1, 3, 6, 48}));
  // t2v: one value for every token -> the per-sample path.
  const WanTimeConditioning t2v = wan_time_conditioning(dit.weights(), cfg, input("t2v.timestep"), 1, 18, 6, Device::CPU);
  EXPECT_EQ(t2v.groups, 0);
  // scattered: per token.
  const WanTimeConditioning sc = wan_time_conditioning(dit.weights(), cfg, input("scattered.timestep"), 1, 4, 2, Device::CPU);
  EXPECT_EQ(sc.groups, 4);
  // The per-token expansion of a per-frame conditioning equals the per-token one of the same values.
  const Tensor t = input("i2v.timestep");
  const WanTimeConditioning frame_rows = wan_time_conditioning(dit.weights(), cfg, t, 1, 18, 18, Device::CPU);  // one "frame"
  EXPECT_EQ(frame_rows.groups, 18);  // values differ inside it: per token
  EXPECT_EQ(diff(wan_time_per_token(frame_rows.e0, 18, 18), wan_time_per_token(i2v.e0, 3, 18)).max_abs, 0.0);
  // A per-token timestep that is uniform gives exactly the [B] forward.
  const Tensor x = input("t2v.hidden_states"), ctx = input("t2v.encoder_hidden_states");
  EXPECT_EQ(diff(dit.forward(x, input("t2v.timestep"), ctx), dit.forward(x, Tensor::from_floats({937.0f}, Shape{1}), ctx))
                .max_abs,
            0.0);
}

TEST(Wan22DiT, WrongTimestepShapeIsRefused) {
  const WanDiTConfig cfg = WanDiTConfig::from_json(data22("tiny_ti2v/config.json"));
  const WanDiT dit = load(data22("tiny_ti2v/original.safetensors"), cfg);
  const Tensor x = input("t2v.hidden_states"), ctx = input("t2v.encoder_hidden_states");
  try {
    dit.forward(x, Tensor::zeros(Shape{1, 17}, DType::F32), ctx);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), kExitDataErr);
    EXPECT_NE(std::string(e.what()).find("[1, 18]"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace t2v
