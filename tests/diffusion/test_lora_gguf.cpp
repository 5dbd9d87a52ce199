// LoRAs on GGUF DiTs: a weight the LoRA touches is dequantized, merged in fp32
// and kept dense; every other quantized matrix stays packed. Checked on the tiny
// test DiT as F16 and Q8_0 GGUFs (tools/golden/gen_gguf_models.py, from
// tests/data/diffusion/tiny_dit/original.safetensors) with the LoRA goldens of
// tools/golden/gen_lora_goldens.py, and on the dim-256 mixed GGUF (K-quants)
// with a LoRA drawn here from a seeded RNG.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>

#include "core/quant.h"
#include "core/safetensors.h"
#include "diffusion/lora.h"
#include "diffusion/wan_dit.h"
#include "diffusion/wan_dit_config.h"
#include "diffusion/wan_dit_weights.h"
#include "dit_test_util.h"

namespace t2v {
namespace {

namespace fs = std::filesystem;
using test::dit_data;

const std::string kQ8 = "gguf/wan_tiny48_q8_0.gguf";
const std::string kF16 = "gguf/wan_tiny48_f16.gguf";
const std::string kMixed = "gguf/wan_tiny256_mixed.gguf";

std::string lora_data(const std::string& rel) { return std::string(T2V_TEST_DATA_DIR) + "/lora/" + rel; }

WanDiTConfig tiny_config() { return WanDiTConfig::from_json(dit_data("tiny_dit/config_original.json")); }

// Every weight the DiT binds from `path`, dense F32 with `delta` merged (the binder's get()).
std::map<std::string, Tensor> load_all(const std::string& path, const WanDiTConfig& cfg,
                                       std::shared_ptr<const WeightDelta> delta) {
  const TensorStore store = TensorStore::open(path);
  CheckpointOptions co;
  co.delta = std::move(delta);
  std::map<std::string, Tensor> out;
  const std::vector<WeightRequest> reqs = wan_dit_weight_list(cfg);
  bind_checkpoint(store, wan_dit_weight_layout(detect_wan_dit_layout(store)), co,
                  [&](const WeightScope& root, CheckpointSource&) {
                    for (const WeightRequest& r : reqs) out[r.key] = root.get(r.key, r.shape, r.precision);
                  });
  return out;
}

// Every tensor of a GGUF dequantized to fp32 (core/quant.h, bit-exact to the gguf
// package: tests/app/gguf_test.cpp checks each against the package's hash).
std::vector<std::pair<std::string, Tensor>> dequantized(const std::string& gguf) {
  const TensorStore s = TensorStore::open(gguf);
  std::vector<std::pair<std::string, Tensor>> out;
  for (const std::string& name : s.names()) {
    const TensorInfo& info = s.info(name);
    Tensor v = Tensor::empty(info.shape, DType::F32);
    if (info.quant)
      dequantize(*info.quant, s.get(name).raw(), v.data<float>(), v.numel());
    else
      v = s.get(name).to(DType::F32).clone();
    out.emplace_back(name, v);
  }
  return out;
}

bool bit_equal(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.data<void>(), b.data<void>(), a.nbytes()) == 0;
}

class LoraGguf : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / fmt::format("t2v_lora_gguf_{}_{}", ::getpid(), counter_++);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  // The GGUF's tensors dequantized, as an original-layout safetensors file.
  std::string dense_copy(const std::string& gguf) {
    const std::string p = (dir_ / (fs::path(gguf).stem().string() + "_deq.safetensors")).string();
    save_safetensors(p, dequantized(gguf));
    return p;
  }
  fs::path dir_;
  static inline int counter_ = 0;
};

struct Inputs {
  Tensor x, t, ctx;
};

Inputs random_inputs(const WanDiTConfig& c, uint64_t seed) {
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::normal_distribution<float> nd;
  auto random = [&](const Shape& s) {
    Tensor t = Tensor::empty(s, DType::F32, Device::CPU);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = nd(rng);
    return t;
  };
  return {random(Shape{2, c.in_dim, 3, 4, 6}), Tensor::from_floats({937.5f, 250.0f}, Shape{2}),
          random(Shape{2, 9, c.text_dim})};
}

