// umT5 from a GGUF with llama.cpp's T5 names (as city96's umT5-XXL GGUFs;
// tools/golden/gen_gguf_models.py): the name table, the config from shapes, the
// forward against the fp32 checkpoint it was quantized from, and GGUFs of other
// families refused by their architecture.
#include <gtest/gtest.h>

#include <cmath>

#include "core/gguf.h"
#include "core/philox.h"
#include "text_encoder/umt5.h"

namespace t2v {
namespace {

const std::string kGguf = std::string(T2V_TEST_DATA_DIR) + "/text_encoder/gguf/umt5_tiny_q8_0.gguf";
const std::string kFp32 = std::string(T2V_TEST_DATA_DIR) + "/pipeline/tiny_wan/text_encoder";

}  // namespace

TEST(UMT5Gguf, LlamaCppNamesMapOntoTheTransformersKeys) {
  const TensorStore store = TensorStore::open(kGguf);
  const UMT5Layout layout = detect_umt5_layout(store);
  EXPECT_EQ(layout.name, "gguf");
  EXPECT_EQ(umt5_file_key(layout, "shared.weight"), "token_embd.weight");
  EXPECT_EQ(umt5_file_key(layout, "encoder.final_layer_norm.weight"), "enc.output_norm.weight");
  EXPECT_EQ(umt5_file_key(layout, "encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight"),
            "enc.blk.1.attn_rel_b.weight");
  EXPECT_EQ(umt5_file_key(layout, "encoder.block.0.layer.1.DenseReluDense.wi_0.weight"), "enc.blk.0.ffn_gate.weight");
  EXPECT_EQ(umt5_file_key(layout, "encoder.block.0.layer.1.DenseReluDense.wi_1.weight"), "enc.blk.0.ffn_up.weight");
  EXPECT_EQ(umt5_file_key(layout, "encoder.block.0.layer.1.DenseReluDense.wo.weight"), "enc.blk.0.ffn_down.weight");
  // Every tensor of the file is bound, none missing.
  const UMT5Config cfg = UMT5Config::from_json(kFp32 + "/config.json");
  WeightReport report;
  UMT5LoadOptions lo;
  lo.report = &report;
  lo.strict = true;
  UMT5Encoder::load(store, cfg, lo);
  EXPECT_EQ(report.layout, "llama.cpp T5 GGUF");
  EXPECT_EQ(report.num_tensors, static_cast<int64_t>(store.names().size()));
}

TEST(UMT5Gguf, ConfigFromShapesMatchesConfigJson) {
  const UMT5Config got = UMT5Config::from_weights(TensorStore::open(kGguf));
  const UMT5Config want = UMT5Config::from_json(kFp32 + "/config.json");
  EXPECT_EQ(got.summary(), want.summary());
  EXPECT_EQ(got.relative_attention_num_buckets, want.relative_attention_num_buckets);
}

TEST(UMT5Gguf, ForwardTracksTheFp32Checkpoint) {
  // Q8_0 moves each weight matrix by 0.5% (relative Frobenius norm); through two
  // random layers with unscaled attention the last hidden state moves 2.7%
  // (measured). A swapped or transposed weight would move it by O(1). The exact
  // check against the gguf package's dequantization is tests/app/gguf_test.cpp.
  const UMT5Config cfg = UMT5Config::from_json(kFp32 + "/config.json");
  const UMT5Encoder q = UMT5Encoder::load(kGguf, cfg);
  const UMT5Encoder ref = UMT5Encoder::load(kFp32, cfg);
  std::vector<float> ids;
  for (int i = 0; i < 2 * 11; ++i) ids.push_back(static_cast<float>((i * 37 + 5) % cfg.vocab_size));
  const Tensor input_ids = Tensor::from_floats(ids, Shape{2, 11}).to(DType::I64);
  const Tensor a = q.forward(input_ids, Tensor()), b = ref.forward(input_ids, Tensor());
  const auto va = a.to_vector(), vb = b.to_vector();
  double num = 0, den = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    num += (va[i] - vb[i]) * static_cast<double>(va[i] - vb[i]);
    den += vb[i] * static_cast<double>(vb[i]);
  }
  const double rel = std::sqrt(num / den);
  std::printf("  umT5 Q8_0 GGUF vs fp32: relative error %.3e\n", rel);
  EXPECT_LT(rel, 1e-1);  // ~4x the measured 2.7e-2
  EXPECT_GT(rel, 0.0) << "the weights were rounded, the output cannot be identical";
}

TEST(UMT5Gguf, OtherArchitecturesAreRefused) {
  const TensorStore dit = TensorStore::open(std::string(T2V_TEST_DATA_DIR) + "/diffusion/gguf/wan_tiny48_f16.gguf");
  try {
    detect_umt5_layout(dit);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), kExitDataErr);
    EXPECT_NE(std::string(e.what()).find("GGUF architecture 'wan' where a umT5 text encoder was expected"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace t2v
