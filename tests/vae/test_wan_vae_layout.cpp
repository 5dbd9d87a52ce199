// Wan VAE configs and checkpoint layouts: config.json parsing and refusals, the
// rename table against the real Wan2.1 VAE's names and shapes (listed by
// tools/gen_vae_goldens.py from diffusers, checked there with diffusers' own
// converter) in both layouts, and rejection of wrong files by key name.
#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/vae/vae_test_util.h"

namespace t2v {
namespace {

struct RealKey {
  std::string original, diffusers;
  std::vector<int64_t> shape;
};

std::vector<RealKey> real_keys() {
  std::ifstream f(vae_test::data_dir() + "/wan2.1_vae_keys.txt");
  EXPECT_TRUE(f.good());
  std::vector<RealKey> keys;
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ss(line);
    RealKey k;
    std::string dims;
    ss >> k.original >> k.diffusers >> dims;
    std::istringstream ds(dims);
    for (std::string d; std::getline(ds, d, ',');) k.shape.push_back(std::stoll(d));
    keys.push_back(k);
  }
  return keys;
}

// A safetensors file with these names and shapes (F16) whose data section is a
// hole (ftruncate): the 254 MB real VAE costs no disk and no memory, since
// only the header is ever read.
void write_sparse_checkpoint(const std::string& path, const std::vector<std::pair<std::string, Shape>>& tensors) {
  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  uint64_t off = 0;
  for (const auto& [name, shape] : tensors) {
    const uint64_t nb = static_cast<uint64_t>(shape.numel()) * 2;
    h[name] = {{"dtype", "F16"}, {"shape", shape.vec()}, {"data_offsets", {off, off + nb}}};
    off += nb;
  }
  std::string header = h.dump();
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  bytes += header;
  const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(bytes.size() + off)), 0);
  ::close(fd);
}

std::vector<std::pair<std::string, Shape>> real_tensors(bool diffusers_names) {
  std::vector<std::pair<std::string, Shape>> out;
  for (const RealKey& k : real_keys()) out.emplace_back(diffusers_names ? k.diffusers : k.original, Shape(k.shape));
  return out;
}