WanDiT load_model(const std::string& path, const WanDiTConfig& cfg, std::shared_ptr<const WeightDelta> delta,
                  bool keep_packed = true) {
  WanDiTLoadOptions lo;
  lo.delta = std::move(delta);
  lo.keep_packed = keep_packed;
  return WanDiT(cfg, load_wan_dit(TensorStore::open(path), cfg, lo));
}

std::vector<const Linear*> block_matrices(const WanDiTWeights& w) {
  std::vector<const Linear*> out;
  for (const WanDiTBlock& b : w.blocks)
    for (const Linear* l : {&b.self_attn.q, &b.self_attn.k, &b.self_attn.v, &b.self_attn.o, &b.cross_attn.q,
                            &b.cross_attn.k, &b.cross_attn.v, &b.cross_attn.o, &b.ffn_0, &b.ffn_2})
      out.push_back(l);
  return out;
}

// (a) A touched weight of the GGUF is its dequantized value plus the delta the
// golden merge adds to the fp32 original; every other weight is the GGUF's as loaded
// without a LoRA, bit for bit; and the merge equals the one on the dequantized
// weights saved as safetensors, bit for bit.
TEST_F(LoraGguf, TouchedWeightsAreTheDequantizedWeightsPlusTheDelta) {
  const WanDiTConfig cfg = tiny_config();
  SafetensorsFile golden(lora_data("merged.safetensors"));
  const auto base32 = load_all(dit_data("tiny_dit/original.safetensors"), cfg, nullptr);
  for (const std::string& file : {kF16, kQ8}) {
    SCOPED_TRACE(file);
    const std::string deq = dense_copy(dit_data(file));
    const auto base = load_all(dit_data(file), cfg, nullptr);
    for (const char* name : {"original", "original_f16"}) {
      SCOPED_TRACE(name);
      const auto delta = load_loras({{lora_data(std::string(name) + ".safetensors"), 1.0}}, cfg);
      const auto merged = load_all(dit_data(file), cfg, delta);
      const auto merged_deq = load_all(deq, cfg, delta);
      double worst = 0;
      int rounded = 0, changed = 0;
      for (const auto& [key, w] : merged) {
        EXPECT_TRUE(bit_equal(w, merged_deq.at(key))) << key << ": the merge on the dequantized safetensors";
        if (!delta->touches(key)) {
          EXPECT_TRUE(bit_equal(w, base.at(key))) << key << " must stay as it is";
          continue;
        }
        // (merged - dequantized) against (golden - fp32 original): the same delta; each
        // side rounded once to fp32, so within an ulp of the weight's scale.
        const std::vector<float> g = golden.get(std::string(name) + "@1/" + key).to_vector(),
                                 b32 = base32.at(key).to_vector(), b = base.at(key).to_vector(), m = w.to_vector();
        double err = 0, scale = 0;
        for (size_t i = 0; i < g.size(); ++i) {
          err = std::max(err, std::fabs((static_cast<double>(m[i]) - b[i]) - (static_cast<double>(g[i]) - b32[i])));
          scale = std::max(scale, std::fabs(static_cast<double>(g[i])));
        }
        EXPECT_LE(err, 1e-6 * scale) << key;
        // Zero deltas (LightX2V-style norm diffs) leave the weight as it is; the others change it.
        const bool zero_delta = g == b32;
        EXPECT_EQ(bit_equal(w, base.at(key)), zero_delta) << key;
        changed += zero_delta ? 0 : 1;
        worst = std::max(worst, err / scale);
        rounded += bit_equal(base.at(key), base32.at(key)) ? 0 : 1;
      }
      EXPECT_GT(rounded, 10) << "the GGUF must round most LoRA targets";
      EXPECT_GT(changed, 10) << "most LoRA targets get a non-zero delta";
      std::printf("[ lora gguf ] %-26s %-13s %2zu keys: max |(merged - deq) - (golden - fp32)| / scale %.3g\n",
                  file.c_str(), name, delta->keys().size(), worst);
    }
  }
  // The check can fail: strength 0.5 is not the golden's merge at 1.
  const auto half = load_loras({{lora_data("original.safetensors"), 0.5}}, cfg);
  const auto merged = load_all(dit_data(kQ8), cfg, half), base = load_all(dit_data(kQ8), cfg, nullptr);
  const std::string key = "blocks.1.ffn.2.weight";
  const std::vector<float> g = golden.get("original@1/" + key).to_vector(), b32 = base32.at(key).to_vector(),
                           b = base.at(key).to_vector(), m = merged.at(key).to_vector();
  double err = 0, scale = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    err = std::max(err, std::fabs((static_cast<double>(m[i]) - b[i]) - (static_cast<double>(g[i]) - b32[i])));
    scale = std::max(scale, std::fabs(static_cast<double>(g[i])));
  }
  EXPECT_GT(err, 1e-3 * scale) << "strength 0.5 must not pass for 1";
}

