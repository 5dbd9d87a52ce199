// End to end against the official Wan2.2 pipelines: `t2v generate` on tiny random
// Wan2.2 models (tools/golden/gen_wan22_pipeline_goldens.py) with the noise the official
// WanTI2V / WanT2V / WanI2V.generate started from must reproduce their frames: TI2V-5B
// text-to-video and image-to-video, T2V-A14B and I2V-A14B with two experts, unipc and
// dpm++, both guidance scales, --boundary, --low-memory, diffusers folders and single files;
// three of them also on the test device.
// Then the bad inputs of the Wan2.2 models: one line, the exit code, nothing written.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "app/model_paths.h"
#include "app/pipeline.h"
#include "app/progress.h"
#include "cli_test_util.h"
#include "core/safetensors.h"

namespace t2v::test {
namespace {

namespace fs = std::filesystem;

const std::string kData = std::string(T2V_TEST_DATA_DIR);
const std::string kDir = kData + "/pipeline22";

nlohmann::json golden_json() {
  std::ifstream f(kDir + "/golden.json");
  return nlohmann::json::parse(f);
}

// golden.json names files relative to the repository ("tests/data/...").
std::string data_path(const std::string& a) {
  const std::string prefix = "tests/data/";
  return a.rfind(prefix, 0) == 0 ? kData + "/" + a.substr(prefix.size()) : a;
}

std::vector<std::string> case_args(const nlohmann::json& c, const nlohmann::json& g) {
  std::vector<std::string> args = {"generate", "-p", g["prompt"], "-n", g["negative_prompt"], "--seed", "1", "-q"};
  for (const auto& a : c["args"]) args.push_back(data_path(a.get<std::string>()));
  return args;
}

// Runs one golden case through `t2v generate` (with `extra` arguments) and compares the frames.
void check_case(const std::string& name, const std::vector<std::string>& extra) {
  const nlohmann::json g = golden_json();
  const auto it = std::find_if(g["cases"].begin(), g["cases"].end(), [&](const auto& c) { return c["name"] == name; });
  ASSERT_NE(it, g["cases"].end()) << name;
  TempDir dir;
  SafetensorsFile golden(kDir + "/golden.safetensors");
  save_safetensors(dir.file("noise.safetensors"), {{"noise", golden.get(name + ".noise").clone()}});
  std::vector<std::string> args = case_args(*it, g);
  for (const std::string& a : {std::string("--noise"), dir.file("noise.safetensors"), std::string("-o"),
                               dir.file("out.mp4"), std::string("--dump-frames"), dir.file("frames.safetensors")})
    args.push_back(a);
  args.insert(args.end(), extra.begin(), extra.end());
  RunResult r = run_t2v(args);
  ASSERT_EQ(r.code, 0) << r.err;
  SafetensorsFile ours(dir.file("frames.safetensors"));
  const Tensor got = ours.get("frames"), want = golden.get(name + ".frames");
  ASSERT_EQ(got.shape(), want.shape()) << r.err;
  const FrameDiff c = frame_diff(got.to_vector(), want.to_vector());
  std::printf("%-24s%s frames %s: max abs %.2e, PSNR %.1f dB\n", name.c_str(), extra.empty() ? "" : " (test device)",
              want.shape().str().c_str(), c.max_abs, c.psnr);
  EXPECT_LE(c.max_abs, 1e-3);
  EXPECT_GE(c.psnr, 60.0);
}

class Wan22Pipeline : public ::testing::TestWithParam<std::string> {};

TEST_P(Wan22Pipeline, MatchesTheOfficialPipeline) { check_case(GetParam(), {}); }

INSTANTIATE_TEST_SUITE_P(Cases, Wan22Pipeline,
                         ::testing::Values("ti2v_t2v_unipc", "ti2v_t2v_dpm_files", "ti2v_i2v_unipc",
                                           "ti2v_i2v_dpm_cfg1", "t2v_a14b_unipc", "t2v_a14b_dpm_boundary",
                                           "i2v_a14b_unipc", "i2v_a14b_dpm_files"),
                         [](const auto& p) { return p.param; });

// The same through the device interface (--device test: the CPU kernels behind it, fp32):
// the image encoding, the per-token timesteps, the condition channels and the expert swap
// on device tensors.
class Wan22PipelineOnTheTestDevice : public ::testing::TestWithParam<std::string> {};

TEST_P(Wan22PipelineOnTheTestDevice, MatchesTheOfficialPipeline) {
  check_case(GetParam(), {"--device", "test", "--dtype", "f32"});
}

INSTANTIATE_TEST_SUITE_P(Cases, Wan22PipelineOnTheTestDevice,
                         ::testing::Values("ti2v_i2v_unipc", "t2v_a14b_dpm_boundary", "i2v_a14b_dpm_files"),
                         [](const auto& p) { return p.param; });

// ---- the step cache with two experts (docs/PERFORMANCE.md): a fresh cache at the switch ----

// Denoises T2V-A14B (tiny) with a first-block cache that reuses whenever it can (threshold
// 1e30): per expert only its first step runs the blocks. Returns the records; `observed`
// counts the observer's calls.
DenoiseStats denoise_a14b_cached(double cfg_low, int* observed) {
  GenerateOptions g;
  g.model = kDir + "/t2v_a14b";
  g.vae = kData + "/pipeline/tiny_wan/vae";
  g.t5 = kData + "/pipeline/tiny_wan/text_encoder";
  g.tokenizer = kData + "/pipeline/tiny_wan/tokenizer";
  Pipeline p(resolve_model_paths(g), PipelineLoadOptions{});
  RenderRequest r;
  r.prompt = "a red ball";
  r.negative_prompt = std::string("blurry");
  r.width = 48, r.height = 32, r.frames = 5, r.steps = 6, r.shift = 5.0, r.seed = 1;
  r.cfg = 4.0;
  r.cfg_low = cfg_low;
  r.boundary = 0.9;  // 6 steps at shift 5: t = 1000, 961, 909 high-noise, then low-noise
  r.quiet = true;
  r.cache.kind = StepCacheKind::kFirstBlock;
  r.cache.threshold = 1e30;
  StageTimes t;
  Progress progress(false, false);
  const EncodedPrompts text = p.encode_prompts(r, t);
  DenoiseStats stats;
  *observed = 0;
  const Tensor x = p.denoise(r, text, progress, nullptr, t, nullptr,
                             [&](const DenoiseStep& s) { *observed += s.step == *observed + 1 ? 1 : 1000; }, &stats);
  EXPECT_TRUE(std::isfinite(x.to(Device::CPU).to_vector()[0]));
  return stats;
}

TEST(Wan22StepCache, EachExpertStartsWithAFreshCache) {
  int observed = 0;
  // cfg-low 1: the low-noise steps have one branch, which tells the experts apart.
  const DenoiseStats a = denoise_a14b_cached(1.0, &observed);
  EXPECT_EQ(observed, 6);
  std::map<int, int> branches;
  for (const StepCacheRecord& rec : a.records) ++branches[rec.step];
  ASSERT_EQ(branches.size(), 6u);
  int first_low = -1;
  for (const auto& [step, n] : branches)
    if (n == 1 && first_low < 0) first_low = step;
  ASSERT_GT(first_low, 0) << "no high-noise or no low-noise step";
  for (const StepCacheRecord& rec : a.records)
    EXPECT_EQ(rec.computed, rec.step == 0 || rec.step == first_low) << "step " << rec.step << " branch " << rec.branch;
  EXPECT_EQ(a.dit_forwards, 3);  // 2 branches at step 0, 1 at the first low-noise step
  EXPECT_EQ(a.dit_forwards_skipped, 2 * (first_low - 1) + (6 - first_low - 1));
  // The same guidance on both experts: one cache carried across would reuse the high-noise
  // residual at the first low-noise step; each expert's first step runs instead.
  const DenoiseStats b = denoise_a14b_cached(4.0, &observed);
  ASSERT_EQ(b.records.size(), 12u);
  for (const StepCacheRecord& rec : b.records)
    EXPECT_EQ(rec.computed, rec.step == 0 || rec.step == first_low) << "step " << rec.step << " branch " << rec.branch;
  EXPECT_EQ(b.dit_forwards, 4);
  EXPECT_EQ(b.steps_reused, 4);
}

// ---- bad inputs (docs/bad_inputs.md #95-101): one line, the code, no output file ------------

void expect_refused(std::vector<std::string> extra, int code, const std::string& needle) {
  TempDir dir;
  const std::string tiny = kData + "/pipeline/tiny_wan";
  // --seed: without it the chosen seed is noted on stderr before the model is read.
  std::vector<std::string> args = {"generate", "-p", "a red ball", "--t5", tiny + "/text_encoder", "--tokenizer",
                                   tiny + "/tokenizer", "--frames", "5", "--steps", "1", "--seed", "1",
                                   "-o", dir.file("out.mp4")};
  args.insert(args.end(), extra.begin(), extra.end());
  RunResult r = run_t2v(args);
  EXPECT_EQ(r.code, code) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir.file("out.mp4")));
  size_t lines = 0;
  for (char ch : r.err) lines += ch == '\n';
  EXPECT_EQ(lines, 1u) << r.err;
}

