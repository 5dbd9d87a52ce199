// Real-size checkpoint layouts without real weights: sparse .safetensors files
// whose headers list the tensors of Wan2.1 T2V-1.3B / 14B exactly as docs/wan.md
// §2.11 tabulates them (the data section is a hole made by ftruncate, never
// read: a dry-run load looks at headers only). Also layout and preset
// detection, missing / misshaped / extra keys, dtypes, config.json parsing and
// its bounds.
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/safetensors.h"
#include "diffusion/wan_dit_config.h"
#include "diffusion/wan_dit_weights.h"
#include "dit_test_util.h"

namespace t2v {
namespace {

namespace fs = std::filesystem;
using test::dit_data;

struct Entry {
  std::string name;
  std::vector<int64_t> shape;
  std::string dtype;
};

// docs/wan.md §2.11, transcribed: (original name, diffusers name, shape) with
// D = dim, F = ffn_dim, for `layers` blocks.
struct SpecRow {
  std::string original, diffusers;
  std::vector<int64_t> shape;
};
std::vector<SpecRow> spec_table(int64_t D, int64_t F, int layers) {
  std::vector<SpecRow> t = {
      {"patch_embedding.weight", "patch_embedding.weight", {D, 16, 1, 2, 2}},
      {"patch_embedding.bias", "patch_embedding.bias", {D}},
      {"text_embedding.0.weight", "condition_embedder.text_embedder.linear_1.weight", {D, 4096}},
      {"text_embedding.0.bias", "condition_embedder.text_embedder.linear_1.bias", {D}},
      {"text_embedding.2.weight", "condition_embedder.text_embedder.linear_2.weight", {D, D}},
      {"text_embedding.2.bias", "condition_embedder.text_embedder.linear_2.bias", {D}},
      {"time_embedding.0.weight", "condition_embedder.time_embedder.linear_1.weight", {D, 256}},
      {"time_embedding.0.bias", "condition_embedder.time_embedder.linear_1.bias", {D}},
      {"time_embedding.2.weight", "condition_embedder.time_embedder.linear_2.weight", {D, D}},
      {"time_embedding.2.bias", "condition_embedder.time_embedder.linear_2.bias", {D}},
      {"time_projection.1.weight", "condition_embedder.time_proj.weight", {6 * D, D}},
      {"time_projection.1.bias", "condition_embedder.time_proj.bias", {6 * D}},
      {"head.modulation", "scale_shift_table", {1, 2, D}},
      {"head.head.weight", "proj_out.weight", {64, D}},
      {"head.head.bias", "proj_out.bias", {64}},
  };
  for (int i = 0; i < layers; ++i) {
    const std::string o = "blocks." + std::to_string(i) + ".", d = o;
    t.push_back({o + "modulation", d + "scale_shift_table", {1, 6, D}});
    for (const auto& [oa, da] : {std::pair{"self_attn", "attn1"}, std::pair{"cross_attn", "attn2"}}) {
      for (const auto& [op, dp] : {std::pair{"q", "to_q"}, std::pair{"k", "to_k"}, std::pair{"v", "to_v"},
                                   std::pair{"o", "to_out.0"}}) {
        t.push_back({o + oa + "." + op + ".weight", d + da + "." + dp + ".weight", {D, D}});
        t.push_back({o + oa + "." + op + ".bias", d + da + "." + dp + ".bias", {D}});
      }
      t.push_back({o + oa + ".norm_q.weight", d + da + ".norm_q.weight", {D}});
      t.push_back({o + oa + ".norm_k.weight", d + da + ".norm_k.weight", {D}});
    }
    t.push_back({o + "norm3.weight", d + "norm2.weight", {D}});
    t.push_back({o + "norm3.bias", d + "norm2.bias", {D}});
    t.push_back({o + "ffn.0.weight", d + "ffn.net.0.proj.weight", {F, D}});
    t.push_back({o + "ffn.0.bias", d + "ffn.net.0.proj.bias", {F}});
    t.push_back({o + "ffn.2.weight", d + "ffn.net.2.weight", {D, F}});
    t.push_back({o + "ffn.2.bias", d + "ffn.net.2.bias", {D}});
  }
  return t;
}

size_t dtype_bytes(const std::string& dt) { return dt == "F32" ? 4 : dt == "F8_E4M3" ? 1 : dt == "I64" ? 8 : 2; }

// Writes a valid safetensors file whose data section is a hole (sparse file).
void write_sparse_safetensors(const std::string& path, const std::vector<Entry>& entries) {
  nlohmann::ordered_json header;
  uint64_t offset = 0;
  for (const auto& e : entries) {
    int64_t n = 1;
    for (int64_t s : e.shape) n *= s;
    const uint64_t bytes = static_cast<uint64_t>(n) * dtype_bytes(e.dtype);
    header[e.name] = {{"dtype", e.dtype}, {"shape", e.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string h = header.dump();
  while (h.size() % 8) h += ' ';
  const uint64_t n = h.size();
  const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, &n, 8), 8);
  ASSERT_EQ(::write(fd, h.data(), h.size()), static_cast<ssize_t>(h.size()));
  ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(8 + n + offset)), 0);
  ::close(fd);
}

class DitLayouts : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("t2v_dit_layouts_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A sparse checkpoint of the spec table in `layout`; scaled fp8 adds scale_weight per 2-D block weight.
  std::string write_model(const std::string& file, int64_t D, int64_t F, int layers, WanDiTLayout layout,
                          const std::string& dtype, bool scaled_fp8 = false,
                          const std::set<std::string>& drop = {}, std::vector<Entry> extra = {}) {
    std::vector<Entry> entries;
    for (const auto& row : spec_table(D, F, layers)) {
      if (drop.count(row.original)) continue;
      std::string name = layout == WanDiTLayout::Diffusers ? row.diffusers : row.original;
      if (layout == WanDiTLayout::Comfy) name = "model.diffusion_model." + name;
      const bool quantized = scaled_fp8 && row.original.rfind("blocks.", 0) == 0 && row.shape.size() == 2;
      entries.push_back({name, row.shape, quantized ? "F8_E4M3" : dtype});
      if (quantized) entries.push_back({name.substr(0, name.size() - 6) + "scale_weight", {}, "F32"});
    }
    if (scaled_fp8) entries.push_back({"scaled_fp8", {0}, "F8_E4M3"});
    for (auto& e : extra) entries.push_back(std::move(e));
    const std::string path = (dir_ / file).string();
    write_sparse_safetensors(path, entries);
    return path;
  }

  // The header-only check: the loader's dry run.
  static WeightReport check(const TensorStore& store, const WanDiTConfig& cfg) {
    WeightReport report;
    WanDiTLoadOptions o;
    o.dry_run = true;
    o.report = &report;
    const WanDiTWeights w = load_wan_dit(store, cfg, o);
    EXPECT_FALSE(w.blocks.at(0).self_attn.q.weight.defined()) << "a dry run reads no tensor";
    return report;
  }

  std::string error_of(const TensorStore& store, const WanDiTConfig& cfg) {
    try {
      check(store, cfg);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), kExitDataErr);
      return e.what();
    }
    return "";
  }

  fs::path dir_;
};