// (b) Q8_0 keeps ffn.2 packed (its rows are whole 32-value blocks); original_f16
// touches blocks.1.ffn.2 only: that one is dense with the merge, blocks.0.ffn.2
// stays in its blocks, bytes as in the file. (c) The forward equals the forward of
// the dequantized weights as safetensors with the same LoRA.
TEST_F(LoraGguf, UntouchedMatricesStayPackedAndTheForwardIsTheDenseOne) {
  const WanDiTConfig cfg = tiny_config();
  const TensorStore store = TensorStore::open(dit_data(kQ8));
  const std::string deq = dense_copy(dit_data(kQ8));
  const Inputs in = random_inputs(cfg, 31);
  for (const char* name : {"original_f16", "original"}) {
    SCOPED_TRACE(name);
    const auto delta = load_loras({{lora_data(std::string(name) + ".safetensors"), 1.0}}, cfg);
    const WanDiT gguf = load_model(dit_data(kQ8), cfg, delta);
    const WanDiTWeights& w = gguf.weights();
    const Linear& f0 = w.blocks[0].ffn_2;
    const Linear& f1 = w.blocks[1].ffn_2;
    ASSERT_TRUE(delta->touches("blocks.1.ffn.2.weight"));
    EXPECT_FALSE(f1.packed.has_value()) << "touched: dequantized and merged";
    ASSERT_TRUE(f1.weight.defined());
    EXPECT_EQ(f1.weight.dtype(), DType::F32);
    EXPECT_TRUE(bit_equal(f1.weight, load_all(deq, cfg, delta).at("blocks.1.ffn.2.weight")));
    if (delta->touches("blocks.0.ffn.2.weight")) {
      EXPECT_FALSE(f0.packed.has_value());
    } else {
      ASSERT_TRUE(f0.packed.has_value()) << "untouched: stays quantized";
      EXPECT_EQ(f0.packed->type, QuantType::Q8_0);
      EXPECT_FALSE(f0.weight.defined());
      const Tensor raw = store.get("blocks.0.ffn.2.weight");
      ASSERT_EQ(f0.packed->data.nbytes(), raw.nbytes());
      EXPECT_EQ(std::memcmp(f0.packed->data.raw(), raw.raw(), raw.nbytes()), 0);
    }

    const Tensor got = gguf.forward(in.x, in.t, in.ctx);
    const Tensor want = load_model(deq, cfg, delta).forward(in.x, in.t, in.ctx);
    // The packed GEMM is the dense one when a weight fits one tile (docs/gguf.md): bit for bit.
    const auto d = test::diff(got, want);
    std::printf("[ lora gguf ] Q8_0 + %-13s forward vs dequantized safetensors + LoRA: max|err| %.3g\n", name,
                d.max_abs);
    EXPECT_EQ(d.max_abs, 0.0);
    const auto base = test::diff(got, load_model(deq, cfg, nullptr).forward(in.x, in.t, in.ctx));
    const auto half =
        test::diff(got, load_model(deq, cfg, load_loras({{lora_data(std::string(name) + ".safetensors"), 0.5}}, cfg))
                            .forward(in.x, in.t, in.ctx));
    EXPECT_GT(base.rel(), 1e-3) << "the LoRA changes the output";
    EXPECT_GT(half.rel(), 1e-4) << "the strength changes the output";
  }
}

