// The probe components (app/probe_components.h) called directly on the golden
// cases: each writes F32 outputs that match what the upstream reference wrote,
// with the measure and bound of its model's golden tests (tests/diffusion,
// tests/text_encoder, tests/vae), and names a missing or misshaped input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "app/probe_components.h"
#include "cli_test_util.h"
#include "core/error.h"
#include "core/safetensors.h"

namespace t2v::test {
namespace {

const std::string kData = T2V_TEST_DATA_DIR;

Tensor golden(const std::string& file, const std::string& name) {
  return SafetensorsFile(kData + "/" + file).get(name).to(DType::F32).clone();
}

// max |a - b| / max |b| (the DiT and VAE golden tests' measure).
double max_rel(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  if (a.shape() != b.shape()) return INFINITY;
  const std::vector<float> va = a.to_vector(), vb = b.to_vector();
  double diff = 0, ref = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    if (std::isnan(va[i])) return INFINITY;
    diff = std::max(diff, std::fabs(static_cast<double>(va[i]) - vb[i]));
    ref = std::max(ref, std::fabs(static_cast<double>(vb[i])));
  }
  return diff / std::max(ref, 1e-30);
}

// ‖a − b‖ / ‖b‖ (the umT5 golden tests' measure).
double rms_rel(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  const std::vector<float> va = a.to_vector(), vb = b.to_vector();
  double num = 0, den = 0;
  for (size_t i = 0; i < va.size() && i < vb.size(); ++i) {
    num += (double(va[i]) - vb[i]) * (double(va[i]) - vb[i]);
    den += double(vb[i]) * vb[i];
  }
  return std::sqrt(num / den);
}

TEST(ProbeComponents, DitWritesSampleAndIntermediates) {
  TempDir dir;
  const std::string cases = "diffusion/cases.safetensors", name = "batch2_cfg.";
  save_safetensors(dir.file("in.safetensors"),
                   {{"hidden_states", golden(cases, name + "hidden_states")},
                    {"timestep", golden(cases, name + "timestep")},
                    {"encoder_hidden_states", golden(cases, name + "encoder_hidden_states")}});
  // Config detected from config.json beside the diffusers weights.
  probe_dit(kData + "/diffusion/tiny_dit/diffusers", "", dir.file("in.safetensors"), dir.file("out.safetensors"), {},
            /*dump_intermediates=*/true);
  const SafetensorsFile result(dir.file("out.safetensors"));
  const double e = max_rel(result.get("sample"), golden(cases, name + "sample"));
  std::printf("probe dit batch2_cfg: rel %.3e (reference float64 sinusoid)\n", e);
  EXPECT_LE(e, 3e-5);  // tests/diffusion kFloat64SinusoidTolerance: measured 4.9e-6
  EXPECT_NE(result.find("blocks.1.out"), nullptr);
  EXPECT_EQ(result.find("blocks.1.out")->dtype, DType::F32);
}

TEST(ProbeComponents, TextEncoderWritesLastHiddenState) {
  TempDir dir;
  const std::string outputs = "text_encoder/outputs.safetensors";
  const SafetensorsFile g(kData + "/" + outputs);
  save_safetensors(dir.file("in.safetensors"),
                   {{"input_ids", g.get("batch2.input_ids").clone()},
                    {"attention_mask", g.get("batch2.attention_mask").clone()}});
  for (const std::string& config : {kData + "/text_encoder/text_encoder/config.json", std::string("auto")}) {
    probe_text_encoder(kData + "/text_encoder/text_encoder", config, dir.file("in.safetensors"),
                       dir.file("out.safetensors"));
    const SafetensorsFile res(dir.file("out.safetensors"));
    const Tensor h = res.get("last_hidden_state");
    EXPECT_EQ(h.dtype(), DType::F32);
    EXPECT_LT(rms_rel(h, golden(outputs, "batch2.last_hidden_state")), 3e-6) << config;  // tests/text_encoder kGoldenTol
  }
}

TEST(ProbeComponents, VaeDecodeWritesSampleFromDenormalisedLatents) {
  TempDir dir;
  save_safetensors(dir.file("in.safetensors"), {{"latents", golden("vae/goldens.safetensors", "decode_t3_b2.latents")}});
  probe_vae_decode(kData + "/vae/wan_vae_original.safetensors", kData + "/vae/diffusers/config.json",
                   dir.file("in.safetensors"), dir.file("out.safetensors"));
  const Tensor sample = SafetensorsFile(dir.file("out.safetensors")).get("sample");
  EXPECT_EQ(sample.dtype(), DType::F32);
  const double e = max_rel(sample, golden("vae/goldens.safetensors", "decode_t3_b2.sample"));
  std::printf("probe vae-decode decode_t3_b2: rel err %.2e\n", e);
  EXPECT_LE(e, 5e-5);  // measured 8.5e-6 (was 1e-4)
}

TEST(ProbeComponents, VaeEncodeWritesLatentMean) {
  TempDir dir;
  save_safetensors(dir.file("in.safetensors"), {{"sample", golden("vae/goldens.safetensors", "encode_f5.sample")}});
  probe_vae_encode(kData + "/vae/diffusers", kData + "/vae/diffusers", dir.file("in.safetensors"),
                   dir.file("out.safetensors"));
  const SafetensorsFile out(dir.file("out.safetensors"));
  const double e = max_rel(out.get("latent_mean"), golden("vae/goldens.safetensors", "encode_f5.latent_mean"));
  const double e_logvar =
      max_rel(out.get("latent_logvar"), golden("vae/goldens.safetensors", "encode_f5.latent_logvar"));
  std::printf("probe vae-encode encode_f5: rel err %.2e, logvar %.2e\n", e, e_logvar);
  EXPECT_LE(e, 2e-6);         // measured 3.4e-7 (was 1e-4)
  EXPECT_LE(e_logvar, 3e-6);  // measured 4.8e-7 (was 1e-4)
}

// The Wan2.2 components with no config: the VAE's structure from its tensors, the TI2V
// DiT's from the config.json beside it; the bounds of tests/vae/test_wan22_vae.cpp and
// tests/diffusion/test_wan22_dit.cpp, about 5x the measured errors.
TEST(ProbeComponents, Wan22VaeAndTi2vDitWithoutAConfig) {
  TempDir dir;
  const std::string g22 = "vae22/goldens.safetensors";
  save_safetensors(dir.file("z.safetensors"), {{"latents", golden(g22, "decode_t3_b2.latents")}});
  probe_vae_decode(kData + "/vae22/wan22_vae_original.safetensors", "", dir.file("z.safetensors"),
                   dir.file("x.safetensors"));
  const double ed = max_rel(SafetensorsFile(dir.file("x.safetensors")).get("sample"), golden(g22, "decode_t3_b2.sample"));
  save_safetensors(dir.file("s.safetensors"), {{"sample", golden(g22, "encode_f9_b2.sample")}});
  probe_vae_encode(kData + "/vae22/diffusers", "", dir.file("s.safetensors"), dir.file("m.safetensors"));
  const double ee =
      max_rel(SafetensorsFile(dir.file("m.safetensors")).get("latent_mean"), golden(g22, "encode_f9_b2.latent_mean"));
  const std::string cases = "diffusion22/cases.safetensors";
  save_safetensors(dir.file("in.safetensors"), {{"hidden_states", golden(cases, "i2v.hidden_states")},
                                                {"timestep", golden(cases, "i2v.timestep")},
                                                {"encoder_hidden_states", golden(cases, "i2v.encoder_hidden_states")}});
  probe_dit(kData + "/diffusion22/tiny_ti2v/original.safetensors", "", dir.file("in.safetensors"),
            dir.file("out.safetensors"));
  const double et = max_rel(SafetensorsFile(dir.file("out.safetensors")).get("sample"), golden(cases, "i2v.sample"));
  std::printf("probe Wan2.2 VAE decode %.2e, encode %.2e; TI2V DiT (per-token timestep) %.2e\n", ed, ee, et);
  EXPECT_LE(ed, 1e-5);  // measured 1.7e-6
  EXPECT_LE(ee, 5e-6);  // measured 8.0e-7
  EXPECT_LE(et, 3e-6);  // measured 5.7e-7
}

void expect_data_error(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), kExitDataErr);
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(ProbeComponents, MissingOrMisshapedInputIsNamed) {
  TempDir dir;
  const std::string vae = kData + "/vae/wan_vae_original.safetensors", cfg = kData + "/vae/diffusers";
  save_safetensors(dir.file("latent.safetensors"), {{"latent", golden("vae/goldens.safetensors", "decode_t1.latents")}});
  expect_data_error([&] { probe_vae_decode(vae, cfg, dir.file("latent.safetensors"), dir.file("o.safetensors")); },
                    "'latents'");
  save_safetensors(dir.file("c8.safetensors"), {{"latents", Tensor::zeros(Shape{1, 8, 1, 2, 2}, DType::F32)}});
  expect_data_error([&] { probe_vae_decode(vae, cfg, dir.file("c8.safetensors"), dir.file("o.safetensors")); },
                    "[1, 8, 1, 2, 2]");
  save_safetensors(dir.file("no_t.safetensors"), {{"hidden_states", Tensor::zeros(Shape{1, 16, 1, 2, 2}, DType::F32)}});
  expect_data_error([&] {
    probe_dit(kData + "/diffusion/tiny_dit/diffusers", "", dir.file("no_t.safetensors"), dir.file("o.safetensors"));
  }, "'timestep'");
  expect_data_error([&] {
    probe_text_encoder(kData + "/text_encoder/text_encoder", "auto", dir.file("no_t.safetensors"),
                       dir.file("o.safetensors"));
  }, "'input_ids'");
}

}  // namespace
}  // namespace t2v::test
