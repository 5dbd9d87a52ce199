// A model folder's t2v.json supplies the generation settings the user left out.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "cli_test_util.h"
#include "video_io/mp4_reader.h"

namespace t2v::test {
namespace {

namespace fs = std::filesystem;

const std::string kTiny = std::string(T2V_TEST_DATA_DIR) + "/pipeline/tiny_wan";

std::string model_with(const TempDir& dir, const std::string& t2v_json) {
  fs::copy(kTiny, dir.file("m"), fs::copy_options::recursive);
  std::ofstream(dir.file("m/t2v.json")) << t2v_json;
  return dir.file("m");
}

nlohmann::json settings_of(const std::string& mp4, VideoInfo* info) {
  Mp4Reader r;
  r.open(mp4);
  *info = r.info();
  return nlohmann::json::parse(r.info().metadata.at("t2v"));
}

TEST(ModelDefaults, AppliedWhereTheUserGaveNothing) {
  TempDir dir;
  std::string m = model_with(dir, R"({"width": 48, "height": 32, "frames": 5, "fps": 12, "steps": 2,
                                      "cfg": 3.5, "shift": 2.0, "sampler": "euler", "negative_prompt": ""})");
  RunResult r = run_t2v({"generate", "--model", m, "-p", "a red ball", "-o", dir.file("a.mp4"), "--seed", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  VideoInfo info;
  nlohmann::json s = settings_of(dir.file("a.mp4"), &info);
  EXPECT_EQ(info.width, 48);
  EXPECT_EQ(info.height, 32);
  EXPECT_EQ(info.fps.num, 12);
  EXPECT_EQ(s["frames"], 5);
  EXPECT_EQ(s["steps"], 2);
  EXPECT_DOUBLE_EQ(double(s["cfg"]), 3.5);
  EXPECT_DOUBLE_EQ(double(s["shift"]), 2.0);
  EXPECT_EQ(s["sampler"], "euler");
  EXPECT_EQ(s["negative_prompt"], "");
}

TEST(ModelDefaults, CommandLineWins) {
  TempDir dir;
  std::string m = model_with(dir, R"({"width": 48, "height": 32, "frames": 5, "steps": 2, "cfg": 3.5})");
  RunResult r = run_t2v({"generate", "--model", m, "-p", "a red ball", "-o", dir.file("b.mp4"), "--seed", "1",
                         "--size", "32x32", "--steps", "3", "--cfg", "1.5", "-n", "blurry"});
  ASSERT_EQ(r.code, 0) << r.err;
  VideoInfo info;
  nlohmann::json s = settings_of(dir.file("b.mp4"), &info);
  EXPECT_EQ(info.width, 32);
  EXPECT_EQ(info.height, 32);
  EXPECT_EQ(s["frames"], 5);  // from the file
  EXPECT_EQ(s["steps"], 3);
  EXPECT_DOUBLE_EQ(double(s["cfg"]), 1.5);
  EXPECT_EQ(s["negative_prompt"], "blurry");
}

// A folder can ship a distilled setup: its LoRA (relative to the folder), the
// distill sampler and its timesteps; the command line overrides each.
TEST(ModelDefaults, LorasAndDistillSampler) {
  TempDir dir;
  const std::string m = model_with(dir, R"({"width": 48, "height": 32, "frames": 5, "steps": 20,
      "loras": [{"file": "loras/distill.safetensors", "strength": 0.75}],
      "sampler": "distill", "timesteps": [1000, 750, 500, 250]})");
  fs::create_directories(dir.file("m/loras"));
  fs::copy_file(std::string(T2V_TEST_DATA_DIR) + "/lora/original.safetensors", dir.file("m/loras/distill.safetensors"));
  RunResult r = run_t2v({"generate", "--model", m, "-p", "a red ball", "-o", dir.file("d.mp4"), "--seed", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("denoised 4 steps"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("4 DiT forwards"), std::string::npos) << "cfg 1: one forward per step\n" << r.err;
  VideoInfo info;
  nlohmann::json s = settings_of(dir.file("d.mp4"), &info);
  EXPECT_EQ(s["sampler"], "distill");
  EXPECT_EQ(s["timesteps"], nlohmann::json::array({1000, 750, 500, 250}));
  EXPECT_EQ(s["steps"], 4);
  EXPECT_DOUBLE_EQ(double(s["cfg"]), 1.0) << "distill without a cfg runs unguided";
  EXPECT_EQ(s["loras"][0]["file"], dir.file("m/loras/distill.safetensors"));
  EXPECT_DOUBLE_EQ(double(s["loras"][0]["strength"]), 0.75);

  // The command line overrides: another sampler drops the file's timesteps; --lora replaces its LoRAs.
  r = run_t2v({"generate", "--model", m, "-p", "a red ball", "-o", dir.file("e.mp4"), "--seed", "1", "--sampler",
               "unipc", "--steps", "2", "--lora",
               std::string(T2V_TEST_DATA_DIR) + "/lora/kohya.safetensors:0.5"});
  ASSERT_EQ(r.code, 0) << r.err;
  s = settings_of(dir.file("e.mp4"), &info);
  EXPECT_EQ(s["sampler"], "unipc");
  EXPECT_FALSE(s.contains("timesteps"));
  EXPECT_EQ(s["steps"], 2);
  EXPECT_DOUBLE_EQ(double(s["cfg"]), 5.0);
  ASSERT_EQ(s["loras"].size(), 1u);
  EXPECT_DOUBLE_EQ(double(s["loras"][0]["strength"]), 0.5);

  // --steps with the folder's distill sampler is refused, naming where distill came from.
  r = run_t2v({"generate", "--model", m, "-p", "a red ball", "-o", dir.file("f.mp4"), "--steps", "8"});
  EXPECT_EQ(r.code, 64) << r.err;
  EXPECT_NE(r.err.find("chosen by the model's t2v.json"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir.file("f.mp4")));
}

TEST(ModelDefaults, MalformedFileIsOneLineConfigError) {
  for (const char* bad : {R"({"frames": "nine"})", R"({"speed": 3})", R"([1, 2])", "{not json", R"({"steps": -4})",
                          R"({"timesteps": [500, 1000]})", R"({"timesteps": "1000,500"})", R"({"loras": ["a"]})",
                          R"({"loras": [{"file": "a.safetensors", "strength": "x"}]})", R"({"loras": [{"path": "a"}]})"}) {
    TempDir dir;
    std::string m = model_with(dir, bad);
    RunResult r = run_t2v({"generate", "--model", m, "-p", "a red ball", "-o", dir.file("c.mp4")});
    EXPECT_EQ(r.code, 78) << bad << "\n" << r.err;
    EXPECT_NE(r.err.find("t2v.json"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_FALSE(fs::exists(dir.file("c.mp4")));
  }
}

}  // namespace
}  // namespace t2v::test
