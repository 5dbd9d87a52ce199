// WeightLoader: prefix strip, renaming, shape checks with hints, fp8 x scale_weight,
// dtype conversion, the missing-key listing and unused keys.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "core/weights.h"

using namespace t2v;
namespace fs = std::filesystem;

namespace {

struct Checkpoint {
  fs::path dir;
  std::string path;
  explicit Checkpoint(const std::vector<std::pair<std::string, Tensor>>& ts) {
    std::string t = (fs::temp_directory_path() / "t2v_weights_XXXXXX").string();
    EXPECT_NE(::mkdtemp(t.data()), nullptr);
    dir = t;
    path = (dir / "model.safetensors").string();
    save_safetensors(path, ts);
  }
  ~Checkpoint() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

template <class F>
Error expect_error(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "no t2v::Error thrown";
  return Error(0, "");
}

bool contains(const std::string& s, const std::string& sub) { return s.find(sub) != std::string::npos; }

}  // namespace

TEST(WeightLoader, StripsPrefixRenamesAndConverts) {
  const std::string P = "model.diffusion_model.";
  Tensor w = Tensor::from_floats({1.0f, 2.5f, -3.0f, 0.1f}, {2, 2});
  Checkpoint ck({{P + "blocks.0.attn1.to_q.weight", w.to(DType::BF16)}, {P + "head.w", w}});
  TensorStore store = TensorStore::open(ck.path);
  WeightLoaderOptions o;
  o.dtype = DType::BF16;
  o.layout = "comfy";
  o.strip_prefix = P;
  o.rename = [](const std::string& k) {  // original key -> this layout's key
    return k == "blocks.0.self_attn.q.weight" ? std::string("blocks.0.attn1.to_q.weight") : k;
  };
  WeightLoader L(store, o);
  EXPECT_TRUE(L.has("blocks.0.self_attn.q.weight"));
  EXPECT_FALSE(L.has(P + "head.w"));  // keys are asked for without the prefix
  Tensor q = L.get("blocks.0.self_attn.q.weight", {2, 2});
  ASSERT_TRUE(q.defined());
  EXPECT_EQ(q.dtype(), DType::BF16);
  EXPECT_EQ(q.device(), Device::CPU);
  EXPECT_NE(q.storage(), store.get(P + "blocks.0.attn1.to_q.weight").storage()) << "must not alias the mapping";
  Tensor q32 = L.get_f32("blocks.0.self_attn.q.weight", {2, 2});
  EXPECT_EQ(q32.to_vector(), w.to(DType::BF16).to_vector());
  Tensor h = L.get_as("head.w", {2, 2}, DType::F16);
  EXPECT_EQ(h.dtype(), DType::F16);
  EXPECT_EQ(h.to_vector(), w.to(DType::F16).to_vector());
  EXPECT_NO_THROW(L.finish(true));
  EXPECT_TRUE(L.unused_keys().empty());
}

TEST(WeightLoader, ShapeMismatchNamesKeyShapesAndHint) {
  Checkpoint ck({{"blocks.0.self_attn.q.weight", Tensor::zeros({4, 4}, DType::F32)}});
  TensorStore store = TensorStore::open(ck.path);
  WeightLoaderOptions o;
  o.shape_hint = [](const std::string&, const Shape& found, const Shape&) {
    return found[0] == 4 ? std::string("this looks like the 14B model; pass --model-size 14B") : std::string();
  };
  WeightLoader L(store, o);
  EXPECT_FALSE(L.get("blocks.0.self_attn.q.weight", {2, 2}).defined());
  Error e = expect_error([&] { L.finish(); });
  EXPECT_EQ(e.code(), 65);
  EXPECT_TRUE(contains(e.what(), "blocks.0.self_attn.q.weight is [4, 4], config expects [2, 2]: this looks like "
                                 "the 14B model; pass --model-size 14B"))
      << e.what();
}

TEST(WeightLoader, Fp8WeightsAreMultipliedByScaleWeight) {
  Tensor w = Tensor::from_floats({1.0f, -2.0f, 0.5f, 448.0f, 3.0f, -0.25f}, {2, 3});
  Tensor w8 = w.to(DType::F8_E4M3), w5 = w.to(DType::F8_E5M2);
  Checkpoint ck({{"scaled_fp8", Tensor::empty({0}, DType::F8_E4M3)},
                 {"a.weight", w8},
                 {"a.scale_weight", Tensor::full({}, 0.5f)},  // 0-d, as Comfy writes it
                 {"b.weight", w5},
                 {"b.scale_weight", Tensor::full({1}, 4.0f)},  // 1-element
                 {"b.scale_input", Tensor::full({1}, 1.0f)},
                 {"c.weight", w8},  // fp8 without a scale: plain cast
                 {"d.weight", w8},
                 {"d.scale_weight", Tensor::full({2}, 1.0f)}});
  TensorStore store = TensorStore::open(ck.path);
  WeightLoader L(store, {});
  std::vector<float> dec8 = w8.to_vector(), dec5 = w5.to_vector();
  std::vector<float> a = L.get("a.weight", {2, 3}).to_vector();
  std::vector<float> b = L.get_as("b.weight", {2, 3}, DType::BF16).to_vector();
  std::vector<float> c = L.get("c.weight", {2, 3}).to_vector();
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(a[i], dec8[i] * 0.5f) << i;
    EXPECT_EQ(b[i], bf16_to_f32(f32_to_bf16(dec5[i] * 4.0f))) << i;
    EXPECT_EQ(c[i], dec8[i]) << i;
  }
  EXPECT_FALSE(L.get("d.weight", {2, 3}).defined());  // a scale must be a single value
  Error e = expect_error([&] { L.finish(); });
  EXPECT_TRUE(contains(e.what(), "d.scale_weight is F32[2], expected a single floating-point scale")) << e.what();
}