// Runs `f`, expects Error(code) whose message contains every string of `needles`.
template <class F>
void expect_error(F&& f, int code, const std::vector<std::string>& needles) {
  try {
    f();
    ADD_FAILURE() << "no error thrown";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    for (const std::string& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what();
    std::printf("error as expected: %s\n", e.what());
  }
}

// ---- config ------------------------------------------------------------------------------

TEST(WanVAEConfig, PresetIsTheReleasedWan21VAE) {
  const WanVAEConfig c = WanVAEConfig::preset("wan2.1-vae");
  EXPECT_EQ(c.base_dim, 96);
  EXPECT_EQ(c.z_dim, 16);
  EXPECT_EQ(c.dim_mult, (std::vector<int>{1, 2, 4, 4}));
  EXPECT_EQ(c.num_res_blocks, 2);
  EXPECT_EQ(c.temperal_downsample, (std::vector<bool>{false, true, true}));
  EXPECT_EQ(c.temperal_upsample(), (std::vector<bool>{true, true, false}));
  EXPECT_EQ(c.temporal_factor(), 4);
  EXPECT_EQ(c.spatial_factor(), 8);
  EXPECT_EQ(c.pixel_frames(21), 81);
  EXPECT_EQ(c.latent_frames(81), 21);
  ASSERT_EQ(c.latents_mean.size(), 16u);
  EXPECT_FLOAT_EQ(c.latents_mean[0], -0.7571f);
  EXPECT_FLOAT_EQ(c.latents_std[15], 1.9160f);
  expect_error([] { WanVAEConfig::preset("wan3-vae"); }, kExitUsage, {"wan3-vae", "wan2.1-vae", "wan2.2-vae"});
}

TEST(WanVAEConfig, ReadsDiffusersConfigJson) {
  const WanVAEConfig c = WanVAEConfig::resolve(vae_test::diffusers_dir(), "");  // a folder holding config.json
  EXPECT_EQ(c.base_dim, 4);
  EXPECT_EQ(c.decoder_base_dim, 4);  // null in the file -> base_dim
  EXPECT_EQ(c.num_res_blocks, 2);
  EXPECT_EQ(c.z_dim, 16);
  EXPECT_EQ(c.temperal_downsample, (std::vector<bool>{false, true, true}));
  EXPECT_FLOAT_EQ(c.latents_std[0], 2.8184f);
}

TEST(WanVAEConfig, ResolveFindsTheConfigBesideTheWeightsOrReadsTheShapes) {
  const WanVAEConfig want = vae_test::golden_config();
  // Empty: the config.json of the diffusers vae/ folder ...
  const WanVAEConfig beside = WanVAEConfig::resolve("", vae_test::diffusers_dir());
  EXPECT_EQ(beside.base_dim, want.base_dim);
  EXPECT_EQ(beside.latents_std, want.latents_std);
  // ... or, for a single file, the sizes off its shapes.
  const WanVAEConfig shapes = WanVAEConfig::resolve("", vae_test::original_file());
  EXPECT_EQ(shapes.base_dim, want.base_dim);
  EXPECT_EQ(shapes.num_res_blocks, want.num_res_blocks);
  EXPECT_EQ(WanVAEConfig::resolve("wan2.1-vae", "").base_dim, 96);
  EXPECT_EQ(WanVAEConfig::resolve(vae_test::diffusers_dir() + "/config.json", "").base_dim, want.base_dim);
  expect_error([] { WanVAEConfig::resolve("wan3-vae", ""); }, kExitUsage, {"wan3-vae", "wan2.1-vae"});
}

// Every value is bounded (read as 64 bits before it narrows): Error(78) naming the file and key.
TEST(WanVAEConfig, ValuesAreBoundedWithFileAndKey) {
  const std::string base = R"({"_class_name": "AutoencoderKLWan")";
  expect_error([&] { WanVAEConfig::from_json_text(base + R"(, "base_dim": 4294967392})", "cfg.json"); },
               kExitConfig, {"cfg.json: base_dim = 4294967392 is outside [1, 4096]"});
  expect_error([&] { WanVAEConfig::from_json_text(base + R"(, "num_res_blocks": 1000000000})", "cfg.json"); },
               kExitConfig, {"cfg.json: num_res_blocks = 1000000000 is outside [1, 16]"});
  expect_error([&] { WanVAEConfig::from_json_text(base + R"(, "dim_mult": [1, 2, 4, 18446744073709551615]})",
                                                  "cfg.json"); },
               kExitConfig, {"cfg.json: dim_mult[3] = 18446744073709551615 is outside [1, 64]"});
  expect_error([&] { WanVAEConfig::from_json_text(base + R"(, "dim_mult": [1, 2, 2, 2, 2, 2, 2, 2, 2, 2]})",
                                                  "cfg.json"); },
               kExitConfig, {"cfg.json: field 'dim_mult' must be a list of at most 8 integers"});
  expect_error([&] { WanVAEConfig::from_json_text(base + R"(, "z_dim": -16})", "cfg.json"); }, kExitConfig,
               {"cfg.json: z_dim = -16 is outside [1, 1024]"});
}

TEST(WanVAEConfig, RefusesWhatItCannotRun) {
  const std::string base = R"({"_class_name": "AutoencoderKLWan", "base_dim": 8)";
  expect_error([&] { WanVAEConfig::from_json_text(base + R"(, "attn_scales": [0.5]})", "cfg.json"); }, kExitConfig,
               {"cfg.json", "attn_scales"});
  // A Wan2.2 (residual) config whose pixel channels do not fit its patch size.
  expect_error([&] { WanVAEConfig::from_json_text(base + R"(, "is_residual": true, "z_dim": 48, "patch_size": 2})",
                                                  "cfg.json"); },
               kExitConfig, {"cfg.json", "patch_size 2"});
  expect_error([&] { WanVAEConfig::from_json_text(base + R"(, "scale_factor_spatial": 16})", "cfg.json"); },
               kExitConfig, {"cfg.json", "scale_factor_spatial 16"});
  expect_error([&] { WanVAEConfig::from_json_text(base + R"(, "z_dim": "sixteen"})", "cfg.json"); }, kExitConfig,
               {"z_dim", "wrong type"});
  expect_error([&] { WanVAEConfig::from_json_text(base + R"(, "z_dim": 8})", "cfg.json"); }, kExitConfig,
               {"latents_mean"});
  expect_error([&] { WanVAEConfig::from_json_text(base + R"(, "temperal_downsample": [true]})", "cfg.json"); },
               kExitConfig, {"temperal_downsample"});
  expect_error([&] { WanVAEConfig::from_json_text("{not json", "cfg.json"); }, kExitConfig, {"cfg.json", "JSON"});
  expect_error([&] { WanVAEConfig::from_json_text(R"({"_class_name": "AutoencoderKL"})", "cfg.json"); }, kExitConfig,
               {"AutoencoderKL"});
}

// ---- the rename table against the real Wan2.1 VAE -----------------------------------------

TEST(WanVAELayout, KeyTableIsTheRealWan21VAE) {
  std::map<std::string, std::pair<std::string, Shape>> want;
  for (const RealKey& k : real_keys()) want[k.original] = {k.diffusers, Shape(k.shape)};
  ASSERT_EQ(want.size(), 194u);
  const std::vector<WanVAEKeyEntry> table = wan_vae_key_table(WanVAEConfig::preset("wan2.1-vae"));
  EXPECT_EQ(table.size(), want.size());
  int64_t params = 0;
  for (const WanVAEKeyEntry& e : table) {
    params += e.shape.numel();
    auto it = want.find(e.original);
    if (it == want.end()) {
      ADD_FAILURE() << "not a Wan2.1 VAE key: " << e.original;
      continue;
    }
    EXPECT_EQ(e.diffusers, it->second.first) << e.original;
    EXPECT_EQ(e.shape, it->second.second) << e.original;
  }
  EXPECT_EQ(params, 126892531);  // docs/wan.md §3.1: ~127M parameters
  // The decode-only table is the decoder half of the same table.
  size_t decoder_keys = 0;
  for (const WanVAEKeyEntry& e : table)
    if (e.original.rfind("encoder.", 0) != 0 && e.original.rfind("conv1.", 0) != 0) ++decoder_keys;
  EXPECT_EQ(wan_vae_key_table(WanVAEConfig::preset("wan2.1-vae"), {false, true}).size(), decoder_keys);
}

// A stray tensor is named (a warning; an error with strict); the half a decode-only
// load leaves out is not.
TEST(WanVAELayout, UnusedKeysAreReportedButNotTheUnloadedHalf) {
  vae_test::TempDir dir;
  const TensorStore src = TensorStore::open(vae_test::diffusers_dir());
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const std::string& n : src.names()) tensors.emplace_back(n, src.get(n));
  const std::string path = dir / "extra.safetensors";
  tensors.emplace_back("decoder.extra.weight", Tensor::zeros(Shape{2}, DType::F32));
  save_safetensors(path, tensors);
  const TensorStore store = TensorStore::open(path);
  EXPECT_EQ(vae_test::check_weights(store, vae_test::golden_config(), {false, true}).unused_keys,
            std::vector<std::string>{"decoder.extra.weight"});
  WanVAELoadOptions strict;
  strict.strict = true;
  strict.parts = {false, true};
  expect_error([&] { WanVAE::load(store, vae_test::golden_config(), strict); }, kExitDataErr,
               {"1 unexpected tensor the model does not use: decoder.extra.weight"});
}

