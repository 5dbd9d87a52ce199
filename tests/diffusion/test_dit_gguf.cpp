// Wan DiT GGUFs in the ComfyUI-GGUF convention (tools/golden/gen_gguf_models.py):
// the conventions as read, the config from shapes (heads = dim / 128), packed
// block matrices whose forward equals the forward on the dequantized weights bit
// for bit, the converted tiny DiT against its fp32 original, and GGUFs of other
// families refused by their architecture.
#include <gtest/gtest.h>

#include "core/gguf.h"
#include "core/philox.h"
#include "diffusion/wan_dit.h"
#include "dit_test_util.h"

namespace t2v {
namespace {

using test::diff;
using test::dit_data;

const std::string kMixed = "gguf/wan_tiny256_mixed.gguf";

WanDiTConfig tiny48_config() { return WanDiTConfig::from_json(dit_data("tiny_dit/config_original.json")); }

WanDiT load(const TensorStore& store, const WanDiTConfig& cfg, bool keep_packed) {
  WanDiTLoadOptions lo;
  lo.keep_packed = keep_packed;
  return WanDiT(cfg, load_wan_dit(store, cfg, lo));
}

struct Inputs {
  Tensor x, t, ctx;
};

Inputs random_inputs(const WanDiTConfig& c, int64_t B, int64_t T, int64_t H, int64_t W, int64_t L, uint64_t seed) {
  std::vector<float> ts;
  for (int64_t b = 0; b < B; ++b) ts.push_back(999.0f - 337.0f * static_cast<float>(b));
  return {randn_philox(Shape{B, c.in_dim, T, H, W}, seed), Tensor::from_floats(ts, Shape{B}),
          randn_philox(Shape{B, L, c.text_dim}, seed + 1)};
}

void expect_same_bits(const Tensor& a, const Tensor& b, const std::string& what) {
  ASSERT_EQ(a.shape(), b.shape()) << what;
  const auto va = a.to_vector(), vb = b.to_vector();
  int64_t differ = 0;
  for (size_t i = 0; i < va.size(); ++i) differ += std::memcmp(&va[i], &vb[i], 4) != 0;
  EXPECT_EQ(differ, 0) << what << ": " << differ << " of " << va.size() << " values differ";
}

}  // namespace

TEST(DitGguf, ComfyConventionsAsRead) {
  const TensorStore store = TensorStore::open(dit_data("gguf/wan_tiny48_f16.gguf"));
  EXPECT_TRUE(store.is_gguf());
  EXPECT_EQ(store.architecture(), "wan");
  EXPECT_EQ(detect_wan_dit_layout(store), WanDiTLayout::Original);
  // fix_5d_tensors: the patch embedding as a 5-D F32 tensor; modulation 3-D F32.
  EXPECT_EQ(store.info("patch_embedding.weight").shape, (Shape{48, 16, 1, 2, 2}));
  EXPECT_STREQ(tensor_type_name(store.info("patch_embedding.weight")), "F32");
  EXPECT_EQ(store.info("blocks.0.modulation").shape, (Shape{1, 6, 48}));
  EXPECT_STREQ(tensor_type_name(store.info("blocks.0.modulation")), "F32");
  // Matrices F16 (dims reversed back to PyTorch order), vectors F32.
  EXPECT_EQ(store.info("blocks.0.ffn.0.weight").shape, (Shape{64, 48}));
  EXPECT_STREQ(tensor_type_name(store.info("blocks.0.ffn.0.weight")), "F16");
  EXPECT_STREQ(tensor_type_name(store.info("text_embedding.0.weight")), "F16");
  EXPECT_STREQ(tensor_type_name(store.info("blocks.0.ffn.0.bias")), "F32");
  // The mixed file: Q4_K_M in block 0 (v and ffn.2 in Q6_K), text embedding BF16.
  const TensorStore mixed = TensorStore::open(dit_data(kMixed));
  EXPECT_STREQ(tensor_type_name(mixed.info("blocks.0.self_attn.q.weight")), "Q4_K");
  EXPECT_STREQ(tensor_type_name(mixed.info("blocks.0.self_attn.v.weight")), "Q6_K");
  EXPECT_STREQ(tensor_type_name(mixed.info("blocks.0.cross_attn.v.weight")), "Q6_K");
  EXPECT_STREQ(tensor_type_name(mixed.info("blocks.0.ffn.2.weight")), "Q6_K");
  EXPECT_STREQ(tensor_type_name(mixed.info("text_embedding.0.weight")), "BF16");
  EXPECT_STREQ(tensor_type_name(mixed.info("time_projection.1.weight")), "F16");
}

TEST(DitGguf, ConfigFromShapesHeadsAreDimOver128) {
  const TensorStore store = TensorStore::open(dit_data(kMixed));
  const WanDiTConfig c = WanDiTConfig::from_weights(store);
  EXPECT_EQ(c.dim, 256);
  EXPECT_EQ(c.num_heads, 2);
  EXPECT_EQ(c.ffn_dim, 256);
  EXPECT_EQ(c.num_layers, 2);
  EXPECT_EQ(c.text_dim, 32);
  EXPECT_EQ(c.freq_dim, 256);
  EXPECT_EQ(c.in_dim, 16);
  EXPECT_EQ(c.out_dim, 16);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_TRUE(c.cross_attn_norm);
  // No hyper-parameters in the file: the heads are dim / 128.
  EXPECT_TRUE(detect_wan_dit_shapes(store).heads_known);
  // The tiny DiT (dim 48) cannot show its heads: it needs a config, as its safetensors does.
  EXPECT_THROW(WanDiTConfig::from_weights(TensorStore::open(dit_data("gguf/wan_tiny48_f16.gguf"))), Error);
}

TEST(DitGguf, QuantizedMatricesStayPackedAndRunLikeDequantized) {
  const TensorStore store = TensorStore::open(dit_data(kMixed));
  const WanDiTConfig cfg = WanDiTConfig::from_weights(store);
  WeightReport report;
  WanDiTLoadOptions lo;
  lo.report = &report;
  const WanDiT packed(cfg, load_wan_dit(store, cfg, lo));
  EXPECT_TRUE(report.unused_keys.empty());
  EXPECT_EQ(report.num_tensors, static_cast<int64_t>(store.names().size()));
  const WanDiTWeights& w = packed.weights();
  // Quantized matrices are packed; F16/BF16 ones and the fp32 islands dense.
  ASSERT_TRUE(w.blocks[0].self_attn.q.packed.has_value());
  EXPECT_EQ(w.blocks[0].self_attn.q.packed->type, QuantType::Q4_K);
  EXPECT_FALSE(w.blocks[0].self_attn.q.weight.defined());
  ASSERT_TRUE(w.blocks[1].cross_attn.k.packed.has_value());
  EXPECT_EQ(w.blocks[1].cross_attn.k.packed->type, QuantType::Q2_K);
  EXPECT_FALSE(w.blocks[1].ffn_0.packed.has_value());  // F16
  EXPECT_EQ(w.blocks[1].ffn_0.weight.dtype(), DType::F32);
  EXPECT_FALSE(w.text_embedding_0.packed.has_value());  // BF16
  EXPECT_FALSE(w.time_projection_1.packed.has_value());
  EXPECT_FALSE(w.head.head.packed.has_value());
  int packed_count = 0;
  for (const WanDiTBlock& b : w.blocks)
    for (const Linear* l : {&b.self_attn.q, &b.self_attn.k, &b.self_attn.v, &b.self_attn.o, &b.cross_attn.q,
                            &b.cross_attn.k, &b.cross_attn.v, &b.cross_attn.o, &b.ffn_0, &b.ffn_2})
      packed_count += l->packed ? 1 : 0;
  EXPECT_EQ(packed_count, 18);  // 20 block matrices, 2 of them F16/BF16

  // Each output element is the same fp32 sgemm dot product over the same dequantized
  // values (every weight here fits one tile): equal bit for bit.
  const WanDiT dense = load(store, cfg, false);
  EXPECT_FALSE(dense.weights().blocks[0].self_attn.q.packed.has_value());
  for (const auto& [B, T, L] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 7}, {2, 3, 512}}) {
    const Inputs in = random_inputs(cfg, B, T, 4, 6, L, 10 + B);
    const Tensor a = packed.forward(in.x, in.t, in.ctx), b = dense.forward(in.x, in.t, in.ctx);
    expect_same_bits(a, b, fmt::format("B={} T={} L={}", B, T, L));
    const auto d = diff(a, Tensor::zeros(a.shape(), DType::F32));
    EXPECT_GT(d.max_abs, 0.01) << "output is not trivial";
    EXPECT_LT(d.max_abs, 1e3) << "output is sane";
  }
}

