// The weight source + scope idiom (core/weights.h): scope paths, layout renames,
// shape checks with notes, fp8 x scale_weight, dtype conversion and fp32
// islands, the one-error report of a dry run, the marker rule, unused keys, the
// delta and packed-weight hook points, and the random and listing sources.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
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

Tensor random_floats(const Shape& shape, float lo, float hi, uint32_t seed) {
  std::vector<float> v(static_cast<size_t>(shape.numel()));
  uint32_t x = seed * 2654435761u + 1;
  for (float& f : v) {
    x = x * 1664525u + 1013904223u;
    f = lo + (hi - lo) * static_cast<float>(x >> 8) / 16777216.0f;
  }
  return Tensor::from_floats(v, shape);
}

CheckpointOptions with_layout_name(const std::string& model) {
  CheckpointOptions o;
  o.model = model;
  return o;
}

}  // namespace

// ---- scopes -------------------------------------------------------------------------------

TEST(WeightScope, PrefixPathsJoinWithDots) {
  ListingSource listing;
  const WeightScope root(listing);
  EXPECT_EQ(root.key("patch_embedding.weight"), "patch_embedding.weight");
  const WeightScope attn = root.pp("blocks").pp(3).pp("self_attn");
  EXPECT_EQ(attn.prefix(), "blocks.3.self_attn");
  EXPECT_EQ(attn.key("q.weight"), "blocks.3.self_attn.q.weight");
  EXPECT_EQ(root.pp("encoder.block").pp(int64_t{11}).pp("layer.0").key("layer_norm.weight"),
            "encoder.block.11.layer.0.layer_norm.weight");
  EXPECT_EQ(attn.key(""), "blocks.3.self_attn");
  attn.get("q.weight", {4, 4});
  root.pp("head").get("modulation", {1, 2, 4}, WeightPrecision::F32);
  ASSERT_EQ(listing.requests().size(), 2u);
  EXPECT_EQ(listing.requests()[0], (WeightRequest{"blocks.3.self_attn.q.weight", {4, 4}, WeightPrecision::Compute}));
  EXPECT_EQ(listing.requests()[1], (WeightRequest{"head.modulation", {1, 2, 4}, WeightPrecision::F32}));
  EXPECT_TRUE(root.dry_run());
  const auto listed = list_weights([](const WeightScope& s) {
    s.pp("a").get("w", {2});
    s.get("b", {3, 1});
  });
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0].key, "a.w");
  EXPECT_EQ(listed[1].shape, (Shape{3, 1}));
}

TEST(WeightMarkers, OneRuleWithOrWithoutPrefixes) {
  for (const char* k : {"scaled_fp8", "model.diffusion_model.scaled_fp8", "spiece_model",
                        "text_encoders.umt5xxl.spiece_model", "blocks.0.self_attn.q.scale_weight",
                        "model.diffusion_model.blocks.0.ffn.0.scale_input", "a.scale_weight"})
    EXPECT_TRUE(is_marker_key(k)) << k;
  for (const char* k : {"blocks.0.self_attn.q.weight", "scale_shift_table", "scaled_fp8.weight", "head.modulation",
                        "spiece_model_extra", "x.scale_weights", "norm.scale"})
    EXPECT_FALSE(is_marker_key(k)) << k;
}

// ---- checkpoints --------------------------------------------------------------------------

