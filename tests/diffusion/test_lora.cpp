// LoRA merging against the upstream loaders (tools/golden/gen_lora_goldens.py:
// diffusers + PEFT, ComfyUI's and LightX2V's semantics) on the tiny test DiT,
// in every key convention, file dtype and base layout; and the refusal of
// LoRAs that do not fit.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/safetensors.h"
#include "diffusion/lora.h"
#include "diffusion/wan_dit.h"
#include "diffusion/wan_dit_config.h"
#include "diffusion/wan_dit_weights.h"
#include "dit_test_util.h"
#include "kernels/test_device/test_device.h"

namespace t2v {
namespace {

namespace fs = std::filesystem;
using test::dit_data;

std::string lora_data(const std::string& rel) { return std::string(T2V_TEST_DATA_DIR) + "/lora/" + rel; }

WanDiTConfig tiny_config() { return WanDiTConfig::from_json(dit_data("tiny_dit/config_original.json")); }

nlohmann::json golden_cases() {
  std::ifstream f(lora_data("cases.json"));
  return nlohmann::json::parse(f);
}

std::vector<LoraSpec> specs_of(const nlohmann::json& loras) {
  std::vector<LoraSpec> out;
  for (const auto& l : loras) out.push_back({lora_data(l["file"]), l["strength"].get<double>()});
  return out;
}

// Every weight of the tiny DiT in `path` (any layout) as the binder hands it
// out, with `delta` merged: the same CheckpointSource path load_wan_dit takes.
std::map<std::string, Tensor> load_all(const std::string& path, std::shared_ptr<const WeightDelta> delta,
                                       DType dtype = DType::F32) {
  const WanDiTConfig cfg = tiny_config();
  const TensorStore store = TensorStore::open(path);
  CheckpointOptions co;
  co.dtype = dtype;
  co.delta = std::move(delta);
  std::map<std::string, Tensor> out;
  const std::vector<WeightRequest> reqs = wan_dit_weight_list(cfg);
  bind_checkpoint(store, wan_dit_weight_layout(detect_wan_dit_layout(store)), co,
                  [&](const WeightScope& root, CheckpointSource&) {
                    for (const WeightRequest& r : reqs) out[r.key] = root.get(r.key, r.shape, r.precision);
                  });
  return out;
}

bool bit_equal(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.data<void>(), b.data<void>(), a.nbytes()) == 0;
}

class LoraGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(LoraGolden, MergedWeightsMatchTheUpstreamMerge) {
  const nlohmann::json cases = golden_cases()["merged"];
  nlohmann::json c;
  for (const auto& x : cases)
    if (x["name"] == GetParam()) c = x;
  ASSERT_FALSE(c.is_null()) << GetParam();
  SCOPED_TRACE(fmt::format("{} (reference: {})", GetParam(), c["reference"].get<std::string>()));
  const auto delta = load_loras(specs_of(c["loras"]), tiny_config());
  ASSERT_NE(delta, nullptr);
  const auto base = load_all(dit_data("tiny_dit/original.safetensors"), nullptr);
  const auto merged = load_all(dit_data("tiny_dit/original.safetensors"), delta);
  SafetensorsFile golden(lora_data("merged.safetensors"));
  const std::vector<std::string> changed = delta->keys();
  std::set<std::string> golden_keys, ours(changed.begin(), changed.end());
  const std::string prefix = GetParam() + "/";
  for (const TensorInfo& ti : golden.tensors())
    if (ti.name.rfind(prefix, 0) == 0) golden_keys.insert(ti.name.substr(prefix.size()));
  ASSERT_EQ(golden_keys.size(), c["changed_keys"].get<size_t>());
  EXPECT_EQ(ours, golden_keys) << "the keys the LoRA changes";
  double worst = 0;
  for (const auto& [key, w] : merged) {
    if (!golden_keys.count(key)) {
      EXPECT_TRUE(bit_equal(w, base.at(key))) << key << " must stay as it is";
      continue;
    }
    const test::Diff d = test::diff(w, golden.get(prefix + key));
    EXPECT_LE(d.rel(), 1e-6) << key;  // measured 1.2e-7 at worst (original_f16)
    EXPECT_FALSE(bit_equal(w, base.at(key)) && d.rel() > 0) << key;
    worst = std::max(worst, d.rel());
  }
  std::printf("[ lora ] %-20s %2zu keys, max rel error vs %s: %.3g\n", GetParam().c_str(), golden_keys.size(),
              c["reference"].get<std::string>().c_str(), worst);
}

INSTANTIATE_TEST_SUITE_P(AllCases, LoraGolden,
                         ::testing::Values("original@1", "original_f16@1", "original_bf16@1", "original_noalpha@1",
                                           "kohya@1", "kohya_f16@1", "kohya_bf16@1", "kohya_noalpha@1", "diffusers@1",
                                           "diffusers_f16@1", "diffusers_bf16@1", "diffusers_alpha@1", "lightx2v@1",
                                           "stack"),
                         [](const auto& p) {
                           std::string n = p.param;
                           for (char& ch : n)
                             if (ch == '@' || ch == '.') ch = '_';
                           return n;
                         });

TEST(Lora, GoldenListsEveryCase) {
  EXPECT_EQ(golden_cases()["merged"].size(), 14u) << "a case in cases.json is not instantiated above";
}

// The base layout does not matter: Comfy single file, diffusers folder and
// shards get the very same merged weights.
TEST(Lora, EveryBaseLayoutGetsTheSameMerge) {
  for (const char* file : {"original.safetensors", "diffusers.safetensors", "kohya.safetensors"}) {
    SCOPED_TRACE(file);
    const auto delta = load_loras({{lora_data(file), 0.8}}, tiny_config());
    const auto want = load_all(dit_data("tiny_dit/original.safetensors"), delta);
    for (const char* base : {"tiny_dit/comfy.safetensors", "tiny_dit/diffusers", "tiny_dit/diffusers_sharded"}) {
      const auto got = load_all(dit_data(base), delta);
      for (const auto& [key, w] : want) EXPECT_TRUE(bit_equal(got.at(key), w)) << base << " " << key;
    }
  }
}

// Scaled fp8 bases are dequantized, then merged in fp32: the merged weight is
// the dequantized weight plus the delta the golden gives.
TEST(Lora, Fp8ScaledBaseIsDequantizedThenMerged) {
  const std::string fp8 = dit_data("tiny_dit/original_fp8_scaled.safetensors");
  const auto delta = load_loras({{lora_data("original.safetensors"), 1.0}}, tiny_config());
  const auto base32 = load_all(dit_data("tiny_dit/original.safetensors"), nullptr);
  const auto base8 = load_all(fp8, nullptr);
  const auto merged8 = load_all(fp8, delta);
  SafetensorsFile golden(lora_data("merged.safetensors"));
  int fp8_keys = 0;
  for (const std::string& key : delta->keys()) {
    const std::vector<float> g = golden.get("original@1/" + key).to_vector(), b32 = base32.at(key).to_vector(),
                             b8 = base8.at(key).to_vector(), m8 = merged8.at(key).to_vector();
    double worst = 0, scale = 0;
    for (size_t i = 0; i < g.size(); ++i) {
      worst = std::max(worst, std::fabs((static_cast<double>(m8[i]) - b8[i]) - (static_cast<double>(g[i]) - b32[i])));
      scale = std::max(scale, std::fabs(static_cast<double>(g[i])));
    }
    EXPECT_LE(worst, 1e-6 * scale) << key;
    fp8_keys += bit_equal(base8.at(key), base32.at(key)) ? 0 : 1;
  }
  EXPECT_GT(fp8_keys, 10) << "the fp8 file must quantize most LoRA targets";
}

// A BF16 compute dtype gets the fp32 merge rounded once.
TEST(Lora, ReducedComputeDtypeIsTheFp32MergeRoundedOnce) {
  const auto delta = load_loras({{lora_data("kohya.safetensors"), 1.0}}, tiny_config());
  const auto f32 = load_all(dit_data("tiny_dit/original_bf16.safetensors"), delta);
  const auto bf16 = load_all(dit_data("tiny_dit/original_bf16.safetensors"), delta, DType::BF16);
  int rounded = 0;
  for (const std::string& key : delta->keys()) {
    if (bf16.at(key).dtype() != DType::BF16) continue;  // fp32 islands stay fp32
    EXPECT_TRUE(bit_equal(bf16.at(key), f32.at(key).to(DType::BF16))) << key;
    ++rounded;
  }
  EXPECT_GT(rounded, 10);
}

// load_wan_dit hands the delta to the binder.
TEST(Lora, LoadWanDitMergesTheDelta) {
  const WanDiTConfig cfg = tiny_config();
  const TensorStore store = TensorStore::open(dit_data("tiny_dit/original.safetensors"));
  WanDiTLoadOptions lo;
  lo.delta = load_loras({{lora_data("original.safetensors"), 1.0}}, cfg);
  const WanDiTWeights w = load_wan_dit(store, cfg, lo);
  SafetensorsFile golden(lora_data("merged.safetensors"));
  EXPECT_LE(test::diff(w.blocks[1].self_attn.q.weight, golden.get("original@1/blocks.1.self_attn.q.weight")).rel(), 1e-6);
  EXPECT_LE(test::diff(w.head.head.bias, golden.get("original@1/head.head.bias")).rel(), 1e-6);
  EXPECT_LE(test::diff(w.blocks[0].modulation, golden.get("original@1/blocks.0.modulation")).rel(), 1e-6);
}

// The merge with the model's compute dtype (one per model, its GEMM weights'): on the
// test device in BF16 the GEMM weights are the fp32 merge rounded once, the fp32
// islands keep the fp32 merge, and the merged model runs; in F32 the device forward
// is the CPU forward bit for bit.
TEST(Lora, MergedModelOnTheTestDeviceInEachComputeDtype) {
  ops::open_test_device();
  const WanDiTConfig cfg = tiny_config();
  const TensorStore store = TensorStore::open(dit_data("tiny_dit/original.safetensors"));
  const auto delta = load_loras({{lora_data("original.safetensors"), 1.0}}, cfg);
  WanDiTLoadOptions cpu_opts;
  cpu_opts.delta = delta;
  const WanDiT cpu(cfg, load_wan_dit(store, cfg, cpu_opts));

  std::mt19937 rng(31);
  std::normal_distribution<float> nd;
  auto random = [&](const Shape& s) {
    Tensor t = Tensor::empty(s, DType::F32, Device::CPU);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = nd(rng);
    return t;
  };
  const Tensor x = random(Shape{2, 16, 2, 6, 4}), ctx = random(Shape{2, 7, 32});
  Tensor t = Tensor::empty(Shape{2}, DType::F32, Device::CPU);
  t.data<float>()[0] = 937.5f;
  t.data<float>()[1] = 250.0f;
  const Tensor ref = cpu.forward(x, t, ctx);

  for (const DType dt : {DType::F32, DType::BF16}) {
    SCOPED_TRACE(dtype_name(dt));
    WanDiTLoadOptions o = cpu_opts;
    o.device = Device::Test;
    o.dtype = dt;
    const WanDiT dev(cfg, load_wan_dit(store, cfg, o));
    const WanDiTWeights& w = dev.weights();
    EXPECT_EQ(w.dtype, dt);
    const Tensor q = w.blocks[1].self_attn.q.weight.to(Device::CPU);
    ASSERT_EQ(q.dtype(), dt);
    EXPECT_TRUE(bit_equal(q, cpu.weights().blocks[1].self_attn.q.weight.to(dt))) << "the fp32 merge rounded once";
    const Tensor mod = w.blocks[0].modulation.to(Device::CPU);
    ASSERT_EQ(mod.dtype(), DType::F32) << "an fp32 island";
    EXPECT_TRUE(bit_equal(mod, cpu.weights().blocks[0].modulation));
    EXPECT_TRUE(bit_equal(w.head.head.weight.to(Device::CPU), cpu.weights().head.head.weight));

    const Tensor out = dev.forward(x.to(Device::Test), t, ctx.to(Device::Test)).to(Device::CPU);
    if (dt == DType::F32) {
      EXPECT_EQ(out.to_vector(), ref.to_vector()) << "the test device in F32 is the CPU forward";
    } else {
      const double rel = test::diff(out, ref).rel();
      std::printf("[ lora ] merged model on the test device in bf16: rel %.3e vs the fp32 CPU forward\n", rel);
      EXPECT_LE(rel, 4e-2);  // measured 6.9e-3: bf16 GEMM operands, fp32 residual stream
      EXPECT_GT(rel, 0.0) << "bf16 GEMM weights must change the output";
    }
  }
}

TEST(Lora, DetectsEachConvention) {
  const WanDiTConfig cfg = tiny_config();
  struct Want {
    const char* file;
    LoraConvention conv;
    const char* prefix;
  };
  for (const Want& w : {Want{"original.safetensors", LoraConvention::Original, "diffusion_model."},
                        Want{"original_bf16.safetensors", LoraConvention::Original, "diffusion_model."},
                        Want{"kohya_f16.safetensors", LoraConvention::Kohya, "lora_unet_"},
                        Want{"diffusers.safetensors", LoraConvention::Diffusers, "transformer."},
                        Want{"diffusers_f16.safetensors", LoraConvention::Diffusers, ""},
                        Want{"lightx2v.safetensors", LoraConvention::Original, "diffusion_model."}}) {
    SCOPED_TRACE(w.file);
    const LoraFile f = read_lora_file(lora_data(w.file), cfg);
    EXPECT_EQ(f.convention, w.conv);
    EXPECT_EQ(f.prefix, w.prefix);
    EXPECT_TRUE(f.problems.empty()) << f.problems.front().text;
    EXPECT_TRUE(f.unknown_keys.empty()) << f.unknown_keys.front();
    EXPECT_FALSE(f.targets.empty());
  }
  const LoraFile o = read_lora_file(lora_data("original.safetensors"), cfg);
  EXPECT_EQ(o.ranks(), std::vector<int64_t>{4});
  EXPECT_FALSE(o.alphas().empty());
  EXPECT_TRUE(read_lora_file(lora_data("original_noalpha.safetensors"), cfg).alphas().empty());
}

// Every module of the real 1.3B model, named in each convention, maps back
// (the kohya spelling with '_' is unambiguous; the diffusers names are the
// rename table read backwards) and fits its shape.
TEST(Lora, EveryModuleOfThe13BModelInEveryConvention) {
  const WanDiTConfig cfg = WanDiTConfig::preset("wan2.1-t2v-1.3b");
  std::vector<std::pair<std::string, Shape>> linears;
  for (const WeightRequest& r : wan_dit_weight_list(cfg))
    if (r.shape.ndim() == 2 && r.key.size() > 7 && r.key.compare(r.key.size() - 7, 7, ".weight") == 0)
      linears.emplace_back(r.key.substr(0, r.key.size() - 7), r.shape);
  ASSERT_EQ(linears.size(), 6u + 30u * 10u);
  const fs::path dir = fs::temp_directory_path() / fmt::format("t2v_lora_13b_{}", ::getpid());
  fs::create_directories(dir);
  for (LoraConvention conv : {LoraConvention::Original, LoraConvention::Diffusers, LoraConvention::Kohya}) {
    std::map<std::string, Tensor> t;
    for (const auto& [m, shape] : linears) {
      std::string name;
      if (conv == LoraConvention::Original) name = "diffusion_model." + m;
      if (conv == LoraConvention::Diffusers) {
        const std::string d = wan_dit_diffusers_key(m + ".weight");
        name = "transformer." + d.substr(0, d.size() - 7);
      }
      if (conv == LoraConvention::Kohya) {
        name = "lora_unet_" + m;
        for (size_t i = 10; i < name.size(); ++i)
          if (name[i] == '.') name[i] = '_';
      }
      const bool ab = conv == LoraConvention::Diffusers;
      t[name + (ab ? ".lora_A.weight" : ".lora_down.weight")] = Tensor::full(Shape{1, shape[1]}, 0.01f);
      t[name + (ab ? ".lora_B.weight" : ".lora_up.weight")] = Tensor::full(Shape{shape[0], 1}, 0.01f);
      t[name + ".alpha"] = Tensor::full(Shape{}, 1.0f);
    }
    const std::string path = (dir / fmt::format("{}.safetensors", lora_convention_name(conv))).string();
    save_safetensors(path, {t.begin(), t.end()});
    const LoraFile f = read_lora_file(path, cfg, {true, false});
    SCOPED_TRACE(lora_convention_name(conv));
    EXPECT_EQ(f.convention, conv);
    EXPECT_TRUE(f.problems.empty()) << f.problems.front().text;
    EXPECT_TRUE(f.unknown_keys.empty()) << f.unknown_keys.front();
    EXPECT_EQ(f.targets.size(), linears.size());
  }
  fs::remove_all(dir);
}

// ---- refusals -----------------------------------------------------------------------------------
class LoraRefusal : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / fmt::format("t2v_lora_bad_{}_{}", ::getpid(), counter_++);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::map<std::string, Tensor>& t) {
    const std::string p = (dir_ / name).string();
    save_safetensors(p, {t.begin(), t.end()});
    return p;
  }
  // The Error of loading `path` at strength 1, or a test failure.
  Error refused(const std::string& path, bool ignore_unknown = false) {
    try {
      load_loras({{path, 1.0}}, tiny_config(), ignore_unknown);
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "one line";
      return e;
    }
    ADD_FAILURE() << path << " was accepted";
    return Error(0, "");
  }
  static Tensor randn(const Shape& s, float scale = 0.1f) {
    std::vector<float> v(static_cast<size_t>(s.numel()));
    for (size_t i = 0; i < v.size(); ++i) v[i] = scale * std::sin(0.7f * static_cast<float>(i) + 0.3f);
    return Tensor::from_floats(v, s);
  }
  fs::path dir_;
  static inline int counter_ = 0;
};

