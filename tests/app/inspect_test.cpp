// `t2v inspect` on valid safetensors files that are not whole models (a shard, a LoRA,
// a partial checkpoint, unrelated tensors): listed like any file, one "not a complete
// model: ..." line naming why, exit 0. Complete models say they load; corrupt files
// stay exit 65 (cli_test.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "app/inspect.h"
#include "cli_test_util.h"
#include "core/safetensors.h"

namespace t2v::test {
namespace {

namespace fs = std::filesystem;

const std::string kData = T2V_TEST_DATA_DIR;

int count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++n;
  return n;
}

// Runs `t2v inspect path`, expects exit 0, nothing on stderr, the listing, and exactly one
// status line containing `status`; returns stdout.
std::string inspect_ok(const std::string& path, const std::string& status) {
  RunResult r = run_t2v({"inspect", path});
  EXPECT_EQ(r.code, 0) << path << "\n" << r.err;
  EXPECT_EQ(r.err, "") << path;
  EXPECT_NE(r.out.find("  tensors     "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  parameters  "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  bytes       "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  dtypes      "), std::string::npos) << r.out;
  EXPECT_EQ(count(r.out, "  status      "), 1) << r.out;
  const size_t at = r.out.find("  status      ");
  const std::string line = at == std::string::npos ? "" : r.out.substr(at, r.out.find('\n', at) - at);
  EXPECT_NE(line.find(status), std::string::npos) << "status line: " << line;
  return r.out;
}

// The tensors of a file, to write variations of it.
std::vector<std::pair<std::string, Tensor>> tensors_of(const std::string& path) {
  SafetensorsFile f(path);
  std::vector<std::pair<std::string, Tensor>> out;
  for (const TensorInfo& ti : f.tensors()) out.emplace_back(ti.name, f.get(ti.name));
  return out;
}

TEST(Inspect, AShardIsListedAndNamedAsAShard) {
  const std::string dir = kData + "/diffusion/tiny_dit/diffusers_sharded/";
  const std::string out = inspect_ok(dir + "diffusion_pytorch_model-00001-of-00002.safetensors",
                                     "not a complete model: shard 1 of 2 of a sharded checkpoint");
  EXPECT_NE(out.find("  tensors     34\n"), std::string::npos) << out;
  EXPECT_NE(out.find("blocks.0.attn1.to_q.weight"), std::string::npos) << out;
  inspect_ok(dir + "diffusion_pytorch_model-00002-of-00002.safetensors", "shard 2 of 2");
  // The whole sharded model, through its index, is complete.
  inspect_ok(dir + "diffusion_pytorch_model.safetensors.index.json", "Wan DiT (diffusers layout");
}

TEST(Inspect, ALoraIsListedAndNamedAsALora) {
  TempDir dir;
  const std::string path = dir.file("wan_lora.safetensors");
  save_safetensors(path,
                   {{"diffusion_model.blocks.0.self_attn.q.lora_A.weight", Tensor::zeros(Shape{4, 48}, DType::F32)},
                    {"diffusion_model.blocks.0.self_attn.q.lora_B.weight", Tensor::zeros(Shape{48, 4}, DType::F32)},
                    {"diffusion_model.blocks.0.self_attn.q.alpha", Tensor::full(Shape{}, 4.0f)}});
  const std::string out = inspect_ok(path, "not a complete model: a LoRA adapter (3 of 3 tensors");
  EXPECT_NE(out.find("  parameters  385 "), std::string::npos) << out;  // 4*48 + 48*4 + 1
}

// The case that used to end in exit 65 "the model size cannot be detected".
TEST(Inspect, APartialCheckpointSaysWhatIsMissing) {
  TempDir dir;
  auto all = tensors_of(kData + "/diffusion/tiny_dit/original.safetensors");
  auto without = [&](const std::string& key) {
    auto t = all;
    t.erase(std::remove_if(t.begin(), t.end(), [&](const auto& p) { return p.first == key; }), t.end());
    return t;
  };
  save_safetensors(dir.file("no_patch.safetensors"), without("patch_embedding.weight"));
  inspect_ok(dir.file("no_patch.safetensors"), "not a complete model: ");
  const std::string out = inspect_ok(dir.file("no_patch.safetensors"), "patch_embedding.weight");
  EXPECT_NE(out.find("blocks.0.self_attn.q.weight"), std::string::npos) << "the tensors are still listed:\n" << out;

  // Sizes readable, one block tensor gone: the loader's own check names it.
  fs::create_directories(dir.file("partial"));
  fs::copy_file(kData + "/diffusion/tiny_dit/config_original.json", dir.file("partial/config.json"));
  save_safetensors(dir.file("partial/model.safetensors"), without("blocks.1.ffn.2.weight"));
  inspect_ok(dir.file("partial/model.safetensors"), "not a complete model: ");
  const std::string partial = inspect_ok(dir.file("partial/model.safetensors"), "blocks.1.ffn.2.weight");
  EXPECT_EQ(count(partial, "\n"), count(inspect_ok(kData + "/diffusion/tiny_dit/original.safetensors", ""), "\n"))
      << "the status is one line:\n"
      << partial;
}

TEST(Inspect, UnrelatedTensorsAndEmptyFiles) {
  inspect_ok(kData + "/core/python_fixture.safetensors",
             "not a complete model: the tensor names match no Wan DiT, Wan VAE or umT5 encoder layout");
  TempDir dir;
  save_safetensors(dir.file("empty.safetensors"), {});
  inspect_ok(dir.file("empty.safetensors"), "not a complete model: the file holds no tensors");
}

TEST(Inspect, CompleteModelsSayTheyLoad) {
  inspect_ok(kData + "/diffusion/tiny_dit/diffusers", "Wan DiT (diffusers layout");
  inspect_ok(kData + "/vae/wan_vae_original.safetensors", "Wan VAE, loads as it is");
  inspect_ok(kData + "/vae/diffusers", "Wan VAE, loads as it is");
  inspect_ok(kData + "/text_encoder/text_encoder/model.safetensors",
             "umT5 encoder (3 layers, d_model 64), loads as it is");
  // All tensors there, but the head count of a 48-wide DiT is not in any shape.
  inspect_ok(kData + "/diffusion/tiny_dit/comfy.safetensors", "needs a config: ");
}

TEST(Inspect, JsonSaysCompleteAndStatus) {
  const std::string shard =
      kData + "/diffusion/tiny_dit/diffusers_sharded/diffusion_pytorch_model-00001-of-00002.safetensors";
  RunResult r = run_t2v({"inspect", "--json", shard});
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["complete"], false);
  EXPECT_NE(j["status"].get<std::string>().find("not a complete model: shard 1 of 2"), std::string::npos) << j;
  EXPECT_EQ(j["tensors"], 34);
  EXPECT_GT(j["parameters"].get<int64_t>(), 0);
  r = run_t2v({"inspect", "--json", kData + "/vae/diffusers"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["complete"], true);
}

// The model block of a Wan DiT: layout, preset, dims, parameters (marker keys not
// counted) and dtypes, with the head count it cannot know said so.
TEST(Inspect, DescribesAWanDit) {
  const TensorStore original = TensorStore::open(kData + "/diffusion/tiny_dit/original.safetensors");
  int64_t params = 0;
  for (const std::string& n : original.names()) params += original.info(n).shape.numel();
  const std::optional<std::string> text = describe_wan_dit(original);
  ASSERT_TRUE(text.has_value());
  std::printf("%s", text->c_str());
  EXPECT_NE(text->find("Wan2.1 DiT, original layout\n"), std::string::npos) << *text;
  EXPECT_NE(text->find("preset: none (custom dims)"), std::string::npos) << *text;
  EXPECT_NE(text->find("dim 48, ffn 64, heads unknown (needs config.json), layers 2"), std::string::npos) << *text;
  EXPECT_NE(text->find(fmt::format("parameters: {} ", params)), std::string::npos) << *text;

  // Comfy's prefix and its scaled-fp8 marker (not a parameter).
  TempDir dir;
  auto tensors = tensors_of(kData + "/diffusion/tiny_dit/comfy.safetensors");
  tensors.emplace_back("model.diffusion_model.scaled_fp8", Tensor::zeros(Shape{2}, DType::F32));
  save_safetensors(dir.file("fp8.safetensors"), tensors);
  const std::optional<std::string> fp8 = describe_wan_dit(TensorStore::open(dir.file("fp8.safetensors")));
  ASSERT_TRUE(fp8.has_value());
  EXPECT_NE(fp8->find("comfy layout (prefix model.diffusion_model. stripped)"), std::string::npos) << *fp8;
  EXPECT_NE(fp8->find("(scaled fp8: weights x scale_weight)"), std::string::npos) << *fp8;
  EXPECT_NE(fp8->find(fmt::format("parameters: {} ", params)), std::string::npos) << *fp8;

  // Wan2.2: the kind from the channels (48 in and out: TI2V; noise + mask + image latent in: I2V).
  const std::optional<std::string> ti2v =
      describe_wan_dit(TensorStore::open(kData + "/diffusion22/tiny_ti2v/original.safetensors"));
  ASSERT_TRUE(ti2v.has_value());
  EXPECT_NE(ti2v->find("Wan2.2 TI2V DiT, original layout\n"), std::string::npos) << *ti2v;
  EXPECT_NE(ti2v->find("in 48 / out 48"), std::string::npos) << *ti2v;
  const std::optional<std::string> i2v =
      describe_wan_dit(TensorStore::open(kData + "/pipeline22/a14b_files/i2v_high.safetensors"));
  ASSERT_TRUE(i2v.has_value());
  EXPECT_NE(i2v->find("Wan2.2 I2V DiT"), std::string::npos) << *i2v;

  EXPECT_FALSE(describe_wan_dit(TensorStore::open(kData + "/vae/wan_vae_original.safetensors")).has_value());
}

}  // namespace
TEST(Inspect, DescribesAGgufDit) {
  // The mixed ComfyUI-GGUF file: no hyper-parameters, heads from dim / 128, quant types per tensor.
  const std::optional<std::string> text =
      describe_wan_dit(TensorStore::open(kData + "/diffusion/gguf/wan_tiny256_mixed.gguf"));
  ASSERT_TRUE(text.has_value());
  EXPECT_NE(text->find("(GGUF, ComfyUI-GGUF convention)"), std::string::npos) << *text;
  EXPECT_NE(text->find("Q4_K x7"), std::string::npos) << *text;
  EXPECT_NE(text->find("heads 2 x 128"), std::string::npos) << *text;
}

}  // namespace t2v::test