TEST(CheckpointSource, RenamesStripPrefixAndConvertToComputeDtypeOrF32Island) {
  const std::string P = "model.diffusion_model.";
  const Tensor w = random_floats({2, 2}, -3, 3, 1);
  Checkpoint ck({{P + "blocks.0.attn1.to_q.weight", w}, {P + "head.modulation", w.reshape({1, 2, 2})}});
  TensorStore store = TensorStore::open(ck.path);
  CheckpointOptions o;
  o.dtype = DType::BF16;
  WeightLayout layout{"comfy", [P](const std::string& k) {  // canonical key -> this layout's key
                        return P + (k == "blocks.0.self_attn.q.weight" ? std::string("blocks.0.attn1.to_q.weight") : k);
                      }};
  CheckpointSource src(store, layout, o);
  const WeightScope root(src);
  EXPECT_TRUE(root.has("blocks.0.self_attn.q.weight"));
  EXPECT_FALSE(root.has(P + "head.modulation"));  // keys are asked for without the prefix
  EXPECT_EQ(src.file_key("head.modulation"), P + "head.modulation");
  const Tensor q = root.pp("blocks").pp(0).pp("self_attn").get("q.weight", {2, 2});
  ASSERT_TRUE(q.defined());
  EXPECT_EQ(q.dtype(), DType::BF16);  // the compute dtype
  EXPECT_EQ(q.device(), Device::CPU);
  EXPECT_NE(q.storage(), store.get(P + "blocks.0.attn1.to_q.weight").storage()) << "must not alias the mapping";
  EXPECT_EQ(q.to_vector(), w.to(DType::BF16).to_vector());
  // An fp32 island keeps the file's F32 values exactly, whatever the compute dtype.
  const Tensor m = root.get("head.modulation", {1, 2, 2}, WeightPrecision::F32);
  EXPECT_EQ(m.dtype(), DType::F32);
  EXPECT_EQ(m.to_vector(), w.to_vector());
  EXPECT_NE(m.storage(), store.get(P + "head.modulation").storage()) << "must not alias the mapping";
  const WeightReport r = src.finish();
  EXPECT_EQ(r.layout, "comfy");
  EXPECT_TRUE(r.unused_keys.empty());
  EXPECT_EQ(r.num_tensors, 2);
  EXPECT_EQ(r.num_params, 8);
}

TEST(CheckpointSource, ShapeMismatchNamesFileKeyCanonicalKeyShapesNoteAndHint) {
  Checkpoint ck({{"blocks.0.attn1.to_q.weight", Tensor::zeros({4, 4}, DType::F32)}});
  TensorStore store = TensorStore::open(ck.path);
  CheckpointOptions o = with_layout_name("Tiny DiT");
  o.config = "dim 2";
  o.shape_note = [](const std::string&, const Shape& found, const Shape&) {
    return found[0] == 4 ? ShapeNote{"this looks like the 14B model", "pass --config 14b"} : ShapeNote{};
  };
  const WeightLayout diffusers{"diffusers",
                              [](const std::string&) { return std::string("blocks.0.attn1.to_q.weight"); }};
  CheckpointSource src(store, diffusers, o);
  EXPECT_FALSE(WeightScope(src).get("blocks.0.self_attn.q.weight", {2, 2}).defined());
  Error e = expect_error([&] { src.finish(); });
  EXPECT_EQ(e.code(), 65);
  const std::string m = e.what();
  EXPECT_TRUE(contains(m, ck.path + " (Tiny DiT, diffusers layout) does not match the config (dim 2): "
                              "blocks.0.attn1.to_q.weight (canonical blocks.0.self_attn.q.weight) is [4, 4], config "
                              "expects [2, 2]: this looks like the 14B model; hint: pass --config 14b"))
      << m;
}

TEST(CheckpointSource, Fp8WeightsAreMultipliedByScaleWeight) {
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
  CheckpointSource f32(store, {}, {});
  CheckpointOptions bf;
  bf.dtype = DType::BF16;
  CheckpointSource bf16(store, {}, bf);
  std::vector<float> dec8 = w8.to_vector(), dec5 = w5.to_vector();
  std::vector<float> a = WeightScope(f32).get("a.weight", {2, 3}).to_vector();
  std::vector<float> b = WeightScope(bf16).get("b.weight", {2, 3}).to_vector();
  std::vector<float> c = WeightScope(f32).get("c.weight", {2, 3}).to_vector();
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(a[i], dec8[i] * 0.5f) << i;
    EXPECT_EQ(b[i], bf16_to_f32(f32_to_bf16(dec5[i] * 4.0f))) << i;
    EXPECT_EQ(c[i], dec8[i]) << i;
  }
  EXPECT_FALSE(WeightScope(f32).get("d.weight", {2, 3}).defined());  // a scale must be a single value
  Error e = expect_error([&] { f32.finish(); });
  EXPECT_TRUE(contains(e.what(), "d.scale_weight is F32[2], expected a single floating-point scale")) << e.what();
}

