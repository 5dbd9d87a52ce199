// `t2v probe vae-decode` / `vae-encode` entry points (vae/probe.h) on the goldens.
#include "vae/probe.h"

#include "tests/vae/vae_test_util.h"

namespace t2v {
namespace {

TEST(VAEProbe, DecodeWritesSampleFromDenormalisedLatents) {
  vae_test::TempDir dir;
  save_safetensors(dir / "in.safetensors", {{"latents", vae_test::golden("decode_t3_b2.latents")}});
  probe_vae_decode(vae_test::original_file(), vae_test::diffusers_dir() + "/config.json", dir / "in.safetensors",
                   dir / "out.safetensors", Device::CPU);
  const TensorStore out = TensorStore::open(dir / "out.safetensors");
  const Tensor sample = out.get("sample");
  EXPECT_EQ(sample.dtype(), DType::F32);
  const double e = vae_test::rel_err(sample, vae_test::golden("decode_t3_b2.sample"));
  std::printf("probe vae-decode decode_t3_b2: rel err %.2e\n", e);
  EXPECT_LE(e, 5e-5);  // measured 8.5e-6 (was 1e-4)
}

TEST(VAEProbe, EncodeWritesLatentMean) {
  vae_test::TempDir dir;
  save_safetensors(dir / "in.safetensors", {{"sample", vae_test::golden("encode_f5.sample")}});
  probe_vae_encode(vae_test::diffusers_dir(), vae_test::diffusers_dir(), dir / "in.safetensors",
                   dir / "out.safetensors", Device::CPU);
  const TensorStore out = TensorStore::open(dir / "out.safetensors");
  const double e = vae_test::rel_err(out.get("latent_mean"), vae_test::golden("encode_f5.latent_mean"));
  const double e_logvar = vae_test::rel_err(out.get("latent_logvar"), vae_test::golden("encode_f5.latent_logvar"));
  std::printf("probe vae-encode encode_f5: rel err %.2e, logvar %.2e\n", e, e_logvar);
  EXPECT_LE(e, 2e-6);         // measured 3.4e-7 (was 1e-4)
  EXPECT_LE(e_logvar, 3e-6);  // measured 4.8e-7 (was 1e-4)
}

TEST(VAEProbe, MissingInputIsNamed) {
  vae_test::TempDir dir;
  save_safetensors(dir / "in.safetensors", {{"latent", vae_test::golden("decode_t1.latents")}});
  try {
    probe_vae_decode(vae_test::original_file(), vae_test::diffusers_dir(), dir / "in.safetensors",
                     dir / "out.safetensors", Device::CPU);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), kExitDataErr);
    EXPECT_NE(std::string(e.what()).find("'latents'"), std::string::npos) << e.what();
  }
}

TEST(VAEProbe, WrongLatentChannelsAreRefused) {
  vae_test::TempDir dir;
  save_safetensors(dir / "in.safetensors", {{"latents", Tensor::zeros(Shape{1, 8, 1, 2, 2}, DType::F32)}});
  try {
    probe_vae_decode(vae_test::original_file(), vae_test::diffusers_dir(), dir / "in.safetensors",
                     dir / "out.safetensors", Device::CPU);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), kExitDataErr);
    EXPECT_NE(std::string(e.what()).find("[1, 8, 1, 2, 2]"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace t2v