TEST_F(LoraRefusal, LoraForAnotherModelNamesKeyAndShapes) {
  const Error e = refused(lora_data("other_model.safetensors"));
  EXPECT_EQ(e.code(), kExitDataErr);
  const std::string m = e.what();
  EXPECT_NE(m.find("diffusion_model.blocks.0.self_attn.q.lora_up.weight [64, 4]"), std::string::npos) << m;
  EXPECT_NE(m.find("blocks.0.self_attn.q.weight is [48, 48]"), std::string::npos) << m;
  EXPECT_NE(m.find("and 1 more"), std::string::npos) << m;
}

TEST_F(LoraRefusal, RankMismatch) {
  const std::string p = write("rank.safetensors", {{"diffusion_model.blocks.0.self_attn.q.lora_down.weight", randn({3, 48})},
                                                   {"diffusion_model.blocks.0.self_attn.q.lora_up.weight", randn({48, 4})}});
  const Error e = refused(p);
  EXPECT_EQ(e.code(), kExitDataErr);
  EXPECT_NE(std::string(e.what()).find("rank mismatch"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("[3, 48]"), std::string::npos) << e.what();
}

TEST_F(LoraRefusal, NanOrInfNamesTheKey) {
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    Tensor up = randn({48, 4});
    up.data<float>()[17] = bad;
    const std::string p = write("nan.safetensors", {{"lora_unet_blocks_1_ffn_2.lora_down.weight", randn({4, 64})},
                                                    {"lora_unet_blocks_1_ffn_2.lora_up.weight", up.to(DType::BF16)}});
    const Error e = refused(p);
    EXPECT_EQ(e.code(), kExitDataErr);
    EXPECT_NE(std::string(e.what()).find("lora_unet_blocks_1_ffn_2.lora_up.weight holds NaN or Inf (element 17)"),
              std::string::npos)
        << e.what();
  }
  const std::string pa = write("alpha.safetensors", {{"blocks.0.ffn.0.lora_down.weight", randn({4, 48})},
                                                     {"blocks.0.ffn.0.lora_up.weight", randn({64, 4})},
                                                     {"blocks.0.ffn.0.alpha", Tensor::full(Shape{}, NAN)}});
  EXPECT_NE(std::string(refused(pa).what()).find("blocks.0.ffn.0.alpha holds NaN"), std::string::npos);
}