TEST(CheckpointSource, MissingKeysAreListedWithLayoutAndCounted) {
  Checkpoint ck({{"present", Tensor::zeros({1}, DType::F32)}});
  TensorStore store = TensorStore::open(ck.path);
  CheckpointSource src(store, {"diffusers", {}}, {});
  const WeightScope root(src);
  EXPECT_FALSE(root.get("head.modulation", {1, 2, 3}).defined());
  for (int i = 0; i < 10; ++i) root.pp("blocks").pp(i).get("w", {1});
  root.get("present", {1});
  Error e = expect_error([&] { src.finish(); });
  EXPECT_EQ(e.code(), 65);
  std::string m = e.what();
  EXPECT_TRUE(contains(m, "(diffusers layout)")) << m;
  EXPECT_TRUE(contains(m, "missing 11 tensors: head.modulation, blocks.0.w, blocks.1.w")) << m;
  EXPECT_TRUE(contains(m, "blocks.6.w, ... (3 more)")) << m;
  EXPECT_FALSE(contains(m, "blocks.7.w")) << m;
  EXPECT_TRUE(contains(m, ck.path)) << m;
  EXPECT_EQ(m.find('\n'), std::string::npos);
}

TEST(CheckpointSource, IntegerTensorIsADtypeProblem) {
  Checkpoint ck({{"ids", Tensor::zeros({3}, DType::I64)}, {"w", Tensor::zeros({3}, DType::F32)}});
  TensorStore store = TensorStore::open(ck.path);
  CheckpointSource src(store, {}, {});
  EXPECT_FALSE(WeightScope(src).get("ids", {3}).defined());
  EXPECT_TRUE(WeightScope(src).get("w", {3}).defined());
  Error e = expect_error([&] { src.finish(); });
  EXPECT_TRUE(contains(e.what(), "ids has dtype I64, expected a float type (F32, F16, BF16, F8_E4M3 or F8_E5M2)"))
      << e.what();
}

// A dry run reads headers only, hands out undefined tensors and reports every
// kind of problem in one error, headline keys first.
TEST(CheckpointSource, DryRunCollectsEveryProblemInOneError) {
  Checkpoint ck({{"a.weight", Tensor::zeros({2, 3}, DType::F32)},
                 {"b.weight", Tensor::zeros({5}, DType::F16)},
                 {"c.weight", Tensor::zeros({2}, DType::I32)},
                 {"q.weight", Tensor::zeros({7, 7}, DType::BF16)},
                 {"ok.weight", Tensor::zeros({4}, DType::F32)}});
  TensorStore store = TensorStore::open(ck.path);
  CheckpointOptions o = with_layout_name("Test model");
  o.dry_run = true;
  o.hint = "use the matching file";
  o.headline_keys = {"q.weight"};
  CheckpointSource src(store, {"original", {}}, o);
  const WeightScope root(src);
  EXPECT_TRUE(root.dry_run());
  EXPECT_FALSE(root.get("ok.weight", {4}).defined());  // fine, but nothing is read
  root.get("a.weight", {2, 3});                         // fine
  root.get("b.weight", {6});                            // wrong shape
  root.get("c.weight", {2});                            // integer
  root.get("missing.weight", {1});
  root.get("q.weight", {4, 4});  // wrong shape, listed first
  src.report("the checkpoint has 3 blocks, the config 2 layers");
  Error e = expect_error([&] { src.finish(); });
  EXPECT_EQ(e.code(), 65);
  const std::string m = e.what();
  std::printf("  %s\n", m.c_str());
  EXPECT_TRUE(contains(m, "(Test model, original layout) does not match the config: q.weight is [7, 7], config "
                          "expects [4, 4]; b.weight is [5], config expects [6]; c.weight has dtype I32"))
      << m;
  EXPECT_TRUE(contains(m, "; the checkpoint has 3 blocks, the config 2 layers")) << m;
  EXPECT_TRUE(contains(m, "missing 1 tensor: missing.weight; hint: use the matching file")) << m;
  EXPECT_EQ(m.find('\n'), std::string::npos);
}