TEST_F(DitLayouts, BinderExpectsExactlyTheSpecTensors) {
  for (const auto& [preset, D, F, layers] :
       {std::tuple{"wan2.1-t2v-1.3b", 1536, 8960, 30}, std::tuple{"wan2.1-t2v-14b", 5120, 13824, 40}}) {
    std::set<std::pair<std::string, std::string>> spec, bound;
    for (const auto& r : spec_table(D, F, layers)) spec.insert({r.original, Shape(r.shape).str()});
    for (const auto& p : wan_dit_weight_list(WanDiTConfig::preset(preset))) bound.insert({p.key, p.shape.str()});
    EXPECT_EQ(spec, bound) << preset;
    for (const auto& r : spec_table(D, F, 1)) EXPECT_EQ(wan_dit_diffusers_key(r.original), r.diffusers);
  }
  EXPECT_EQ(wan_dit_param_count(WanDiTConfig::preset("wan2.1-t2v-1.3b")), 1418996800);
  EXPECT_EQ(wan_dit_param_count(WanDiTConfig::preset("wan2.1-t2v-14b")), 14288491584);
}

TEST_F(DitLayouts, RealSize13BInEveryLayout) {
  const WanDiTConfig cfg = WanDiTConfig::preset("wan2.1-t2v-1.3b");
  for (const auto& [layout, dtype] : {std::pair{WanDiTLayout::Original, "F32"}, std::pair{WanDiTLayout::Comfy, "F16"},
                                      std::pair{WanDiTLayout::Diffusers, "BF16"}}) {
    const std::string path = write_model(std::string("m13_") + wan_dit_layout_name(layout) + ".safetensors", 1536,
                                         8960, 30, layout, dtype);
    const TensorStore store = TensorStore::open(path);
    EXPECT_EQ(detect_wan_dit_layout(store), layout);
    const WeightReport report = check(store, cfg);
    EXPECT_EQ(report.layout, wan_dit_layout_name(layout));
    EXPECT_TRUE(report.unused_keys.empty());
    EXPECT_EQ(report.num_params, 1418996800);
    const WanDiTConfig detected = WanDiTConfig::from_weights(store);
    EXPECT_EQ(detected.preset_name, "wan2.1-t2v-1.3b") << wan_dit_layout_name(layout);
    EXPECT_EQ(detected.num_heads, 12);
    EXPECT_EQ(detected.num_layers, 30);
    const WanDiTShapes shapes = detect_wan_dit_shapes(store);
    EXPECT_EQ(shapes.layout, layout);
    EXPECT_TRUE(shapes.heads_known);
    EXPECT_EQ(shapes.cfg.preset_name, "wan2.1-t2v-1.3b");
  }
}