TEST_F(LoraRefusal, UnknownKeysListedAndCountedUnlessIgnored) {
  std::map<std::string, Tensor> t = {{"diffusion_model.blocks.0.self_attn.q.lora_down.weight", randn({4, 48})},
                                     {"diffusion_model.blocks.0.self_attn.q.lora_up.weight", randn({48, 4})}};
  for (int i = 0; i < 3; ++i) {  // a block the 2-layer model does not have, and an image-to-video module
    t[fmt::format("diffusion_model.blocks.{}.self_attn.q.lora_down.weight", 5 + i)] = randn({4, 48});
    t[fmt::format("diffusion_model.blocks.0.cross_attn.k_img{}.lora_down.weight", i)] = randn({4, 48});
  }
  const std::string p = write("unknown.safetensors", t);
  const Error e = refused(p);
  EXPECT_EQ(e.code(), kExitDataErr);
  const std::string m = e.what();
  EXPECT_NE(m.find("6 keys match no module"), std::string::npos) << m;
  EXPECT_NE(m.find("(2 more)"), std::string::npos) << m;
  EXPECT_NE(m.find("--lora-ignore-unknown"), std::string::npos) << m;
  const auto delta = load_loras({{p, 1.0}}, tiny_config(), /*ignore_unknown=*/true);
  EXPECT_EQ(delta->keys(), std::vector<std::string>{"blocks.0.self_attn.q.weight"});
}