class WanVAERealSize : public ::testing::TestWithParam<bool> {};  // param: diffusers names

TEST_P(WanVAERealSize, RealCheckpointLayoutIsAccepted) {
  vae_test::TempDir dir;
  const std::string path = dir / "wan_2.1_vae.safetensors";
  write_sparse_checkpoint(path, real_tensors(GetParam()));
  const TensorStore store = TensorStore::open(path);
  EXPECT_STREQ(wan_vae_layout_name(detect_wan_vae_layout(store, nullptr)), GetParam() ? "diffusers" : "original");
  // The dry run binds every tensor of the real file, by its name in this layout, and nothing else.
  const WeightReport r = vae_test::check_weights(store, WanVAEConfig::preset("wan2.1-vae"));
  EXPECT_EQ(r.layout, GetParam() ? "diffusers" : "original");
  EXPECT_EQ(r.num_tensors, 194);
  EXPECT_EQ(r.num_params, 126892531);
  EXPECT_TRUE(r.unused_keys.empty());
  // Decode only: the encoder's tensors are neither required nor reported unused.
  EXPECT_TRUE(vae_test::check_weights(store, WanVAEConfig::preset("wan2.1-vae"), {false, true}).unused_keys.empty());
  // The golden model's config does not fit the real file (decoder only, so the first misfit is decoder.conv1).
  expect_error([&] { vae_test::check_weights(store, vae_test::golden_config(), {false, true}); }, kExitDataErr,
               {GetParam() ? "decoder.conv_in.weight (canonical decoder.conv1.weight) is [384, 16, 3, 3, 3], config "
                             "expects [16, 16, 3, 3, 3]"
                           : "decoder.conv1.weight is [384, 16, 3, 3, 3], config expects [16, 16, 3, 3, 3]",
                GetParam() ? "(Wan VAE, diffusers layout)" : "(Wan VAE, original layout)"});
}