TEST_F(DitLayouts, RealSize14BScaledFp8AndWrongShapeHint) {
  const std::string path =
      write_model("m14_fp8.safetensors", 5120, 13824, 40, WanDiTLayout::Comfy, "BF16", /*scaled_fp8=*/true);
  const TensorStore store = TensorStore::open(path);
  const WeightReport report = check(store, WanDiTConfig::preset("wan2.1-t2v-14b"));
  EXPECT_TRUE(report.unused_keys.empty());  // scale_weight and the marker are not "unused"
  EXPECT_EQ(report.num_params, 14288491584);
  const WanDiTConfig detected = WanDiTConfig::from_weights(store);
  EXPECT_EQ(detected.preset_name, "wan2.1-t2v-14b");
  EXPECT_EQ(detected.num_heads, 40);
  EXPECT_EQ(detect_wan_dit_shapes(store).layout, WanDiTLayout::Comfy);

  // 14B weights with the 1.3B config: named key, both shapes, the likely model.
  const std::string msg = error_of(store, WanDiTConfig::preset("wan2.1-t2v-1.3b"));
  std::printf("  error: %s\n", msg.c_str());
  EXPECT_NE(msg.find("model.diffusion_model.blocks.0.self_attn.q.weight (canonical blocks.0.self_attn.q.weight) is "
                     "[5120, 5120], config expects [1536, 1536]: this looks like the wan2.1-t2v-14b model"),
            std::string::npos);
  EXPECT_NE(msg.find("comfy layout"), std::string::npos);
  EXPECT_NE(msg.find("--config wan2.1-t2v-14b"), std::string::npos);
}

// 14B diffusers layout in two BF16 shards with an index json, as the Wan-AI
// -Diffusers repositories ship it.
TEST_F(DitLayouts, RealSize14BDiffusersShards) {
  std::vector<Entry> shard[2];
  nlohmann::json index;
  const auto table = spec_table(5120, 13824, 40);
  for (size_t i = 0; i < table.size(); ++i) {
    const int s = i < table.size() / 2 ? 0 : 1;
    shard[s].push_back({table[i].diffusers, table[i].shape, "BF16"});
    index["weight_map"][table[i].diffusers] = fmt::format("diffusion_pytorch_model-0000{}-of-00002.safetensors", s + 1);
  }
  const fs::path folder = dir_ / "transformer";
  fs::create_directories(folder);
  for (int s = 0; s < 2; ++s)
    write_sparse_safetensors(
        (folder / fmt::format("diffusion_pytorch_model-0000{}-of-00002.safetensors", s + 1)).string(), shard[s]);
  std::ofstream(folder / "diffusion_pytorch_model.safetensors.index.json") << index.dump();
  const TensorStore store = TensorStore::open(folder.string());
  EXPECT_EQ(store.files().size(), 2u);
  const WeightReport report = check(store, WanDiTConfig::preset("wan2.1-t2v-14b"));
  EXPECT_EQ(report.layout, "diffusers");
  EXPECT_EQ(report.num_params, 14288491584);
  EXPECT_TRUE(report.unused_keys.empty());
  EXPECT_EQ(WanDiTConfig::from_weights(store).preset_name, "wan2.1-t2v-14b");
}