// Zero norm deltas for norms the model does not have are accepted; a non-zero one is not.
TEST_F(LoraRefusal, ZeroNormDeltasOfAbsentNormsAreSkipped) {
  WanDiTConfig cfg = tiny_config();
  cfg.qk_norm = false;
  cfg.cross_attn_norm = false;
  const std::string p = write("norms.safetensors", {{"diffusion_model.blocks.0.norm3.diff", Tensor::zeros({48}, DType::F32)},
                                                    {"diffusion_model.blocks.0.norm3.diff_b", Tensor::zeros({48}, DType::BF16)},
                                                    {"diffusion_model.blocks.0.self_attn.norm_q.diff", Tensor::zeros({48}, DType::F32)},
                                                    {"diffusion_model.blocks.0.ffn.0.diff_b", randn({64})}});
  const LoraFile f = read_lora_file(p, cfg);
  EXPECT_EQ(f.skipped_keys.size(), 3u);
  EXPECT_TRUE(f.unknown_keys.empty());
  EXPECT_NO_THROW(check_lora_fits(f, cfg, false));
  const std::string q = write("norms2.safetensors", {{"diffusion_model.blocks.0.self_attn.norm_q.diff", randn({48})},
                                                     {"diffusion_model.blocks.0.ffn.0.diff_b", randn({64})}});
  const LoraFile g = read_lora_file(q, cfg);
  EXPECT_EQ(g.unknown_keys, std::vector<std::string>{"diffusion_model.blocks.0.self_attn.norm_q.diff"});
}