TEST(DitGguf, ConvertedTinyDitTracksItsFp32Original) {
  // The tiny DiT through convert.py (F16) and llama-quantize (Q8_0) against the
  // fp32 checkpoint it came from: names, reversed dims and the 5-D tensor right,
  // the difference only the rounding of the weights (F16: 2^-11 relative).
  const WanDiTConfig cfg = tiny48_config();
  const WanDiT ref(cfg, load_wan_dit(TensorStore::open(dit_data("tiny_dit/original.safetensors")), cfg));
  const Inputs in = random_inputs(cfg, 2, 3, 4, 4, 9, 77);
  const Tensor want = ref.forward(in.x, in.t, in.ctx);
  for (const auto& [file, tol] :
       {std::pair<const char*, double>{"gguf/wan_tiny48_f16.gguf", 2e-3}, {"gguf/wan_tiny48_q8_0.gguf", 1e-2}}) {
    const WanDiT m = load(TensorStore::open(dit_data(file)), cfg, true);
    const auto d = diff(m.forward(in.x, in.t, in.ctx), want);
    std::printf("  %-28s vs fp32 original: max|err| %.3e rel %.3e\n", file, d.max_abs, d.rel());
    EXPECT_LE(d.rel(), tol) << file;
    EXPECT_GT(d.max_abs, 0.0) << file << ": the weights were rounded, the output cannot be identical";
  }
  // Q8_0: only ffn.2 has whole 32-value rows (K = 64); the rest fell back to F16.
  const WanDiT q8 = load(TensorStore::open(dit_data("gguf/wan_tiny48_q8_0.gguf")), cfg, true);
  EXPECT_TRUE(q8.weights().blocks[0].ffn_2.packed.has_value());
  EXPECT_FALSE(q8.weights().blocks[0].ffn_0.packed.has_value());
}

TEST(DitGguf, OtherArchitecturesAreRefused) {
  for (const auto& [path, arch] :
       {std::pair<std::string, std::string>{std::string(T2V_TEST_DATA_DIR) + "/core/gguf/arch_flux.gguf", "flux"},
        {std::string(T2V_TEST_DATA_DIR) + "/text_encoder/gguf/umt5_tiny_q8_0.gguf", "t5encoder"}}) {
    const TensorStore store = TensorStore::open(path);
    try {
      detect_wan_dit_layout(store);
      ADD_FAILURE() << path << ": no error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), kExitDataErr);
      EXPECT_NE(std::string(e.what()).find("GGUF architecture '" + arch + "' where a Wan DiT was expected"),
                std::string::npos)
          << e.what();
    }
    EXPECT_THROW(WanDiTConfig::from_weights(store), Error);
  }
}

}  // namespace t2v