TEST_F(DitLayouts, WrongShapeHintNames13BForDiffusers) {
  const std::string path = write_model("m13_d.safetensors", 1536, 8960, 30, WanDiTLayout::Diffusers, "BF16");
  const std::string msg = error_of(TensorStore::open(path), WanDiTConfig::preset("wan2.1-t2v-14b"));
  EXPECT_NE(msg.find("blocks.0.attn1.to_q.weight (canonical blocks.0.self_attn.q.weight) is [1536, 1536], config "
                     "expects [5120, 5120]: this looks like the wan2.1-t2v-1.3b model"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("diffusers layout"), std::string::npos);
}

TEST_F(DitLayouts, MissingKeysListedWithLayout) {
  const WanDiTConfig cfg = WanDiTConfig::preset("wan2.1-t2v-1.3b");
  {
    const std::string path = write_model("miss_o.safetensors", 1536, 8960, 30, WanDiTLayout::Original, "BF16", false,
                                         {"head.modulation", "blocks.7.norm3.bias"});
    const std::string msg = error_of(TensorStore::open(path), cfg);
    EXPECT_NE(msg.find("original layout"), std::string::npos) << msg;
    EXPECT_NE(msg.find("missing 2 tensors: blocks.7.norm3.bias, head.modulation"), std::string::npos) << msg;
  }
  {
    const std::string path = write_model("miss_d.safetensors", 1536, 8960, 30, WanDiTLayout::Diffusers, "BF16", false,
                                         {"head.modulation"});
    const std::string msg = error_of(TensorStore::open(path), cfg);
    EXPECT_NE(msg.find("diffusers layout"), std::string::npos) << msg;
    EXPECT_NE(msg.find("scale_shift_table (canonical head.modulation)"), std::string::npos) << msg;
  }
}

TEST_F(DitLayouts, ExtraKeysAndBlocksAndDtypes) {
  const WanDiTConfig cfg = WanDiTConfig::preset("wan2.1-t2v-1.3b");
  {
    // A stray tensor is reported as unused (warning; error with strict).
    const std::string path = write_model("extra.safetensors", 1536, 8960, 30, WanDiTLayout::Original, "BF16", false,
                                         {}, {{"some.other.weight", {4}, "F32"}});
    const WeightReport report = check(TensorStore::open(path), cfg);
    EXPECT_EQ(report.unused_keys, std::vector<std::string>{"some.other.weight"});
  }
  {
    // 1.3B-sized blocks but 31 of them: not silently ignored.
    const std::string path = write_model("more_blocks.safetensors", 1536, 8960, 31, WanDiTLayout::Original, "BF16");
    const std::string msg = error_of(TensorStore::open(path), cfg);
    EXPECT_NE(msg.find("the checkpoint has 31 blocks, the config 30 layers"), std::string::npos) << msg;
  }
  {
    // Integer tensor where a weight belongs (docs/bad_inputs.md #11).
    std::vector<Entry> extra;
    const std::string path = write_model("i64.safetensors", 1536, 8960, 30, WanDiTLayout::Original, "BF16", false,
                                         {"head.modulation"}, {{"head.modulation", {1, 2, 1536}, "I64"}});
    const std::string msg = error_of(TensorStore::open(path), cfg);
    EXPECT_NE(msg.find("head.modulation has dtype I64, expected a float type"), std::string::npos) << msg;
  }
}

TEST_F(DitLayouts, NotADitAndImageToVideo) {
  const std::string vae = (dir_ / "vae.safetensors").string();
  write_sparse_safetensors(vae, {{"decoder.conv1.weight", {4, 4}, "F32"}});
  const TensorStore vstore = TensorStore::open(vae);
  EXPECT_FALSE(is_wan_dit(vstore));
  try {
    detect_wan_dit_layout(vstore);
    ADD_FAILURE() << "no error for a VAE file";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), kExitDataErr);
    EXPECT_NE(std::string(e.what()).find("not a Wan DiT checkpoint"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("decoder.conv1.weight"), std::string::npos);
  }
  // An image-to-video file is recognised as one (docs/wan.md §5.1): its image parts are
  // then required, and every missing one is listed.
  const std::string i2v = write_model("i2v.safetensors", 128, 32, 1, WanDiTLayout::Original, "F32", false, {},
                                      {{"img_emb.proj.0.weight", {1280}, "F32"}});
  const TensorStore istore = TensorStore::open(i2v);
  EXPECT_EQ(detect_wan_dit_layout(istore), WanDiTLayout::Original);
  WanDiTConfig cfg = WanDiTConfig::from_weights(istore);
  EXPECT_EQ(cfg.image_dim, 1280);
  EXPECT_EQ(cfg.model_type(), "i2v");
  try {
    WanDiTLoadOptions dry;
    dry.dry_run = true;
    load_wan_dit(istore, cfg, dry);
    ADD_FAILURE() << "no error for an I2V file without its image parts";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), kExitDataErr);
    EXPECT_NE(std::string(e.what()).find("img_emb.proj.0.bias"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("missing"), std::string::npos) << e.what();
  }
}

