// The memory estimate t2v checks a render against before loading weights
// (app/memory_estimate.h, docs/bad_inputs.md #74) and prints with `generate --plan`,
// compared stage by stage with the high-water marks of real runs (the lines
// T2V_LOG=debug prints: VmHWM per stage, and the test device's allocations): the default
// model at two sizes, and the Wan2.1 1.3B transformer's configuration with one block and
// random weights beside the Wan2.1 VAE (random weights too).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <regex>

#include <nlohmann/json.hpp>

#include "cli_test_util.h"
#include "core/safetensors.h"
#include "core/weights.h"
#include "diffusion/wan_dit_config.h"
#include "diffusion/wan_dit_weights.h"
#include "text_encoder/umt5.h"
#include "vae/wan_vae.h"
#include "vae/wan_vae_config.h"

namespace t2v::test {
namespace {

namespace fs = std::filesystem;

// Every tensor `requests` names, random (core/weights.h), saved as one safetensors file.
void save_random(const std::string& path, const std::vector<WeightRequest>& requests, uint64_t seed) {
  RandomSource random(seed);
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const WeightRequest& r : requests) tensors.emplace_back(r.key, random.get(r));
  save_safetensors(path, tensors);
}

// A diffusers folder with the Wan2.1 1.3B transformer's configuration cut to `layers`
// blocks, a one-layer umT5 of its width (4096) over the default model's tokenizer, and the
// Wan2.1 VAE's decoder; all weights random.
std::string write_wan13b_blocks_model(const TempDir& dir, int layers) {
  const fs::path m = fs::path(dir.path()) / "wan13b-blocks";
  const fs::path tiny = test_model_dir();
  fs::create_directories(m);
  for (const char* part : {"tokenizer", "scheduler"})
    fs::copy(tiny / part, m / part, fs::copy_options::recursive);
  fs::copy_file(tiny / "model_index.json", m / "model_index.json");

  WanDiTConfig dit = WanDiTConfig::preset("wan2.1-t2v-1.3b");
  dit.num_layers = layers;
  fs::create_directories(m / "transformer");
  write_text((m / "transformer" / "config.json").string(),
             nlohmann::json{{"_class_name", "WanTransformer3DModel"},
                            {"attention_head_dim", dit.head_dim()},
                            {"num_attention_heads", dit.num_heads},
                            {"ffn_dim", dit.ffn_dim},
                            {"freq_dim", dit.freq_dim},
                            {"in_channels", dit.in_dim},
                            {"out_channels", dit.out_dim},
                            {"num_layers", layers},
                            {"patch_size", {1, 2, 2}},
                            {"text_dim", dit.text_dim},
                            {"eps", 1e-6},
                            {"cross_attn_norm", true},
                            {"qk_norm", "rms_norm_across_heads"},
                            {"rope_max_seq_len", 1024},
                            {"image_dim", nullptr}}
                 .dump());
  save_random((m / "transformer" / "diffusion_pytorch_model.safetensors").string(), wan_dit_weight_list(dit), 1);

  nlohmann::json t5 = nlohmann::json::parse(read_text((tiny / "text_encoder" / "config.json").string()));
  t5["d_model"] = dit.text_dim;
  t5["num_layers"] = 1;
  fs::create_directories(m / "text_encoder");
  write_text((m / "text_encoder" / "config.json").string(), t5.dump());
  save_random((m / "text_encoder" / "model.safetensors").string(),
              umt5_weight_list(UMT5Config::from_json_text(t5.dump(), "test")), 2);

  const WanVAEConfig vae = WanVAEConfig::preset("wan2.1-vae");
  fs::create_directories(m / "vae");
  write_text((m / "vae" / "config.json").string(), R"({"_class_name": "AutoencoderKLWan"})");
  std::vector<WeightRequest> vae_keys;
  WanVAEParts decoder;
  decoder.encoder = false;
  for (const WanVAEKeyEntry& e : wan_vae_key_table(vae, decoder))
    vae_keys.push_back(WeightRequest{e.original, e.shape, WeightPrecision::F32});
  save_random((m / "vae" / "diffusion_pytorch_model.safetensors").string(), vae_keys, 3);
  return m.string();
}

struct StagePeaks {
  double encode = 0, denoise = 0, decode = 0;
  double max() const { return std::max({encode, denoise, decode}); }
};

struct PlanAndRun {
  StagePeaks host_plan, host_run, device_plan, device_run;
};

// `generate --plan --json` with `args`, then the render itself with T2V_LOG=debug.
PlanAndRun plan_and_run(const std::vector<std::string>& args, const TempDir& dir,
                        const std::vector<std::string>& run_only = {}) {
  PlanAndRun p;
  std::vector<std::string> plan = {t2v_exe(), "generate", "--plan", "--json"};
  plan.insert(plan.end(), args.begin(), args.end());
  RunResult r = run_program(plan);
  EXPECT_EQ(r.code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  for (auto [name, host, device] : {std::tuple{"encode", &p.host_plan.encode, &p.device_plan.encode},
                                    std::tuple{"denoise", &p.host_plan.denoise, &p.device_plan.denoise},
                                    std::tuple{"decode", &p.host_plan.decode, &p.device_plan.decode}}) {
    *host = j["stages"][name]["host_bytes"].get<double>();
    *device = j["stages"][name]["device_bytes"].get<double>();
  }
  std::vector<std::string> run = {t2v_exe(), "generate", "-o", dir.file("run.mp4"), "--overwrite", "-q"};
  run.insert(run.end(), args.begin(), args.end());
  run.insert(run.end(), run_only.begin(), run_only.end());
  r = run_program(run, {{"T2V_LOG", "debug"}});
  EXPECT_EQ(r.code, 0) << r.err;
  const std::regex line(R"(measured peak of (\w+): host ([0-9.]+) GB, device ([0-9.]+) GB)");
  for (std::sregex_iterator it(r.err.begin(), r.err.end(), line), end; it != end; ++it) {
    const std::string stage = (*it)[1];
    const double host = std::stod((*it)[2]) * 1e9, device = std::stod((*it)[3]) * 1e9;
    if (stage == "encode") p.host_run.encode = host, p.device_run.encode = device;
    if (stage == "denoise") p.host_run.denoise = host, p.device_run.denoise = device;
    if (stage == "decode") p.host_run.decode = host, p.device_run.decode = device;
  }
  EXPECT_GT(p.host_run.decode, 0) << r.err;
  return p;
}

// Each stage's prediction and the run's peak within 15% of the measured figure, either way.
void expect_close(const StagePeaks& plan, const StagePeaks& run, const char* what) {
  for (auto [stage, a, b] : {std::tuple{"encode", plan.encode, run.encode},
                             std::tuple{"denoise", plan.denoise, run.denoise},
                             std::tuple{"decode", plan.decode, run.decode},
                             std::tuple{"peak", plan.max(), run.max()}}) {
    std::printf("  %s %-7s predicted %.4f GB, measured %.4f GB (%.3fx)\n", what, stage, a / 1e9, b / 1e9, a / b);
    EXPECT_GT(a, 0.85 * b) << what << " " << stage;
    EXPECT_LT(a, 1.15 * b) << what << " " << stage;
  }
}

// The default model at its default size (64x64, 17 frames) and at 256x256 x 5 frames.
TEST(MemoryEstimate, DefaultModelIsWithin15PercentOfMeasuredPeaks) {
  TempDir dir;
  for (const auto& [size, frames] : std::vector<std::pair<std::string, std::string>>{{"64x64", "17"},
                                                                                     {"256x256", "5"}}) {
    SCOPED_TRACE(size + " x " + frames);
    std::printf("%s x %s frames:\n", size.c_str(), frames.c_str());
    const PlanAndRun p = plan_and_run({"--model", test_model_dir(), "-p", "a red ball rolling", "--size", size,
                                       "--frames", frames, "--steps", "1", "--seed", "1"},
                                      dir);
    expect_close(p.host_plan, p.host_run, "host");
  }
}

// The Wan2.1 1.3B configuration with one block (its weights dominate the denoise stage)
// and the Wan2.1 VAE decoder, at 64x64 x 1 frame, on the CPU.
TEST(MemoryEstimate, Wan13BBlockIsWithin15PercentOfMeasuredPeaks) {
  TempDir dir;
  const std::string model = write_wan13b_blocks_model(dir, 1);
  const PlanAndRun p = plan_and_run(
      {"--model", model, "-p", "a red ball rolling", "--size", "64x64", "--frames", "1", "--steps", "1", "--seed", "1"},
      dir);
  expect_close(p.host_plan, p.host_run, "host");
}

// --offload on the test device: the same frames as without, and a denoise stage whose device
// high-water mark holds the weights outside the blocks, kOffloadWindow blocks and the
// activations (the plan's offloaded figure), saving what the plans say the other blocks take.
TEST(Offload, TestDeviceHoldsAWindowOfBlocksAndGivesTheSameFrames) {
  TempDir dir;
  struct Run {
    std::string frames;
    double plan_denoise = 0, denoise = 0;
  };
  auto run = [&](bool offload) {
    std::vector<std::string> args = {"--model", test_model_dir(), "-p", "a red ball rolling", "--size", "64x64",
                                     "--frames", "17", "--steps", "2", "--seed", "1", "--device", "test"};
    if (offload) args.push_back("--offload");
    const PlanAndRun p = plan_and_run(args, dir, {"--dump-frames", dir.file(offload ? "off.safetensors" : "on.safetensors")});
    Run r;
    r.frames = read_text(dir.file(offload ? "off.safetensors" : "on.safetensors"));
    r.plan_denoise = p.device_plan.denoise;
    r.denoise = p.device_run.denoise;
    std::printf("  %s: denoise device peak predicted %.6f GB, measured %.6f GB (%.3fx)\n",
                offload ? "--offload" : "resident", r.plan_denoise / 1e9, r.denoise / 1e9, r.plan_denoise / r.denoise);
    return r;
  };
  const Run resident = run(false), offloaded = run(true);
  ASSERT_FALSE(resident.frames.empty());
  EXPECT_TRUE(resident.frames == offloaded.frames) << "the offloaded run's frames differ";
  EXPECT_LE(offloaded.denoise, offloaded.plan_denoise);
  const double saved_plan = resident.plan_denoise - offloaded.plan_denoise;  // the blocks outside the window
  ASSERT_GT(saved_plan, 0);
  EXPECT_GE(resident.denoise - offloaded.denoise, 0.9 * saved_plan);
}

// docs/bad_inputs.md #103: --offload on the CPU is refused before any model is read.
TEST(Offload, OnTheCpuIsOneLineExit64) {
  TempDir dir;
  RunResult r = run_t2v({"generate", "--model", test_model_dir(), "-p", "a red ball", "--offload", "-o",
                         dir.file("v.mp4")});
  EXPECT_EQ(r.code, 64) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("--offload with --device cpu"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir.file("v.mp4")));
  // batch shares the option and the check.
  const std::string list = dir.file("list.jsonl");
  write_text(list, "{\"prompt\": \"a red ball\"}\n");
  r = run_t2v({"batch", list, "--out-dir", dir.file("out"), "--model", test_model_dir(), "--offload"});
  EXPECT_EQ(r.code, 64) << r.err;
  EXPECT_NE(r.err.find("--offload with --device cpu"), std::string::npos) << r.err;
  r = run_t2v({"batch", list, "--out-dir", dir.file("out"), "--model", test_model_dir(), "--max-memory", "12Q"});
  EXPECT_EQ(r.code, 64) << r.err;
  EXPECT_NE(r.err.find("--max-memory '12Q'"), std::string::npos) << r.err;
}

// `generate --plan`: the stages, the token count and the limit, without rendering.
TEST(GeneratePlan, PrintsEachStageAndTheLimit) {
  TempDir dir;
  const std::vector<std::string> base = {"generate", "--model", test_model_dir(), "-p", "a red ball", "--size",
                                         "64x64", "--frames", "17", "-o", dir.file("never.mp4"), "--plan"};
  RunResult r = run_t2v(base);
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* word : {"encode", "denoise", "decode", "peak", "transformer tokens", "limit", "fits"})
    EXPECT_NE(r.out.find(word), std::string::npos) << word << "\n" << r.out;
  std::vector<std::string> json = base;
  json.push_back("--json");
  r = run_t2v(json);
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  // 17 frames -> 5 latent frames; 64 / (VAE 4 x patch 2) = 8 tokens a side.
  EXPECT_EQ(j["tokens"].get<int64_t>(), 5 * 8 * 8);
  EXPECT_TRUE(j["fits"].get<bool>());
  EXPECT_GT(j["limit_bytes"].get<double>(), 0);
  const double peak = j["peak_host_bytes"].get<double>();
  for (const char* stage : {"encode", "denoise", "decode"}) EXPECT_LE(j["stages"][stage]["host_bytes"].get<double>(), peak);
  EXPECT_FALSE(fs::exists(dir.file("never.mp4")));
}