TEST_P(WanVAERealSize, WrongShapeIsRejectedByKey) {
  vae_test::TempDir dir;
  auto tensors = real_tensors(GetParam());
  const std::string key =
      GetParam() ? "decoder.up_blocks.0.upsamplers.0.time_conv.weight" : "decoder.upsamples.3.time_conv.weight";
  const std::string named = GetParam() ? key + " (canonical decoder.upsamples.3.time_conv.weight)" : key;
  bool found = false;
  for (auto& [name, shape] : tensors)
    if (name == key) {
      shape = Shape{384, 384, 3, 1, 1};  // a downsample3d time conv where an upsample3d one belongs
      found = true;
    }
  ASSERT_TRUE(found);
  const std::string path = dir / "bad.safetensors";
  write_sparse_checkpoint(path, tensors);
  const TensorStore store = TensorStore::open(path);
  expect_error([&] { vae_test::check_weights(store, WanVAEConfig::preset("wan2.1-vae")); }, kExitDataErr,
               {named + " is [384, 384, 3, 1, 1], config expects [768, 384, 3, 1, 1]", "bad.safetensors"});
}

TEST_P(WanVAERealSize, MissingKeyIsRejectedByKey) {
  vae_test::TempDir dir;
  auto tensors = real_tensors(GetParam());
  const std::string key = GetParam() ? "decoder.up_blocks.1.resnets.0.conv_shortcut.bias" : "decoder.upsamples.4.shortcut.bias";
  const size_t before = tensors.size();
  std::erase_if(tensors, [&](const auto& t) { return t.first == key; });
  ASSERT_EQ(tensors.size(), before - 1);
  const std::string path = dir / "incomplete.safetensors";
  write_sparse_checkpoint(path, tensors);
  const TensorStore store = TensorStore::open(path);
  expect_error([&] { vae_test::check_weights(store, WanVAEConfig::preset("wan2.1-vae")); }, kExitDataErr,
               {"missing 1 tensor: " + key});
  // A decode-only check does not need the encoder: drop an encoder key instead.
  auto enc_only_missing = real_tensors(GetParam());
  std::erase_if(enc_only_missing, [&](const auto& t) { return t.first.rfind("encoder.", 0) == 0; });
  write_sparse_checkpoint(path, enc_only_missing);
  const TensorStore decoder_only = TensorStore::open(path);
  EXPECT_NO_THROW(vae_test::check_weights(decoder_only, WanVAEConfig::preset("wan2.1-vae"), {false, true}));
  EXPECT_THROW(vae_test::check_weights(decoder_only, WanVAEConfig::preset("wan2.1-vae")), Error);
}