TEST(CheckpointSource, DryRunReadsNoDataAndCountsWhatItWouldBind) {
  Checkpoint ck({{"a", Tensor::zeros({4}, DType::F32)}, {"b", Tensor::zeros({1024}, DType::F16)}});
  TensorStore store = TensorStore::open(ck.path);
  // Truncate behind the mapping: a dry run must not touch the data (no SIGBUS,
  // no Error(74)); a real get refuses before copying.
  ASSERT_EQ(::truncate(ck.path.c_str(), 100), 0);
  CheckpointOptions o;
  o.dry_run = true;
  CheckpointSource dry(store, {}, o);
  EXPECT_FALSE(WeightScope(dry).get("a", {4}).defined());
  EXPECT_FALSE(WeightScope(dry).get("b", {1024}).defined());
  const WeightReport r = dry.finish();
  EXPECT_EQ(r.num_tensors, 2);
  EXPECT_EQ(r.num_params, 1028);
  CheckpointSource real(store, {}, {});
  Error e = expect_error([&] { WeightScope(real).get("b", {1024}); });
  EXPECT_EQ(e.code(), 74);
  EXPECT_TRUE(contains(e.what(), "file changed while loading")) << e.what();
}

TEST(CheckpointSource, UnusedKeysWarnOrFailWhenStrictMarkersAndOnPurposeExcluded) {
  Checkpoint ck({{"used.weight", Tensor::zeros({2}, DType::F32)},
                 {"extra.weight", Tensor::zeros({2}, DType::F32)},
                 {"encoder.conv.weight", Tensor::zeros({2}, DType::F32)},
                 {"scaled_fp8", Tensor::empty({0}, DType::F8_E4M3)},
                 {"used.scale_input", Tensor::full({1}, 1.0f)},
                 {"other.scale_weight", Tensor::full({1}, 1.0f)},
                 {"spiece_model", Tensor::zeros({4}, DType::U8)}});
  TensorStore store = TensorStore::open(ck.path);
  auto bind = [](const WeightScope& root, CheckpointSource&) { root.get("used.weight", {2}); };
  CheckpointOptions o;
  o.unbound_on_purpose = [](const std::string& k) { return k.rfind("encoder.", 0) == 0; };
  const WeightReport r = bind_checkpoint(store, {}, o, bind);
  EXPECT_EQ(r.unused_keys, (std::vector<std::string>{"extra.weight"}));
  o.strict = true;
  o.model = "Test model";
  Error e = expect_error([&] { bind_checkpoint(store, {}, o, bind); });
  EXPECT_EQ(e.code(), 65);
  EXPECT_TRUE(contains(e.what(), "(Test model, original layout): 1 unexpected tensor the model does not use: "
                                 "extra.weight; hint: the file holds weights this model does not use; drop --strict"))
      << e.what();
  o.unbound_on_purpose = {};
  e = expect_error([&] { bind_checkpoint(store, {}, o, bind); });
  EXPECT_TRUE(contains(e.what(), "2 unexpected tensors the model does not use: encoder.conv.weight, extra.weight"))
      << e.what();
}

// The mapping is valid only while the file keeps its size: a file truncated between two
// tensors (a re-download over it) is an I/O error before the lost pages are touched, not
// SIGBUS (docs/bad_inputs.md #23).
TEST(CheckpointSource, FileShrinkingDuringLoadIsAnIOError) {
  Checkpoint ck({{"a", Tensor::zeros({4}, DType::F32)}, {"b", Tensor::zeros({1024}, DType::F32)}});
  TensorStore store = TensorStore::open(ck.path);
  CheckpointSource src(store, {}, {});
  EXPECT_TRUE(src.get({"a", Shape{4}}).defined());
  ASSERT_EQ(::truncate(ck.path.c_str(), 100), 0);
  Error e = expect_error([&] { src.get({"b", Shape{1024}}); });
  EXPECT_EQ(e.code(), 74);
  EXPECT_TRUE(contains(e.what(), "file changed while loading")) << e.what();
}

