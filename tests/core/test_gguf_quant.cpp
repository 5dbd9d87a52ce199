// Dequantization of every GGUF type t2v reads against the `gguf` package's
// gguf.quants.dequantize (tools/make_gguf_fixtures.py wrote each tensor with its
// golden beside it): bit for bit. And CheckpointSource on a GGUF: dequantized at
// load, or handed out packed (core/weights.h get_packed).
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/gguf.h"
#include "core/quant.h"
#include "core/weights.h"

using namespace t2v;

namespace {

const std::string kGoldens = std::string(T2V_TEST_DATA_DIR) + "/core/gguf/quant_goldens.gguf";

std::vector<nlohmann::json> listing() {
  std::ifstream f(std::string(T2V_TEST_DATA_DIR) + "/core/gguf/quant_goldens.json");
  const nlohmann::json j = nlohmann::json::parse(f);
  return j["tensors"].get<std::vector<nlohmann::json>>();
}

// Bitwise equality of two F32 tensors (NaN-safe, -0 != +0), naming the first difference.
void expect_same_bits(const Tensor& got, const Tensor& want, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  ASSERT_EQ(got.dtype(), DType::F32);
  ASSERT_EQ(want.dtype(), DType::F32);
  const auto* g = got.data<float>();
  const auto* w = want.data<float>();
  for (int64_t i = 0; i < got.numel(); ++i) {
    uint32_t a, b;
    std::memcpy(&a, g + i, 4);
    std::memcpy(&b, w + i, 4);
    ASSERT_EQ(a, b) << what << " element " << i << ": got " << g[i] << ", the package gives " << w[i];
  }
}

}  // namespace

TEST(GgufQuant, DequantizationMatchesThePackageBitForBit) {
  const TensorStore store = TensorStore::open(kGoldens);
  std::set<std::string> types;
  for (const nlohmann::json& t : listing()) {
    const std::string name = t["name"], type = t["type"];
    SCOPED_TRACE(name);
    const TensorInfo& info = store.info(name);
    EXPECT_STREQ(tensor_type_name(info), type.c_str());
    EXPECT_EQ(info.shape, Shape(t["shape"].get<std::vector<int64_t>>()));
    const Tensor golden = store.get(name + ".golden");
    Tensor got;
    if (info.quant) {
      got = Tensor::empty(info.shape, DType::F32);
      dequantize(*info.quant, store.get(name).raw(), got.data<float>(), got.numel());
    } else {
      got = store.get(name).to(DType::F32);
    }
    expect_same_bits(got, golden, name);
    // Values are not trivial: the blocks hold spread-out numbers.
    std::set<float> distinct(golden.data<float>(), golden.data<float>() + golden.numel());
    EXPECT_GT(distinct.size(), static_cast<size_t>(std::min<int64_t>(golden.numel() / 4, 8))) << name;
    types.insert(type);
  }
  EXPECT_EQ(types.size(), 13u) << "every type t2v reads has goldens";
}

TEST(GgufQuant, TraitsMatchTheBlockLayouts) {
  // Sizes from ggml-common.h (static_asserts on block_q4_0 ... block_q6_K).
  const std::vector<std::tuple<QuantType, int64_t, int64_t>> want = {
      {QuantType::Q4_0, 32, 18},   {QuantType::Q4_1, 32, 20},   {QuantType::Q5_0, 32, 22},
      {QuantType::Q5_1, 32, 24},   {QuantType::Q8_0, 32, 34},   {QuantType::Q2_K, 256, 84},
      {QuantType::Q3_K, 256, 110}, {QuantType::Q4_K, 256, 144}, {QuantType::Q5_K, 256, 176},
      {QuantType::Q6_K, 256, 210},
  };
  for (const auto& [t, elems, bytes] : want) {
    EXPECT_EQ(quant_traits(t).block_elems, elems) << quant_name(t);
    EXPECT_EQ(quant_traits(t).block_bytes, bytes) << quant_name(t);
    EXPECT_EQ(quant_bytes(t, 4 * elems), 4 * bytes);
  }
}

TEST(GgufQuant, CheckpointSourceDequantizesAtLoadOrHandsOutBlocks) {
  const TensorStore store = TensorStore::open(kGoldens);
  CheckpointOptions opts;
  CheckpointSource src(store, {}, opts);
  const WeightScope root(src);
  // get(): the reference's fp32 values, then the requested dtype.
  const Tensor q = root.get("q5_k.0", Shape{3, 256}, WeightPrecision::F32);
  expect_same_bits(q, store.get("q5_k.0.golden"), "q5_k.0 via get()");
  // get_packable(): the blocks as stored (fp32 compute on the CPU).
  const MaybePacked p = root.get_packable("q3_k.1", Shape{1, 512});
  ASSERT_TRUE(p.packed.has_value());
  EXPECT_FALSE(p.dense.defined());
  EXPECT_EQ(p.packed->type, QuantType::Q3_K);
  EXPECT_EQ(p.packed->shape, (Shape{1, 512}));
  EXPECT_EQ(p.packed->row_bytes(), 2 * 110);
  const Tensor raw = store.get("q3_k.1");
  ASSERT_EQ(p.packed->data.nbytes(), raw.nbytes());
  EXPECT_EQ(std::memcmp(p.packed->data.raw(), raw.raw(), raw.nbytes()), 0);
  EXPECT_NE(p.packed->data.storage(), raw.storage()) << "owned memory, not a view of the mapping";
  // Plain dtypes are never packed.
  EXPECT_FALSE(root.get_packable("f16.0", Shape{3, 7}).packed.has_value());
  const WeightReport r = src.finish();
  EXPECT_EQ(r.num_tensors, 3);
  EXPECT_EQ(r.num_params, 3 * 256 + 512 + 21);

  // Another compute dtype (a GPU backend) or keep_packed = false: dense, dequantized.
  CheckpointOptions bf16 = opts;
  bf16.dtype = DType::BF16;
  CheckpointSource src16(store, {}, bf16);
  const MaybePacked d = WeightScope(src16).get_packable("q8_0.2", Shape{3, 256});
  EXPECT_FALSE(d.packed.has_value());
  ASSERT_EQ(d.dense.dtype(), DType::BF16);
  EXPECT_EQ(d.dense.to(DType::F32).to_vector(), store.get("q8_0.2.golden").to(DType::BF16).to(DType::F32).to_vector());
  CheckpointOptions unpacked = opts;
  unpacked.keep_packed = false;
  CheckpointSource src32(store, {}, unpacked);
  const MaybePacked u = WeightScope(src32).get_packable("q4_0.1", Shape{1, 32});
  EXPECT_FALSE(u.packed.has_value());
  expect_same_bits(u.dense, store.get("q4_0.1.golden"), "q4_0.1 unpacked");

  // A dry run hands out packed weights without data; a wrong shape falls to get() and is reported.
  CheckpointOptions dry = opts;
  dry.dry_run = true;
  CheckpointSource check(store, {}, dry);
  const MaybePacked pd = WeightScope(check).get_packable("q6_k.0", Shape{3, 256});
  ASSERT_TRUE(pd.packed.has_value());
  EXPECT_FALSE(pd.packed->data.defined());
  EXPECT_FALSE(WeightScope(check).get_packable("q6_k.1", Shape{2, 256}).packed.has_value());
  try {
    check.finish();
    ADD_FAILURE() << "a misshaped tensor must be reported";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), 65);
    EXPECT_NE(std::string(e.what()).find("q6_k.1 is [1, 512], config expects [2, 256]"), std::string::npos) << e.what();
  }
}