TEST(Wan22BadInput, Wan22VaeWithWan21Dit) {
  expect_refused({"--model", kData + "/pipeline/tiny_wan", "--vae", kDir + "/ti2v/vae", "--size", "64x32"}, 65,
                 "latent channels");
}

TEST(Wan22BadInput, Wan21VaeWithTi2vDit) {
  expect_refused({"--model", kDir + "/ti2v", "--vae", kData + "/pipeline/tiny_wan/vae", "--size", "64x32"}, 65,
                 "Wan2.2 VAE");
}

TEST(Wan22BadInput, MissingExpert) {
  TempDir m;
  fs::copy(kDir + "/t2v_a14b", m.file("model"), fs::copy_options::recursive);
  fs::remove_all(m.file("model/transformer_2"));
  expect_refused({"--model", m.file("model"), "--vae", kData + "/pipeline/tiny_wan/vae", "--size", "48x32"}, 66,
                 "transformer_2");
}

TEST(Wan22BadInput, BoundaryOutsideTheRange) {
  for (const char* b : {"0", "1.5", "-0.2"})
    expect_refused({"--model", kDir + "/t2v_a14b", "--vae", kData + "/pipeline/tiny_wan/vae", "--size", "48x32",
                    "--boundary", b},
                   64, "--boundary");
}