TEST_P(WanVAERealSize, ConfigIsDetectedFromShapes) {
  vae_test::TempDir dir;
  const std::string path = dir / "wan_2.1_vae.safetensors";
  write_sparse_checkpoint(path, real_tensors(GetParam()));
  const WanVAEConfig c = WanVAEConfig::from_weights(TensorStore::open(path));
  EXPECT_EQ(c.base_dim, 96);
  EXPECT_EQ(c.decoder_base_dim, 96);
  EXPECT_EQ(c.z_dim, 16);
  EXPECT_EQ(c.num_res_blocks, 2);
}

INSTANTIATE_TEST_SUITE_P(Layouts, WanVAERealSize, ::testing::Bool(),
                         [](const auto& p) { return std::string(p.param ? "diffusers" : "original"); });

TEST(WanVAELayout, GoldenConfigIsDetectedFromShapes) {
  for (const std::string& path : {vae_test::original_file(), vae_test::diffusers_dir()}) {
    const WanVAEConfig c = WanVAEConfig::from_weights(TensorStore::open(path));
    const WanVAEConfig want = vae_test::golden_config();
    EXPECT_EQ(c.base_dim, want.base_dim) << path;
    EXPECT_EQ(c.decoder_base_dim, want.decoder_base_dim) << path;
    EXPECT_EQ(c.z_dim, want.z_dim) << path;
    EXPECT_EQ(c.num_res_blocks, want.num_res_blocks) << path;
    EXPECT_NO_THROW(vae_test::check_weights(TensorStore::open(path), c)) << path;
  }
}

TEST(WanVAELayout, NotAVAEIsRejected) {
  vae_test::TempDir dir;
  const std::string path = dir / "dit.safetensors";
  write_sparse_checkpoint(path, {{"blocks.0.self_attn.q.weight", Shape{8, 8}}});
  const TensorStore store = TensorStore::open(path);
  expect_error([&] { detect_wan_vae_layout(store, nullptr); }, kExitDataErr, {"not a Wan VAE", "dit.safetensors"});
}

TEST(WanVAELayout, ComfyPrefixIsStripped) {
  vae_test::TempDir dir;
  const TensorStore src = TensorStore::open(vae_test::original_file());
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const std::string& n : src.names()) tensors.emplace_back("first_stage_model." + n, src.get(n));
  const std::string path = dir / "prefixed.safetensors";
  save_safetensors(path, tensors);
  std::string prefix;
  const TensorStore store = TensorStore::open(path);
  EXPECT_EQ(detect_wan_vae_layout(store, &prefix), WanVAELayout::Original);
  EXPECT_EQ(prefix, "first_stage_model.");
  const WanVAE vae = WanVAE::load(store, vae_test::golden_config());
  const Tensor z = vae_test::golden("decode_t1.latents");
  // measured 3.0e-6, as unprefixed (was 1e-4)
  EXPECT_LE(vae_test::rel_err(vae.decode(z), vae_test::golden("decode_t1.sample")), 2e-5);
}

TEST(WanVAELayout, SmallFileWithWrongTensorIsRejectedOnLoad) {
  vae_test::TempDir dir;
  const TensorStore src = TensorStore::open(vae_test::original_file());
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const std::string& n : src.names()) {
    if (n == "decoder.middle.1.proj.bias") continue;  // dropped
    Tensor t = src.get(n);
    if (n == "decoder.head.0.gamma") t = Tensor::zeros(Shape{5, 1, 1, 1}, DType::F32);
    tensors.emplace_back(n, t);
  }
  const std::string path = dir / "broken.safetensors";
  save_safetensors(path, tensors);
  expect_error([&] { WanVAE::load(path, vae_test::golden_config()); }, kExitDataErr,
               {"broken.safetensors", "(Wan VAE, original layout)", "missing 1 tensor: decoder.middle.1.proj.bias",
                "decoder.head.0.gamma is [5, 1, 1, 1], config expects [4, 1, 1, 1]"});
}

}  // namespace
}  // namespace t2v