TEST_F(LoraRefusal, AdaptersThatAreNotPlainLora) {
  const std::string p = write("dora.safetensors", {{"diffusion_model.blocks.0.ffn.0.lora_down.weight", randn({4, 48})},
                                                   {"diffusion_model.blocks.0.ffn.0.lora_up.weight", randn({64, 4})},
                                                   {"diffusion_model.blocks.0.ffn.0.dora_scale", randn({64, 1})}});
  EXPECT_NE(std::string(refused(p).what()).find("DoRA"), std::string::npos);
  const std::string q = write("half.safetensors", {{"diffusion_model.blocks.0.ffn.0.lora_up.weight", randn({64, 4})}});
  EXPECT_NE(std::string(refused(q).what()).find("no matching down"), std::string::npos);
  const std::string r = write("alpha2.safetensors", {{"blocks.0.ffn.0.lora_down.weight", randn({4, 48})},
                                                     {"blocks.0.ffn.0.lora_up.weight", randn({64, 4})},
                                                     {"blocks.0.ffn.0.alpha", randn({2})}});
  EXPECT_NE(std::string(refused(r).what()).find("an alpha is one number"), std::string::npos);
  const std::string s = write("i8.safetensors", {{"blocks.0.ffn.0.lora_down.weight", Tensor::zeros({4, 48}, DType::I32)},
                                                 {"blocks.0.ffn.0.lora_up.weight", randn({64, 4})}});
  EXPECT_NE(std::string(refused(s).what()).find("must be F32, F16 or BF16"), std::string::npos);
}