TEST(DitConfig, DiffusersAndOriginalJsonAgree) {
  const WanDiTConfig a = WanDiTConfig::from_json(dit_data("tiny_dit/diffusers/config.json"));
  const WanDiTConfig b = WanDiTConfig::from_json(dit_data("tiny_dit/config_original.json"));
  for (const WanDiTConfig* c : {&a, &b}) {
    EXPECT_EQ(c->dim, 48);
    EXPECT_EQ(c->num_heads, 2);
    EXPECT_EQ(c->head_dim(), 24);
    EXPECT_EQ(c->ffn_dim, 64);
    EXPECT_EQ(c->text_dim, 32);
    EXPECT_EQ(c->freq_dim, 256);
    EXPECT_EQ(c->num_layers, 2);
    EXPECT_EQ(c->in_dim, 16);
    EXPECT_EQ(c->out_dim, 16);
    EXPECT_EQ(c->patch_size, (std::array<int64_t, 3>{1, 2, 2}));
    EXPECT_FLOAT_EQ(c->eps, 1e-6f);
    EXPECT_EQ(c->preset_name, "");
  }
  const WanDiTConfig real = WanDiTConfig::from_json_text(
      R"({"_class_name":"WanModel","dim":1536,"eps":1e-06,"ffn_dim":8960,"freq_dim":256,"in_dim":16,)"
      R"("model_type":"t2v","num_heads":12,"num_layers":30,"out_dim":16,"text_len":512})",
      "official config.json");
  EXPECT_EQ(real.preset_name, "wan2.1-t2v-1.3b");
  const WanDiTConfig real14 = WanDiTConfig::from_json_text(
      R"({"_class_name":"WanTransformer3DModel","attention_head_dim":128,"num_attention_heads":40,"ffn_dim":13824,)"
      R"("num_layers":40,"in_channels":16,"out_channels":16,"text_dim":4096,"freq_dim":256,"patch_size":[1,2,2],)"
      R"("cross_attn_norm":true,"qk_norm":"rms_norm_across_heads","eps":1e-06,"rope_max_seq_len":1024,)"
      R"("added_kv_proj_dim":null,"image_dim":null})",
      "diffusers config.json");
  EXPECT_EQ(real14.preset_name, "wan2.1-t2v-14b");
  EXPECT_THROW(WanDiTConfig::from_json_text(R"({"num_attention_heads":40,"image_dim":1280})", "i2v"), Error);
  EXPECT_THROW(WanDiTConfig::from_json_text(R"({"dim":100,"num_heads":3})", "bad heads"), Error);
  EXPECT_THROW(WanDiTConfig::from_json_text("[1,2]", "array"), Error);
}

// Every value is bounded and products are overflow-checked: Error(78) naming the
// file and key, before anything is allocated for the model.
TEST(DitConfig, ValuesAreBoundedWithFileAndKey) {
  auto error_of = [](const std::string& text) -> std::string {
    try {
      WanDiTConfig::from_json_text(text, "transformer/config.json");
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), kExitConfig) << e.what();
      return e.what();
    }
    ADD_FAILURE() << "accepted: " << text;
    return "";
  };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"num_attention_heads":40,"attention_head_dim":128,"num_layers":1000000000})",
       "num_layers = 1000000000 is outside [1, 1024]"},
      {R"({"num_attention_heads":1024,"attention_head_dim":4096})",
       "num_attention_heads x attention_head_dim = 1024 x 4096 is over the limit of 65536"},
      {R"({"num_attention_heads":4294967296,"attention_head_dim":4294967296})",
       "num_attention_heads = 4294967296 is outside [1, 1024]"},
      {R"({"num_attention_heads":40,"attention_head_dim":18446744073709551615})",
       "attention_head_dim = 18446744073709551615 is outside [1, 4096]"},
      {R"({"num_attention_heads":40,"attention_head_dim":-128})", "attention_head_dim = -128 is outside [1, 4096]"},
      {R"({"dim":1536,"num_heads":12,"ffn_dim":0})", "ffn_dim = 0 is outside [1, 1048576]"},
      {R"({"dim":1536,"num_heads":12,"text_len":9999999})", "text_len = 9999999 is outside [1, 65536]"},
      {R"({"dim":1536,"num_heads":12,"patch_size":[1,2,100000]})", "patch_size[2] = 100000 is outside [1, 64]"},
      {R"({"dim":1536,"num_heads":12,"eps":0})", "eps = 0 is outside (0, 1)"},
  };
  for (const auto& [text, needle] : cases) {
    const std::string msg = error_of(text);
    EXPECT_NE(msg.find("transformer/config.json: " + needle), std::string::npos) << msg;
  }
  // A config built in code is held to the same bounds.
  WanDiTConfig c = WanDiTConfig::preset("wan2.1-t2v-1.3b");
  c.num_layers = 1000000000;
  EXPECT_THROW(c.validate("code"), Error);
  EXPECT_THROW(wan_dit_weight_list(c), Error);
}