TEST(WeightLoader, MissingKeysAreListedWithLayout) {
  Checkpoint ck({{"present", Tensor::zeros({1}, DType::F32)}});
  TensorStore store = TensorStore::open(ck.path);
  WeightLoaderOptions o;
  o.layout = "diffusers";
  WeightLoader L(store, o);
  EXPECT_FALSE(L.get("head.modulation", {1, 2, 3}).defined());
  for (int i = 0; i < 10; ++i) L.get("blocks." + std::to_string(i) + ".w", {1});
  L.get("present", {1});
  Error e = expect_error([&] { L.finish(); });
  EXPECT_EQ(e.code(), 65);
  std::string m = e.what();
  EXPECT_TRUE(contains(m, "missing 11 tensors for layout 'diffusers': head.modulation, blocks.0.w, blocks.1.w")) << m;
  EXPECT_TRUE(contains(m, "blocks.6.w, ... (3 more)")) << m;
  EXPECT_FALSE(contains(m, "blocks.7.w")) << m;
  EXPECT_TRUE(contains(m, ck.path)) << m;
  EXPECT_EQ(m.find('\n'), std::string::npos);
}

TEST(WeightLoader, DtypeKindMismatchIsAProblem) {
  Checkpoint ck({{"ids", Tensor::zeros({3}, DType::I64)}, {"w", Tensor::zeros({3}, DType::F32)}});
  TensorStore store = TensorStore::open(ck.path);
  WeightLoader L(store, {});
  EXPECT_FALSE(L.get("ids", {3}).defined());
  Tensor ok = L.get_as("w", {3}, DType::F32);
  EXPECT_TRUE(ok.defined());
  Error e = expect_error([&] { L.finish(); });
  EXPECT_TRUE(contains(e.what(), "ids has dtype I64, expected floating-point data (F32)")) << e.what();
}

TEST(WeightLoader, UnusedKeysWarnOrFailWhenStrict) {
  Checkpoint ck({{"used.weight", Tensor::zeros({2}, DType::F32)},
                 {"extra.weight", Tensor::zeros({2}, DType::F32)},
                 {"scaled_fp8", Tensor::empty({0}, DType::F8_E4M3)},
                 {"used.scale_input", Tensor::full({1}, 1.0f)},
                 {"other.scale_weight", Tensor::full({1}, 1.0f)},
                 {"spiece_model", Tensor::zeros({4}, DType::U8)}});
  TensorStore store = TensorStore::open(ck.path);
  {
    WeightLoader L(store, {});
    L.get("used.weight", {2});
    EXPECT_NO_THROW(L.finish(false));
    EXPECT_EQ(L.unused_keys(), (std::vector<std::string>{"extra.weight"}));
  }
  {
    WeightLoaderOptions o;
    o.layout = "original";
    WeightLoader L(store, o);
    L.get("used.weight", {2});
    Error e = expect_error([&] { L.finish(true); });
    EXPECT_EQ(e.code(), 65);
    EXPECT_TRUE(contains(e.what(), "1 unexpected tensor for layout 'original': extra.weight")) << e.what();
  }
}

TEST(WeightLoader, FileShrinkingDuringLoadIsAnIOError) {
  Checkpoint ck({{"a", Tensor::zeros({4}, DType::F32)}, {"b", Tensor::zeros({1024}, DType::F32)}});
  TensorStore store = TensorStore::open(ck.path);
  WeightLoader L(store, {});
  EXPECT_TRUE(L.get("a", {4}).defined());
  // Truncate behind the mapping: the loader must refuse before touching the lost pages.
  ASSERT_EQ(::truncate(ck.path.c_str(), 100), 0);
  Error e = expect_error([&] { L.get("b", {1024}); });
  EXPECT_EQ(e.code(), 74);
  EXPECT_TRUE(contains(e.what(), "file changed while loading")) << e.what();
}