// Over --max-memory: exit 69 with one line naming the figure, the largest frame count and
// the largest size that fit; both suggestions then pass the same check, and a render
// meets the same refusal before it loads anything.
TEST(GeneratePlan, RefusesWhatDoesNotFitNamingTheFramesAndSizeThatDo) {
  TempDir dir;
  auto plan = [&](const std::string& size, const std::string& frames, const std::string& limit) {
    std::vector<std::string> a = {"generate", "--model", test_model_dir(), "-p", "a red ball", "--size", size,
                                  "--frames", frames, "--plan", "--json"};
    if (!limit.empty()) a.insert(a.end(), {"--max-memory", limit});
    return run_t2v(a);
  };
  RunResult small = plan("64x64", "17", "");
  ASSERT_EQ(small.code, 0) << small.err;
  // Room for the default video with 50% to spare, not for 81 frames at 256x256.
  const auto limit = static_cast<uint64_t>(nlohmann::json::parse(small.out)["peak_host_bytes"].get<double>() * 1.5);
  const std::string limit_text = std::to_string(limit);
  RunResult big = plan("256x256", "81", limit_text);
  ASSERT_EQ(big.code, 69) << big.err;
  EXPECT_EQ(std::count(big.err.begin(), big.err.end(), '\n'), 1) << big.err;
  EXPECT_NE(big.err.find("need about"), std::string::npos) << big.err;
  EXPECT_NE(big.err.find("--max-memory"), std::string::npos) << big.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(big.err, m, std::regex(R"(--frames (\d+) at this size or --size (\d+x\d+) at)")))
      << big.err;
  const std::string frames = m[1], size = m[2];
  EXPECT_FALSE(nlohmann::json::parse(big.out)["fits"].get<bool>());
  EXPECT_EQ(nlohmann::json::parse(big.out)["largest_size"].get<std::string>(), size);
  EXPECT_EQ(plan("256x256", frames, limit_text).code, 0);
  EXPECT_EQ(plan(size, "81", limit_text).code, 0);
  // The render itself: the same refusal (its figures may differ in the last digit: the
  // process's own memory is part of them), and no output.
  RunResult run = run_t2v({"generate", "--model", test_model_dir(), "-p", "a red ball", "--size", "256x256",
                           "--frames", "81", "--max-memory", limit_text, "--seed", "1", "-q", "-o", dir.file("v.mp4")});
  EXPECT_EQ(run.code, 69) << run.err;
  EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
  EXPECT_NE(run.err.find("error: 81 frames at 256x256 need about"), std::string::npos) << run.err;
  EXPECT_EQ(run.err.substr(run.err.find("hint:")), big.err.substr(big.err.find("hint:")));
  EXPECT_FALSE(fs::exists(dir.file("v.mp4")));
}

// docs/bad_inputs.md #102: a --max-memory that is not a size is one line, exit 64.
TEST(GeneratePlan, BadMaxMemoryIsOneLineExit64) {
  for (const char* bad : {"12Q", "abc", "", "-1G", "0", "1e400", "12 G", "100", "9000000T"}) {
    SCOPED_TRACE(bad);
    RunResult r = run_t2v({"generate", "-p", "a red ball", "--plan", "--max-memory", bad});
    EXPECT_EQ(r.code, 64) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find("--max-memory"), std::string::npos) << r.err;
  }
  for (const char* good : {"12G", "800M", "1.5GiB", "2GB", "1073741824"}) {
    SCOPED_TRACE(good);
    RunResult r = run_t2v({"generate", "--model", test_model_dir(), "-p", "a red ball", "--plan", "--max-memory", good});
    EXPECT_EQ(r.code, 0) << r.err;
  }
}

}  // namespace
}  // namespace t2v::test