// The K-quants of the mixed GGUF (Q4_K, Q6_K, Q2_K, ...) with a rank-3 LoRA on three
// of its 18 quantized block matrices: 15 stay packed, the forward is the forward of
// the dequantized weights with the LoRA, bit for bit.
TEST_F(LoraGguf, KQuantMatricesTouchedByALoraAreMergedTheRestStayPacked) {
  const TensorStore store = TensorStore::open(dit_data(kMixed));
  const WanDiTConfig cfg = WanDiTConfig::from_weights(store);
  std::mt19937 rng(2026);
  std::normal_distribution<float> nd;
  auto random = [&](const Shape& s, float scale) {
    Tensor t = Tensor::empty(s, DType::F32, Device::CPU);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = scale * nd(rng);
    return t;
  };
  const std::vector<std::string> targets = {"blocks.0.self_attn.q", "blocks.0.ffn.2", "blocks.1.cross_attn.k"};
  std::vector<std::pair<std::string, Tensor>> lora;
  for (const std::string& m : targets) {
    const Shape s = store.info(m + ".weight").shape;
    lora.emplace_back("diffusion_model." + m + ".lora_down.weight", random(Shape{3, s[1]}, 0.3f));
    lora.emplace_back("diffusion_model." + m + ".lora_up.weight", random(Shape{s[0], 3}, 0.3f));
    lora.emplace_back("diffusion_model." + m + ".alpha", Tensor::full(Shape{}, 1.5f));
  }
  const std::string path = (dir_ / "k.safetensors").string();
  save_safetensors(path, lora);
  const auto delta = load_loras({{path, 1.0}}, cfg);
  EXPECT_EQ(delta->keys().size(), targets.size());

  const WanDiT gguf = load_model(dit_data(kMixed), cfg, delta);
  int packed = 0;
  for (const Linear* l : block_matrices(gguf.weights())) packed += l->packed ? 1 : 0;
  EXPECT_EQ(packed, 15) << "18 quantized block matrices, 3 touched";
  EXPECT_FALSE(gguf.weights().blocks[0].self_attn.q.packed.has_value());
  EXPECT_FALSE(gguf.weights().blocks[0].ffn_2.packed.has_value());
  EXPECT_FALSE(gguf.weights().blocks[1].cross_attn.k.packed.has_value());
  ASSERT_TRUE(gguf.weights().blocks[0].self_attn.k.packed.has_value());
  EXPECT_EQ(gguf.weights().blocks[0].self_attn.k.packed->type, QuantType::Q4_K);

  const std::string deq = dense_copy(dit_data(kMixed));
  const Inputs in = random_inputs(cfg, 5);
  const Tensor got = gguf.forward(in.x, in.t, in.ctx);
  const auto same = test::diff(got, load_model(deq, cfg, delta).forward(in.x, in.t, in.ctx));
  const auto unpacked = test::diff(got, load_model(dit_data(kMixed), cfg, delta, false).forward(in.x, in.t, in.ctx));
  const auto base = test::diff(got, load_model(deq, cfg, nullptr).forward(in.x, in.t, in.ctx));
  const auto other = test::diff(got, load_model(deq, cfg, load_loras({{path, 0.8}}, cfg)).forward(in.x, in.t, in.ctx));
  std::printf(
      "[ lora gguf ] mixed K-quants + LoRA vs dequantized + LoRA: max|err| %.3g (no LoRA: rel %.3g, 0.8: rel %.3g)\n",
      same.max_abs, base.rel(), other.rel());
  EXPECT_EQ(same.max_abs, 0.0);
  EXPECT_EQ(unpacked.max_abs, 0.0);
  EXPECT_GT(base.rel(), 1e-3) << "the LoRA changes the output";
  EXPECT_GT(other.rel(), 1e-4) << "the strength changes the output";
}

}  // namespace
}  // namespace t2v