// bind_checkpoint: the dry pass raises every problem before any data is read
// (a truncated file gives the mismatch error, not an I/O error), and the real
// pass runs the same bind.
TEST(CheckpointSource, BindCheckpointDryRunsFirst) {
  const Tensor w = random_floats({3, 2}, -1, 1, 7);
  Checkpoint ck({{"w", w}, {"v", Tensor::zeros({1024}, DType::F32)}});
  TensorStore store = TensorStore::open(ck.path);
  int calls = 0;
  Tensor bound;
  const WeightReport r = bind_checkpoint(store, {}, {}, [&](const WeightScope& root, CheckpointSource& src) {
    ++calls;
    bound = root.get("w", {3, 2});
    root.get("v", {1024});
    EXPECT_EQ(src.dry_run(), calls == 1);
  });
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(bound.to_vector(), w.to_vector());
  EXPECT_EQ(r.num_params, 1030);
  CheckpointOptions dry;
  dry.dry_run = true;
  calls = 0;
  bind_checkpoint(store, {}, dry, [&](const WeightScope& root, CheckpointSource&) {
    ++calls;
    bound = root.get("w", {3, 2});
  });
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(bound.defined());
  ASSERT_EQ(::truncate(ck.path.c_str(), 100), 0);
  Error e = expect_error([&] {
    bind_checkpoint(store, {}, {}, [&](const WeightScope& root, CheckpointSource&) {
      root.get("w", {3, 2});
      root.get("v", {1000});
    });
  });
  EXPECT_EQ(e.code(), 65) << e.what();
  EXPECT_TRUE(contains(e.what(), "v is [1024], config expects [1000]")) << e.what();
}

// ---- hook points --------------------------------------------------------------------------

namespace {

// W += s · up @ down on one key, as a LoRA merge would do.
class LowRankDelta : public WeightDelta {
 public:
  LowRankDelta(std::string key, Tensor up, Tensor down, float scale)
      : key_(std::move(key)), up_(std::move(up)), down_(std::move(down)), scale_(scale) {}
  bool touches(const std::string& key) const override { return key == key_; }
  void apply(const std::string& key, Tensor& w) const override {
    EXPECT_EQ(key, key_);
    EXPECT_EQ(w.dtype(), DType::F32);
    ++calls;
    const int64_t out = w.size(0), in = w.size(1), r = up_.size(1);
    float* p = w.data<float>();
    for (int64_t i = 0; i < out; ++i)
      for (int64_t j = 0; j < in; ++j) {
        float acc = 0;
        for (int64_t k = 0; k < r; ++k) acc += up_.data<float>()[i * r + k] * down_.data<float>()[k * in + j];
        p[i * in + j] += scale_ * acc;
      }
  }
  mutable int calls = 0;

 private:
  std::string key_;
  Tensor up_, down_;
  float scale_;
};

}  // namespace

TEST(WeightHooks, DeltaIsAddedInFp32AfterDequantizationBeforeTheCast) {
  const Tensor w = random_floats({3, 4}, -2, 2, 3);
  const Tensor w8 = w.to(DType::F8_E4M3);
  const Tensor other = random_floats({4}, -1, 1, 4);
  Checkpoint ck(
      {{"lin.weight", w8}, {"lin.scale_weight", Tensor::full({}, 0.25f)}, {"lin.bias", other.to(DType::BF16)}});
  TensorStore store = TensorStore::open(ck.path);
  const Tensor up = random_floats({3, 2}, -1, 1, 5), down = random_floats({2, 4}, -1, 1, 6);
  auto delta = std::make_shared<LowRankDelta>("lin.weight", up, down, 0.5f);
  CheckpointOptions o;
  o.dtype = DType::BF16;
  o.delta = delta;
  Tensor got_w, got_b;
  bind_checkpoint(store, {}, o, [&](const WeightScope& root, CheckpointSource&) {
    got_w = root.pp("lin").get("weight", {3, 4});
    got_b = root.pp("lin").get("bias", {4});
  });
  EXPECT_EQ(delta->calls, 1) << "once, in the real pass only";
  ASSERT_EQ(got_w.dtype(), DType::BF16);
  const std::vector<float> dq = w8.to_vector(), v = got_w.to_vector();
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 4; ++j) {
      float acc = 0;
      for (int64_t k = 0; k < 2; ++k) acc += up.data<float>()[i * 2 + k] * down.data<float>()[k * 4 + j];
      const float want = bf16_to_f32(f32_to_bf16(dq[i * 4 + j] * 0.25f + 0.5f * acc));
      EXPECT_EQ(v[i * 4 + j], want) << i << "," << j;
    }
  // A key the delta does not touch is converted straight from the file.
  EXPECT_EQ(got_b.to_vector(), other.to(DType::BF16).to_vector());
}