TEST(DitConfig, DetectFromTinyFilesNeedsHeads) {
  // dim 48 is no preset and not a multiple of 128: the heads cannot be seen in shapes.
  const TensorStore store = TensorStore::open(dit_data("tiny_dit/original.safetensors"));
  EXPECT_THROW(WanDiTConfig::from_weights(store), Error);
  const WanDiTShapes shapes = detect_wan_dit_shapes(store);
  EXPECT_FALSE(shapes.heads_known);
  EXPECT_EQ(shapes.cfg.dim, 48);
  EXPECT_EQ(shapes.cfg.num_layers, 2);
  EXPECT_EQ(shapes.cfg.preset_name, "");
  // resolve: config.json beside the diffusers weights is picked up.
  const TensorStore diffusers = TensorStore::open(dit_data("tiny_dit/diffusers"));
  const WanDiTConfig c = WanDiTConfig::resolve("", dit_data("tiny_dit/diffusers"), &diffusers);
  EXPECT_EQ(c.num_heads, 2);
  EXPECT_EQ(WanDiTConfig::resolve("", dit_data("tiny_dit/diffusers")).num_heads, 2);  // store opened on demand
  EXPECT_EQ(WanDiTConfig::resolve("wan2.1-t2v-14b", "", &store).dim, 5120);
  EXPECT_EQ(WanDiTConfig::resolve(dit_data("tiny_dit/config_original.json"), "").dim, 48);
  EXPECT_EQ(WanDiTConfig::resolve(dit_data("tiny_dit/diffusers"), "").dim, 48);  // a folder holding config.json
  try {
    WanDiTConfig::resolve("wan9", "");
    ADD_FAILURE() << "no error for an unknown preset";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), kExitUsage);
    EXPECT_NE(std::string(e.what()).find("wan2.1-t2v-1.3b"), std::string::npos) << e.what();
  }
}

// A missing key through the real loader (data is read) names the key and layout.
TEST_F(DitLayouts, LoaderReportsMissingKeyOfSmallFile) {
  const TensorStore full = TensorStore::open(dit_data("tiny_dit/original.safetensors"));
  std::vector<std::pair<std::string, Tensor>> kept;
  for (const auto& n : full.names())
    if (n != "blocks.1.cross_attn.norm_k.weight") kept.emplace_back(n, full.get(n));
  const std::string path = (dir_ / "tiny_missing.safetensors").string();
  save_safetensors(path, kept);
  const WanDiTConfig cfg = WanDiTConfig::from_json(dit_data("tiny_dit/config_original.json"));
  try {
    load_wan_dit(TensorStore::open(path), cfg);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), kExitDataErr);
    EXPECT_NE(std::string(e.what()).find("blocks.1.cross_attn.norm_k.weight"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("original layout"), std::string::npos) << e.what();
  }
}

// An extra tensor is a warning by default and an error with strict loading.
TEST_F(DitLayouts, StrictLoadRefusesExtraKeys) {
  const TensorStore full = TensorStore::open(dit_data("tiny_dit/comfy.safetensors"));
  std::vector<std::pair<std::string, Tensor>> all;
  for (const auto& n : full.names()) all.emplace_back(n, full.get(n));
  all.emplace_back("model.diffusion_model.extra.weight", Tensor::zeros(Shape{3}, DType::F32));
  const std::string path = (dir_ / "tiny_extra.safetensors").string();
  save_safetensors(path, all);
  const WanDiTConfig cfg = WanDiTConfig::from_json(dit_data("tiny_dit/config_original.json"));
  const TensorStore store = TensorStore::open(path);
  EXPECT_EQ(load_wan_dit(store, cfg).blocks.size(), 2u);
  WanDiTLoadOptions strict;
  strict.strict = true;
  try {
    load_wan_dit(store, cfg, strict);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.diffusion_model.extra.weight"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace t2v