TEST_F(LoraRefusal, MissingFileAndNotALora) {
  EXPECT_EQ(refused((dir_ / "nope.safetensors").string()).code(), kExitNoInput);
  const Error e = refused(dit_data("tiny_dit/original.safetensors"));
  EXPECT_EQ(e.code(), kExitDataErr);
  EXPECT_NE(std::string(e.what()).find("not a LoRA"), std::string::npos) << e.what();
}

TEST_F(LoraRefusal, SpecStrengthAfterTheLastColon) {
  EXPECT_EQ(parse_lora_spec("a.safetensors"), (LoraSpec{"a.safetensors", 1.0}));
  EXPECT_EQ(parse_lora_spec("a.safetensors:0.6"), (LoraSpec{"a.safetensors", 0.6}));
  EXPECT_EQ(parse_lora_spec("a.safetensors:-1.5"), (LoraSpec{"a.safetensors", -1.5}));
  EXPECT_EQ(parse_lora_spec("dir:x/a.safetensors:0.5"), (LoraSpec{"dir:x/a.safetensors", 0.5}));
  const std::string colon = write("with:colon.safetensors", {{"x.diff", randn({2})}});
  EXPECT_EQ(parse_lora_spec(colon), (LoraSpec{colon, 1.0}));
  EXPECT_EQ(parse_lora_spec(colon + ":2"), (LoraSpec{colon, 2.0}));
  for (const char* bad : {"a.safetensors:abc", "a.safetensors:nan", "a.safetensors:inf", "a.safetensors:-inf",
                          "a.safetensors:", "a.safetensors:1e999", ":0.5", ""}) {
    SCOPED_TRACE(bad);
    try {
      parse_lora_spec(bad);
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), kExitUsage);
    }
  }
}

}  // namespace
}  // namespace t2v
