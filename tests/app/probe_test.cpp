// `t2v probe` end to end: each component run through the program on the inputs
// of a golden case matches what the upstream reference wrote for it.
#include <gtest/gtest.h>

#include <cmath>

#include "cli_test_util.h"
#include "core/safetensors.h"

namespace t2v::test {
namespace {

const std::string kData = T2V_TEST_DATA_DIR;

double rel_error(const Tensor& got, const Tensor& ref) {
  std::vector<float> a = got.to_vector(), b = ref.to_vector();
  EXPECT_EQ(a.size(), b.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    num += (a[i] - b[i]) * static_cast<double>(a[i] - b[i]);
    den += b[i] * static_cast<double>(b[i]);
  }
  return std::sqrt(num / den);
}

struct ProbeCase {
  std::string component, weights, config, golden, prefix;
  std::vector<std::pair<std::string, std::string>> inputs;  // probe name <- golden suffix
  std::string output, output_golden;
  double tolerance;  // on the RMS-relative error: about 5x the measured one (each was 1e-4)
};

void run_case(const ProbeCase& c) {
  TempDir dir;
  SafetensorsFile golden(kData + "/" + c.golden);
  std::vector<std::pair<std::string, Tensor>> in;
  for (const auto& [name, suffix] : c.inputs) in.emplace_back(name, golden.get(c.prefix + suffix).clone());
  save_safetensors(dir.file("in.safetensors"), in);
  std::vector<std::string> args = {"probe", c.component, "--weights", kData + "/" + c.weights,
                                   "--inputs", dir.file("in.safetensors"), "--out", dir.file("out.safetensors")};
  if (!c.config.empty()) args.insert(args.end(), {"--config", c.config});
  RunResult r = run_t2v(args);
  ASSERT_EQ(r.code, 0) << r.err;
  SafetensorsFile out(dir.file("out.safetensors"));
  double e = rel_error(out.get(c.output), golden.get(c.prefix + c.output_golden));
  std::printf("probe %s: relative error %.2e\n", c.component.c_str(), e);
  EXPECT_LT(e, c.tolerance);
}

TEST(Probe, TextEncoder) {
  run_case({"text-encoder", "text_encoder/text_encoder", kData + "/text_encoder/text_encoder/config.json",
            "text_encoder/outputs.safetensors", "batch2.",
            {{"input_ids", "input_ids"}, {"attention_mask", "attention_mask"}}, "last_hidden_state",
            "last_hidden_state", 3e-6});  // measured 4.1e-7
}

TEST(Probe, Dit) {
  run_case({"dit", "diffusion/tiny_dit/diffusers", "", "diffusion/cases.safetensors", "batch2_cfg.",
            {{"hidden_states", "hidden_states"}, {"timestep", "timestep"},
             {"encoder_hidden_states", "encoder_hidden_states"}},
            "sample", "sample", 3e-5});  // measured 4.1e-6 (the reference's float64 sinusoid)
}

TEST(Probe, VaeDecode) {
  run_case({"vae-decode", "vae/diffusers", kData + "/vae/diffusers/config.json", "vae/goldens.safetensors",
            "decode_t2.", {{"latents", "latents"}}, "sample", "sample", 1e-5});  // measured 1.1e-6
}

TEST(Probe, VaeEncode) {
  run_case({"vae-encode", "vae/diffusers", kData + "/vae/diffusers/config.json", "vae/goldens.safetensors",
            "encode_f5.", {{"sample", "sample"}}, "latent_mean", "latent_mean", 3e-6});  // measured 4.1e-7
}

// --device and --dtype mean what they mean for generate: the test device in F32 writes the
// CPU's bytes; bf16 on the CPU is refused (64) before any file is read, for bench too.
TEST(Probe, DeviceAndDtypeAsForGenerate) {
  TempDir dir;
  SafetensorsFile golden(kData + "/diffusion/cases.safetensors");
  save_safetensors(dir.file("in.safetensors"),
                   {{"hidden_states", golden.get("batch2_cfg.hidden_states").clone()},
                    {"timestep", golden.get("batch2_cfg.timestep").clone()},
                    {"encoder_hidden_states", golden.get("batch2_cfg.encoder_hidden_states").clone()}});
  auto probe = [&](const std::string& out, const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"probe", "dit", "--weights", kData + "/diffusion/tiny_dit/diffusers", "--inputs",
                                     dir.file("in.safetensors"), "--out", dir.file(out)};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_t2v(args);
  };
  RunResult cpu = probe("cpu.safetensors", {});
  ASSERT_EQ(cpu.code, 0) << cpu.err;
  RunResult test = probe("test.safetensors", {"--device", "test", "--dtype", "f32"});
  ASSERT_EQ(test.code, 0) << test.err;
  const std::vector<float> a = SafetensorsFile(dir.file("cpu.safetensors")).get("sample").to_vector();
  const std::vector<float> b = SafetensorsFile(dir.file("test.safetensors")).get("sample").to_vector();
  EXPECT_EQ(a, b) << "the test device in F32 runs the CPU kernels";
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"probe", "dit", "--weights", dir.file("none"), "--inputs", dir.file("none"), "--out",
                                 dir.file("o"), "--device", "cpu", "--dtype", "bf16"},
        {"bench", "--dry-run", "--device", "cpu", "--dtype", "bf16"},
        {"bench", "--dry-run", "--dtype", "fp16"}}) {
    RunResult r = run_t2v(args);
    EXPECT_EQ(r.code, 64) << args[0] << ": " << r.err;
    EXPECT_NE(r.err.find("--dtype"), std::string::npos) << r.err;
  }
}

TEST(Probe, BadArguments) {
  TempDir dir;
  EXPECT_EQ(run_t2v({"probe", "unet", "--weights", dir.path(), "--inputs", dir.path(), "--out", dir.file("o")}).code,
            64);
  EXPECT_EQ(run_t2v({"probe", "dit", "--weights", dir.file("none"), "--inputs", dir.file("none"), "--out",
                     dir.file("o")})
                .code,
            66);
}

}  // namespace
}  // namespace t2v::test
