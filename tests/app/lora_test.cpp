// LoRAs and the distilled sampler through the t2v program: the tiny pipeline with
// LoRAs in each convention, strengths, stacking and file dtypes, and with the
// 4- and 3-step distill lists, against diffusers' WanPipeline with the merged
// weights (tools/golden/gen_lora_goldens.py); the DiT forwards per step; and
// every bad LoRA / timestep input refused in one line with nothing written.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "cli_test_util.h"
#include "core/safetensors.h"
#include "video_io/mp4_reader.h"

namespace t2v::test {
namespace {

namespace fs = std::filesystem;

const std::string kLora = std::string(T2V_TEST_DATA_DIR) + "/lora";
const std::string kTinyWan = std::string(T2V_TEST_DATA_DIR) + "/pipeline/tiny_wan";

nlohmann::json e2e_settings() {
  std::ifstream f(kLora + "/cases.json");
  return nlohmann::json::parse(f)["e2e"];
}

int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

// `t2v generate` on tiny_wan with the golden's prompt, size and noise, to `out`.
std::vector<std::string> base_args(const TempDir& dir, const std::string& out) {
  const nlohmann::json g = e2e_settings();
  if (!fs::exists(dir.file("noise.safetensors"))) {
    SafetensorsFile golden(kLora + "/e2e.safetensors");
    save_safetensors(dir.file("noise.safetensors"), {{"noise", golden.get("noise").clone()}});
  }
  return {"generate", "--model", kTinyWan, "-p", g["prompt"], "-n", g["negative_prompt"], "--size",
          fmt::format("{}x{}", int(g["width"]), int(g["height"])), "--frames", std::to_string(int(g["frames"])),
          "--noise", dir.file("noise.safetensors"), "--seed", "1", "-o", out};
}

class LoraPipeline : public ::testing::TestWithParam<std::string> {};

TEST_P(LoraPipeline, FramesMatchDiffusersWithTheMergedWeights) {
  nlohmann::json c;
  const nlohmann::json all = e2e_settings();
  for (const auto& x : all["cases"])
    if (x["name"] == GetParam()) c = x;
  ASSERT_FALSE(c.is_null());
  TempDir dir;
  std::vector<std::string> args = base_args(dir, dir.file("v.mp4"));
  for (const auto& l : c["loras"])
    args.insert(args.end(), {"--lora", fmt::format("{}/{}:{}", kLora, l["file"].get<std::string>(),
                                                   l["strength"].get<double>())});
  int steps = 0;
  bool guided = true;
  if (c["sampler"] == "distill") {
    std::string list;
    for (const auto& t : c["timesteps"]) list += fmt::format("{}{}", list.empty() ? "" : ",", t.get<int>());
    // No --cfg: the distill sampler runs without guidance unless told otherwise.
    args.insert(args.end(), {"--sampler", "distill", "--timesteps", list, "--shift", fmt::format("{}", double(c["shift"]))});
    steps = static_cast<int>(c["timesteps"].size());
    guided = false;
  } else {
    args.insert(args.end(), {"--sampler", c["sampler"], "--schedule", c["schedule"], "--steps",
                             std::to_string(int(c["steps"])), "--cfg", fmt::format("{}", double(c["cfg"])), "--shift",
                             fmt::format("{}", double(c["shift"]))});
    steps = c["steps"];
  }
  args.insert(args.end(), {"--dump-frames", dir.file("frames.safetensors"), "--json"});
  const RunResult r = run_t2v(args);
  ASSERT_EQ(r.code, 0) << r.err;

  // One DiT forward per step without guidance, a batch of two with it.
  std::istringstream lines(r.out);
  std::string line;
  int forwards = -1, step_events = 0;
  while (std::getline(lines, line)) {
    const nlohmann::json e = nlohmann::json::parse(line);
    if (e["event"] == "step") ++step_events;
    if (e["event"] == "done") forwards = e["dit_forwards"];
  }
  EXPECT_EQ(step_events, steps);
  EXPECT_EQ(forwards, guided ? 2 * steps : steps);

  SafetensorsFile golden(kLora + "/e2e.safetensors");
  const std::vector<float> ref = golden.get(GetParam() + ".frames").to_vector();
  const std::vector<float> got = SafetensorsFile(dir.file("frames.safetensors")).get("frames").to_vector();
  ASSERT_EQ(got.size(), ref.size());
  const auto [max_abs, psnr] = frame_diff(got, ref);
  std::printf("[ lora e2e ] %-14s max abs %.3g, PSNR %.1f dB, %d DiT forwards\n", GetParam().c_str(), max_abs, psnr,
              forwards);
  // Measured: max abs 5.7e-6 and PSNR 128.4 dB at worst (original@1); the golden itself moves by up to
  // 1.5e-6 between runs of its script (diffusers on the CPU). The bounds: about 5x the error (14 dB).
  EXPECT_LE(max_abs, 3e-5);
  EXPECT_GE(psnr, 115.0);
}

INSTANTIATE_TEST_SUITE_P(AllCases, LoraPipeline,
                         ::testing::Values("diffusers@1", "diffusers@0.6", "original@1", "original@0.6", "kohya@1",
                                           "kohya@0.6", "stack", "original_f16", "kohya_bf16", "distill4", "distill3"),
                         [](const auto& p) {
                           std::string n = p.param;
                           for (char& ch : n)
                             if (ch == '@' || ch == '.') ch = '_';
                           return n;
                         });

TEST(LoraPipelineCases, GoldenListsEveryCase) { EXPECT_EQ(e2e_settings()["cases"].size(), 11u); }

// A LoRA changes the video; the same LoRA at strength 0 does not (its keys are
// merged with a zero factor: bit-identical weights).
TEST(LoraPipelineCases, StrengthZeroIsTheBaseModel) {
  TempDir dir;
  auto frames = [&](const std::vector<std::string>& extra, const std::string& name) {
    std::vector<std::string> args = base_args(dir, dir.file(name + ".mp4"));
    args.insert(args.end(), extra.begin(), extra.end());
    args.insert(args.end(), {"--steps", "2", "--dump-frames", dir.file(name + ".safetensors"), "-q"});
    const RunResult r = run_t2v(args);
    EXPECT_EQ(r.code, 0) << r.err;
    return SafetensorsFile(dir.file(name + ".safetensors")).get("frames").to_vector();
  };
  const auto base = frames({}, "base");
  EXPECT_EQ(frames({"--lora", kLora + "/original.safetensors:0"}, "zero"), base);
  EXPECT_NE(frames({"--lora", kLora + "/original.safetensors"}, "one"), base);
}

// A batch switches LoRAs per item: the DiT is reloaded when the list changes, and each
// video has the frames `generate` makes with the same settings.
TEST(LoraBatch, PerItemLorasMatchGenerate) {
  TempDir dir;
  const std::string lora = kLora + "/original.safetensors";
  write_text(dir.file("list.jsonl"),
             "{\"prompt\": \"a red ball\", \"id\": \"plain\", \"seed\": 3}\n"
             "{\"prompt\": \"a red ball\", \"id\": \"lora\", \"seed\": 3, \"loras\": [{\"file\": \"" + lora +
                 "\", \"strength\": 0.8}]}\n"
             "{\"prompt\": \"a red ball\", \"id\": \"plain2\", \"seed\": 3}\n"
             "{\"prompt\": \"a red ball\", \"id\": \"distill\", \"seed\": 3, \"sampler\": \"distill\", \"timesteps\": [1000, 500]}\n");
  const std::vector<std::string> common = {"--model", kTinyWan, "--size", "48x32", "--frames", "5", "-q"};
  std::vector<std::string> args = {"batch", dir.file("list.jsonl"), "--out-dir", dir.file("out"), "--steps", "2"};
  args.insert(args.end(), common.begin(), common.end());
  const RunResult b = run_t2v(args);
  ASSERT_EQ(b.code, 0) << b.err;
  auto frames = [](const std::string& mp4) {
    Mp4Reader r;
    r.open(mp4);
    return r.read_all_frames();
  };
  auto generate = [&](const std::string& name, std::vector<std::string> extra) {
    std::vector<std::string> a = {"generate", "-p", "a red ball", "--seed", "3", "-o", dir.file(name)};
    a.insert(a.end(), common.begin(), common.end());
    a.insert(a.end(), extra.begin(), extra.end());
    const RunResult r = run_t2v(a);
    EXPECT_EQ(r.code, 0) << r.err;
    return frames(dir.file(name));
  };
  const auto plain = frames(dir.file("out/plain.mp4"));
  EXPECT_EQ(plain, generate("g_plain.mp4", {"--steps", "2"}));
  EXPECT_EQ(frames(dir.file("out/lora.mp4")), generate("g_lora.mp4", {"--steps", "2", "--lora", lora + ":0.8"}));
  EXPECT_NE(frames(dir.file("out/lora.mp4")), plain);
  EXPECT_EQ(frames(dir.file("out/plain2.mp4")), plain) << "the LoRA must be gone after its item";
  EXPECT_EQ(frames(dir.file("out/distill.mp4")),
            generate("g_distill.mp4", {"--sampler", "distill", "--timesteps", "1000,500"}));
  // The manifest records the item's LoRAs and timesteps.
  const auto records = manifest_lines(dir.file("out"));
  bool saw_lora = false, saw_distill = false;
  for (const auto& rec : records) {
    if (rec["id"] == "lora") saw_lora = rec["settings"]["loras"][0]["strength"] == 0.8;
    if (rec["id"] == "distill") saw_distill = rec["settings"]["timesteps"] == nlohmann::json::array({1000, 500});
  }
  EXPECT_TRUE(saw_lora);
  EXPECT_TRUE(saw_distill);

  // --lora takes one value per occurrence: the list after it is still the list.
  std::vector<std::string> again = {"batch", "--lora", lora + ":0.8", dir.file("list.jsonl"), "--out-dir",
                                    dir.file("out2"), "--steps", "1"};
  again.insert(again.end(), common.begin(), common.end());
  const RunResult b2 = run_t2v(again);
  EXPECT_EQ(b2.code, 0) << b2.err;
  EXPECT_EQ(manifest_lines(dir.file("out2")).size(), 4u);
}

// A scaled-fp8 base is dequantized, merged and kept in the compute dtype, and says so.
TEST(LoraBatch, Fp8BaseSaysItKeepsTheMergedWeightsInTheComputeDtype) {
  TempDir dir;
  fs::create_directories(dir.file("dit"));
  const std::string tiny = std::string(T2V_TEST_DATA_DIR) + "/diffusion/tiny_dit/";
  fs::copy_file(tiny + "original_fp8_scaled.safetensors", dir.file("dit/model.safetensors"));
  fs::copy_file(tiny + "config_original.json", dir.file("dit/config.json"));
  const RunResult r = run_t2v({"generate", "--model", kTinyWan, "--dit", dir.file("dit"), "-p", "x", "--seed", "1",
                               "--size", "48x32", "--frames", "5", "--steps", "1", "-o", dir.file("f.mp4"), "--lora",
                               kLora + "/original.safetensors"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("fp8 weights of the DiT are dequantized, merged and kept in F32 (not fp8)"), std::string::npos)
      << r.err;
}

// `t2v inspect` on a LoRA: convention, rank, alpha, modules, and whether it fits a model.
TEST(LoraInspect, ConventionRankAlphaModulesAndFit) {
  RunResult r = run_t2v({"inspect", kLora + "/kohya_f16.safetensors", "--model", kTinyWan, "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["family"], "lora");
  EXPECT_EQ(j["lora"]["convention"], "kohya");
  EXPECT_EQ(j["lora"]["modules"], 13);
  EXPECT_EQ(j["lora"]["ranks"], nlohmann::json::array({4}));
  EXPECT_TRUE(j["lora"]["fits"].get<bool>());
  EXPECT_EQ(j["lora"]["module_names"][0], "text_embedding.2");

  r = run_t2v({"inspect", kLora + "/original.safetensors"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("convention  original names (prefix 'diffusion_model.')"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rank        4"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("23 LoRA pairs, 8 weight deltas, 7 bias deltas"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("fits"), std::string::npos) << "no model given: names only";

  r = run_t2v({"inspect", kLora + "/diffusers_alpha.safetensors", "--dit",
               std::string(T2V_TEST_DATA_DIR) + "/diffusion/tiny_dit/diffusers"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("convention  diffusers names"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("fits        yes"), std::string::npos) << r.out;

  r = run_t2v({"inspect", kLora + "/other_model.safetensors", "--model", kTinyWan});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("fits        no"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("the model's blocks.0.self_attn.q.weight is [48, 48]"), std::string::npos) << r.out;
}

// ---- bad input ------------------------------------------------------------------------------
struct Bad {
  std::vector<std::string> args;
  int code;
  std::string needle;
};

class LoraBadInput : public ::testing::Test {
 protected:
  void expect_refused(const std::vector<Bad>& cases) {
    for (const Bad& c : cases) {
      std::vector<std::string> args = base_args(dir_, out_);
      args.insert(args.end(), c.args.begin(), c.args.end());
      const RunResult r = run_t2v(args);
      SCOPED_TRACE(fmt::format("{}", fmt::join(c.args, " ")));
      EXPECT_EQ(r.code, c.code) << r.err;
      EXPECT_NE(r.err.find(c.needle), std::string::npos) << r.err;
      EXPECT_EQ(count_lines(r.err), 1) << "one line: " << r.err;
      EXPECT_EQ(r.err.rfind("t2v: error: ", 0), 0u) << r.err;
      EXPECT_FALSE(fs::exists(out_)) << "nothing is rendered";
    }
  }
  std::string write(const std::string& name, const std::vector<std::pair<std::string, Tensor>>& t) {
    save_safetensors(dir_.file(name), t);
    return dir_.file(name);
  }
  static Tensor filled(const Shape& s, float v) { return Tensor::full(s, v); }
  TempDir dir_;
  std::string out_ = dir_.file("never.mp4");
};

TEST_F(LoraBadInput, LoraFilesThatDoNotFit) {
  const std::string rank = write("rank.safetensors", {{"diffusion_model.blocks.0.self_attn.q.lora_down.weight", filled({3, 48}, 0.01f)},
                                                      {"diffusion_model.blocks.0.self_attn.q.lora_up.weight", filled({48, 4}, 0.01f)}});
  Tensor up = filled({48, 4}, 0.01f);
  up.data<float>()[5] = std::numeric_limits<float>::quiet_NaN();
  const std::string nan = write("nan.safetensors", {{"lora_unet_blocks_0_self_attn_k.lora_down.weight", filled({4, 48}, 0.01f)},
                                                    {"lora_unet_blocks_0_self_attn_k.lora_up.weight", up}});
  const std::string unknown = write("unknown.safetensors", {{"diffusion_model.blocks.0.self_attn.q.lora_down.weight", filled({4, 48}, 0.01f)},
                                                            {"diffusion_model.blocks.0.self_attn.q.lora_up.weight", filled({48, 4}, 0.01f)},
                                                            {"diffusion_model.blocks.7.self_attn.q.lora_down.weight", filled({4, 48}, 0.01f)},
                                                            {"diffusion_model.img_emb.proj.1.lora_down.weight", filled({4, 48}, 0.01f)}});
  expect_refused({
      {{"--lora", kLora + "/other_model.safetensors"}, 65, "is [48, 48]"},
      {{"--lora", kLora + "/other_model.safetensors"}, 65, "lora_up.weight [64, 4]"},
      {{"--lora", rank}, 65, "rank mismatch"},
      {{"--lora", nan + ":0.5"}, 65, "lora_unet_blocks_0_self_attn_k.lora_up.weight holds NaN or Inf"},
      {{"--lora", unknown}, 65, "2 keys match no module"},
      {{"--lora", dir_.file("missing.safetensors")}, 66, "missing.safetensors: no such file"},
      {{"--lora", kLora + "/original.safetensors", "--lora", dir_.file("missing2.safetensors:0.5")}, 66, "missing2"},
      {{"--lora", std::string(T2V_TEST_DATA_DIR) + "/diffusion/tiny_dit/original.safetensors"}, 65, "not a LoRA"},
  });
  // The keys that match are merged when the others may be skipped.
  std::vector<std::string> args = base_args(dir_, dir_.file("ok.mp4"));
  args.insert(args.end(), {"--lora", unknown, "--lora-ignore-unknown", "--steps", "1"});
  const RunResult r = run_t2v(args);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("2 key(s) match no module"), std::string::npos) << r.err;
}

TEST_F(LoraBadInput, StrengthsThatAreNotFiniteNumbers) {
  const std::string f = kLora + "/original.safetensors";
  expect_refused({
      {{"--lora", f + ":abc"}, 64, "strength 'abc' is not a finite number"},
      {{"--lora", f + ":nan"}, 64, "strength 'nan'"},
      {{"--lora", f + ":inf"}, 64, "strength 'inf'"},
      {{"--lora", f + ":"}, 64, "strength ''"},
  });
}

TEST_F(LoraBadInput, DistillTimesteps) {
  expect_refused({
      {{"--sampler", "distill", "--timesteps", "1000,750,750,250"}, 64, "must strictly decrease"},
      {{"--sampler", "distill", "--timesteps", "250,500"}, 64, "must strictly decrease"},
      {{"--sampler", "distill", "--timesteps", "1000,0"}, 64, "outside 1..1000"},
      {{"--sampler", "distill", "--timesteps", "1001,500"}, 64, "outside 1..1000"},
      {{"--sampler", "distill", "--timesteps", "1000,750.5"}, 64, "'750.5' is not an integer"},
      {{"--sampler", "distill", "--timesteps", ""}, 64, "is not an integer"},
      {{"--sampler", "distill"}, 64, "--sampler distill needs --timesteps"},
      {{"--sampler", "distill", "--timesteps", "1000,500", "--steps", "4"}, 64, "--steps 4 with the distill sampler"},
      {{"--timesteps", "1000,500"}, 64, "--timesteps is for --sampler distill"},
  });
}

}  // namespace
}  // namespace t2v::test