namespace {

// A source that keeps one weight in a packed format (as a GGUF source would).
class PackingSource : public WeightSource {
 public:
  PackingSource() : WeightSource(Device::CPU, DType::F32) {}
  bool has(const std::string&) const override { return true; }
  Tensor get(const WeightRequest& r) override { return Tensor::full(r.shape, 1.0f); }
  std::optional<PackedWeight> get_packed(const WeightRequest& r) override {
    if (r.key != "blocks.0.ffn.0.weight") return std::nullopt;
    const int64_t blocks = r.shape.numel() / 32;
    return PackedWeight{QuantType::Q8_0, r.shape, Tensor::zeros({blocks * 34}, DType::U8)};
  }
};

}  // namespace

TEST(WeightHooks, SourceMayHandOutAPackedWeight) {
  PackingSource src;
  const WeightScope blk = WeightScope(src).pp("blocks").pp(0);
  const MaybePacked packed = blk.get_packable("ffn.0.weight", {64, 32});
  ASSERT_TRUE(packed.packed.has_value());
  EXPECT_FALSE(packed.dense.defined());
  EXPECT_STREQ(packed.packed->format(), "Q8_0");
  EXPECT_EQ(packed.packed->shape, (Shape{64, 32}));
  EXPECT_EQ(packed.packed->data.numel(), 64 * 34);
  const MaybePacked dense = blk.get_packable("ffn.2.weight", {32, 64});
  EXPECT_FALSE(dense.packed.has_value());
  ASSERT_TRUE(dense.dense.defined());
  EXPECT_EQ(dense.dense.shape(), (Shape{32, 64}));
  // The checkpoint source hands out dense tensors for everything but GGUF blocks.
  Checkpoint ck({{"w", Tensor::zeros({2, 2}, DType::F16)}});
  TensorStore store = TensorStore::open(ck.path);
  CheckpointSource cs(store, {}, {});
  const MaybePacked c = WeightScope(cs).get_packable("w", {2, 2});
  EXPECT_FALSE(c.packed.has_value());
  EXPECT_EQ(c.dense.dtype(), DType::F32);
}

// ---- random source ----------------------------------------------------------------------

TEST(RandomSource, DeterministicFromSeedAndKeyNotOrder) {
  RandomSource a(42), b(42), other_seed(43);
  const Tensor w1 = WeightScope(a).get("blocks.0.q.weight", {64, 128});
  const Tensor v1 = WeightScope(a).get("blocks.0.norm.weight", {128}, WeightPrecision::F32);
  // Reverse order on a second source with the same seed: identical values.
  const Tensor v2 = WeightScope(b).get("blocks.0.norm.weight", {128}, WeightPrecision::F32);
  const Tensor w2 = WeightScope(b).pp("blocks").pp(0).get("q.weight", {64, 128});
  EXPECT_EQ(w1.to_vector(), w2.to_vector());
  EXPECT_EQ(v1.to_vector(), v2.to_vector());
  EXPECT_NE(WeightScope(other_seed).get("blocks.0.q.weight", {64, 128}).to_vector(), w1.to_vector());
  EXPECT_NE(WeightScope(a).get("blocks.1.q.weight", {64, 128}).to_vector(), w1.to_vector());
  // Scale: N(0, 1/fan_in) for matrices, 0.02 N(0, 1) for vectors.
  auto stddev = [](const Tensor& t) {
    double s = 0, s2 = 0;
    for (float x : t.to_vector()) s += x, s2 += double(x) * x;
    const double n = static_cast<double>(t.numel());
    return std::sqrt(s2 / n - (s / n) * (s / n));
  };
  EXPECT_NEAR(stddev(w1), 1.0 / std::sqrt(128.0), 0.05 / std::sqrt(128.0));
  EXPECT_NEAR(stddev(WeightScope(a).get("big_vector", {20000})), 0.02, 0.001);
  // Compute dtype and fp32 islands.
  RandomSource half(42, Device::CPU, DType::BF16);
  const Tensor h = WeightScope(half).get("blocks.0.q.weight", {64, 128});
  EXPECT_EQ(h.dtype(), DType::BF16);
  EXPECT_EQ(h.to_vector(), w1.to(DType::BF16).to_vector());
  EXPECT_EQ(WeightScope(half).get("blocks.0.norm.weight", {128}, WeightPrecision::F32).to_vector(), v1.to_vector());
}