TEST(Wan22BadInput, ImageThatCannotBeDecoded) {
  expect_refused({"--model", kDir + "/ti2v", "--size", "64x32", "--image", kData + "/image/not_an_image.png"}, 65,
                 "header is cut short or damaged");
  expect_refused({"--model", kDir + "/ti2v", "--size", "64x32", "--image", kData + "/image/missing.png"}, 66,
                 "does not exist");
}

TEST(Wan22BadInput, Ti2vSizeNotAMultipleOf32) {
  expect_refused({"--model", kDir + "/ti2v", "--size", "48x32"}, 64, "multiples of 32");
}

TEST(Wan22BadInput, ImageForATextOnlyModelAndNoneForAnI2vModel) {
  expect_refused({"--model", kDir + "/t2v_a14b", "--vae", kData + "/pipeline/tiny_wan/vae", "--size", "48x32",
                  "--image", kDir + "/image.png"},
                 64, "text-to-video model");
  expect_refused({"--model", kDir + "/i2v_a14b", "--vae", kData + "/pipeline/tiny_wan/vae", "--size", "48x32"}, 64,
                 "--image");
}

TEST(Wan22BadInput, ExpertOptionsWithOneTransformer) {
  expect_refused({"--model", kDir + "/ti2v", "--size", "64x32", "--cfg-low", "3"}, 64, "--dit-low");
}

TEST(Wan22BadInput, LoraWithTwoExperts) {
  expect_refused({"--model", kDir + "/t2v_a14b", "--vae", kData + "/pipeline/tiny_wan/vae", "--size", "48x32",
                  "--lora", kData + "/lora/original.safetensors"},
                 64, "--lora");
}

}  // namespace
}  // namespace t2v::test
