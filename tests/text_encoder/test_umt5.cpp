// umT5 encoder against transformers' UMT5EncoderModel outputs
// (tools/gen_umt5_goldens.py): fp32, bf16/f16-rounded and ComfyUI scaled-fp8
// weights, the Wan and transformers key layouts, the Wan context padding, the
// probe, and the real-size umt5-xxl tensor table.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "core/safetensors.h"
#include "kernels/test_device/test_device.h"
#include "text_encoder/umt5.h"

namespace t2v {
namespace {

const std::string kData = std::string(T2V_TEST_DATA_DIR) + "/text_encoder";
const std::string kWeights = kData + "/text_encoder/model.safetensors";
const std::string kConfig = kData + "/text_encoder/config.json";

std::string temp_path(const std::string& name) { return ::testing::TempDir() + "/t2v_umt5_" + name; }

// ‖out − ref‖ / ‖ref‖ over all elements (both CPU F32, same shape).
double rel_error(const Tensor& out, const Tensor& ref) {
  EXPECT_EQ(out.shape(), ref.shape());
  const float* a = out.data<float>();
  const float* b = ref.data<float>();
  double num = 0, den = 0;
  for (int64_t i = 0; i < ref.numel(); ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / den);
}

// Bound on rel_error (RMS of the difference over RMS of the reference) against
// transformers in fp32: 5x the worst measured, rounded up (measured 4.7e-7, fp32
// len7; the other cases and the bf16/f16/fp8 files 3.5e-7 to 4.1e-7). Was 1e-4.
constexpr double kGoldenTol = 3e-6;

struct Golden {
  SafetensorsFile file{kData + "/outputs.safetensors"};
  Tensor get(const std::string& name) const { return file.get(name).clone(); }
};

UMT5Encoder load_f32() { return UMT5Encoder::load(kWeights, UMT5Config::from_json(kConfig)); }

TEST(UMT5, RelativePositionBucketsFollowTheSpecBands) {
  // docs/wan.md §1.4: n = 0..7 -> n; 8-11 -> 8; 12-15 -> 9; 16-22 -> 10; 23-31 -> 11;
  // 32-45 -> 12; 46-63 -> 13; 64-90 -> 14; >= 91 -> 15; +16 for keys after the query.
  const int64_t band_start[] = {8, 12, 16, 23, 32, 46, 64, 91};
  for (int64_t n = 0; n < 700; ++n) {
    int64_t expect = n < 8 ? n : 7;
    for (int64_t s : band_start) expect += n >= 8 && n >= s ? 1 : 0;
    EXPECT_EQ(relative_position_bucket(-n, 32, 128), expect) << "r = " << -n;
    EXPECT_EQ(relative_position_bucket(n, 32, 128), n == 0 ? 0 : 16 + expect) << "r = " << n;
  }
}

TEST(UMT5, ConfigFromFileAndPreset) {
  UMT5Config c = UMT5Config::resolve(kConfig, "");
  EXPECT_EQ(c.d_model, 64);
  EXPECT_EQ(c.num_layers, 3);
  EXPECT_EQ(c.num_heads, 4);
  EXPECT_EQ(c.d_kv, 16);
  EXPECT_EQ(c.d_ff, 96);
  EXPECT_EQ(c.vocab_size, 1024);
  EXPECT_EQ(c.relative_attention_num_buckets, 32);
  EXPECT_EQ(c.relative_attention_max_distance, 128);
  EXPECT_FLOAT_EQ(c.layer_norm_epsilon, 1e-6f);
  UMT5Config x = UMT5Config::preset("umt5-xxl");
  EXPECT_EQ(x.d_model, 4096);
  EXPECT_EQ(x.num_layers, 24);
  EXPECT_EQ(x.num_heads, 64);
  EXPECT_EQ(x.d_ff, 10240);
  EXPECT_EQ(x.vocab_size, 256384);

  const std::string bad = temp_path("bad_config.json");
  auto expect_config_error = [&](const std::string& text, const std::string& needle) {
    FILE* f = std::fopen(bad.c_str(), "w");
    std::fputs(text.c_str(), f);
    std::fclose(f);
    try {
      UMT5Config::from_json(bad);
      ADD_FAILURE() << "accepted: " << text;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), 78) << e.what();
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  };
  expect_config_error("{\"d_model\": 64}", "lacks 'vocab_size'");
  expect_config_error(
      R"({"vocab_size":8,"d_model":-4,"num_layers":1,"num_heads":1,"d_kv":4,"d_ff":4,)"
      R"("relative_attention_num_buckets":32,"relative_attention_max_distance":128})",
      "'d_model' = -4");
  expect_config_error(
      R"({"vocab_size":8,"d_model":4,"num_layers":1,"num_heads":1,"d_kv":4,"d_ff":4,"feed_forward_proj":"relu",)"
      R"("relative_attention_num_buckets":32,"relative_attention_max_distance":128})",
      "feed_forward_proj 'relu'");
  expect_config_error("{not json", "not valid JSON");
  // Bounded values, overflow-checked products: refused by the config check,
  // before anything is allocated for a billion layers.
  const std::string sizes = R"("vocab_size":8,"d_model":4,"num_heads":1,"d_kv":4,"d_ff":4,)"
                            R"("relative_attention_num_buckets":32,"relative_attention_max_distance":128)";
  expect_config_error("{" + sizes + R"(,"num_layers":1000000000})", "num_layers = 1000000000 is outside [1, 1024]");
  expect_config_error(R"({"vocab_size":8,"d_model":4,"num_layers":1,"num_heads":4294967296,"d_kv":4294967296,)"
                      R"("d_ff":4,"relative_attention_num_buckets":32,"relative_attention_max_distance":128})",
                      "num_heads = 4294967296 is outside [1, 1024]");
  expect_config_error(R"({"vocab_size":18446744073709551615,"d_model":4,"num_layers":1,"num_heads":1,"d_kv":4,)"
                      R"("d_ff":4,"relative_attention_num_buckets":32,"relative_attention_max_distance":128})",
                      "vocab_size = 18446744073709551615 is outside [1, 4194304]");
  expect_config_error(R"({"vocab_size":8,"d_model":4,"num_layers":1,"num_heads":1,"d_kv":4,"d_ff":4,)"
                      R"("relative_attention_num_buckets":32,"relative_attention_max_distance":8})",
                      "relative_attention_max_distance = 8 is outside [9, 1048576]");
  expect_config_error("{" + sizes + R"(,"num_layers":1,"layer_norm_epsilon":2.0})", "layer_norm_epsilon = 2");
  // A config built in code is held to the same bounds.
  UMT5Config big = UMT5Config::preset("umt5-xxl");
  big.num_layers = 1000000000;
  EXPECT_THROW(umt5_weight_list(big), Error);
  try {
    UMT5Config::preset("t5-small");
    ADD_FAILURE() << "no error for an unknown preset";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), kExitUsage);
    EXPECT_NE(std::string(e.what()).find("umt5-xxl"), std::string::npos) << e.what();
  }
}

TEST(UMT5, ResolveFindsTheConfigBesideTheWeightsOrReadsTheShapes) {
  const UMT5Config j = UMT5Config::from_json(kConfig);
  // Empty: the config.json of the text_encoder/ folder.
  const UMT5Config beside = UMT5Config::resolve("", kWeights);
  EXPECT_EQ(beside.d_model, j.d_model);
  EXPECT_EQ(beside.num_layers, j.num_layers);
  EXPECT_EQ(UMT5Config::resolve(kData + "/text_encoder", "").d_ff, j.d_ff);  // a folder holding config.json
  // A single file without a config beside it: the sizes from its shapes.
  const TensorStore fp8 = TensorStore::open(kData + "/umt5_fp8_scaled.safetensors");
  const UMT5Config shapes = UMT5Config::resolve("", kData + "/umt5_fp8_scaled.safetensors", &fp8);
  EXPECT_EQ(shapes.d_kv, j.d_kv);
  EXPECT_EQ(shapes.num_heads, j.num_heads);
  EXPECT_EQ(UMT5Config::resolve("umt5-xxl", "").d_model, 4096);
}

TEST(UMT5, ConfigFromWeightsMatchesConfigJson) {
  const UMT5Config j = UMT5Config::from_json(kConfig);
  for (const std::string& path : {kWeights, kData + "/umt5_fp8_scaled.safetensors"}) {
    UMT5Config w = UMT5Config::from_weights(TensorStore::open(path));
    EXPECT_EQ(w.vocab_size, j.vocab_size) << path;
    EXPECT_EQ(w.d_model, j.d_model) << path;
    EXPECT_EQ(w.num_layers, j.num_layers) << path;
    EXPECT_EQ(w.num_heads, j.num_heads) << path;
    EXPECT_EQ(w.d_kv, j.d_kv) << path;
    EXPECT_EQ(w.d_ff, j.d_ff) << path;
    EXPECT_EQ(w.relative_attention_num_buckets, j.relative_attention_num_buckets) << path;
  }
}

TEST(UMT5, Fp32OutputMatchesTransformers) {
  UMT5Encoder enc = load_f32();
  Golden g;
  for (const char* c : {"len1", "len7", "len40", "len512", "batch2"}) {
    const std::string name = c;
    Tensor out = enc.forward(g.get(name + ".input_ids"), g.get(name + ".attention_mask"));
    double err = rel_error(out, g.get(name + ".last_hidden_state"));
    std::printf("  fp32 %-7s %-14s rel error %.3e\n", c, out.shape().str().c_str(), err);
    EXPECT_LT(err, kGoldenTol) << name;
  }
}

// On the test device: F32 weights give the CPU's output bit for bit; BF16 weights (bf16
// GEMMs and embedding, fp32 norms, bias, softmax and residual stream) stay near
// transformers' fp32 output. The output is F32 on the device.
TEST(UMT5, OnTheTestDevice) {
  ops::open_test_device();
  const UMT5Encoder cpu = load_f32();
  Golden g;
  double worst_bf16 = 0;
  for (const DType dt : {DType::F32, DType::BF16}) {
    UMT5LoadOptions o;
    o.device = Device::Test;
    o.dtype = dt;
    const UMT5Encoder dev = UMT5Encoder::load(kWeights, UMT5Config::from_json(kConfig), o);
    EXPECT_EQ(dev.dtype(), dt);
    for (const char* c : {"len1", "len7", "len40", "batch2"}) {
      const std::string name = c;
      const Tensor ids = g.get(name + ".input_ids"), mask = g.get(name + ".attention_mask");
      const Tensor out = dev.forward(ids, mask);
      ASSERT_EQ(out.device(), Device::Test);
      ASSERT_EQ(out.dtype(), DType::F32);
      const Tensor host = out.to(Device::CPU);
      if (dt == DType::F32) {
        EXPECT_EQ(host.to_vector(), cpu.forward(ids, mask).to_vector()) << name;
      } else {
        const double err = rel_error(host, g.get(name + ".last_hidden_state"));
        std::printf("  test device bf16 %-7s rel error %.3e\n", c, err);
        worst_bf16 = std::max(worst_bf16, err);
      }
    }
  }
  // 5x the worst measured (7.2e-3, len7): the bf16 embedding and GEMM operands.
  EXPECT_LT(worst_bf16, 4e-2);
  EXPECT_GT(worst_bf16, 0.0) << "bf16 storage must change the output";
}

TEST(UMT5, WanContextIsRealRowsThenExactZeros) {
  UMT5Encoder enc = load_f32();
  Golden g;
  // Wan runs 512 ids with the mask; its context keeps the real rows only.
  Tensor ids512 = g.get("wan512.input_ids");
  Tensor ref = g.get("wan512.last_hidden_state");  // [1, L, D], real rows
  const int64_t L = ref.size(1), D = ref.size(2);
  Tensor masked = enc.forward(ids512, g.get("wan512.attention_mask"));  // [1, 512, D]
  double err_masked = rel_error(masked.reshape(Shape{512, D}).narrow0(0, L).clone(), ref.reshape(Shape{L, D}));
  std::vector<int64_t> ids(ids512.data<int64_t>(), ids512.data<int64_t>() + L);
  Tensor ctx = enc.encode_context(ids);  // unmasked run on the L real tokens, zero-padded
  ASSERT_EQ(ctx.shape(), (Shape{512, D}));
  double err_ctx = rel_error(ctx.narrow0(0, L).clone(), ref.reshape(Shape{L, D}));
  std::printf("  wan512 (L = %lld): masked 512-run rel error %.3e, context rows %.3e\n", (long long)L, err_masked,
              err_ctx);
  EXPECT_LT(err_masked, kGoldenTol);
  EXPECT_LT(err_ctx, kGoldenTol);
  const float* p = ctx.data<float>();
  for (int64_t i = L * D; i < 512 * D; ++i) ASSERT_EQ(p[i], 0.0f) << "row " << i / D;
}

// Writes the F32 goldens' weights converted to `dt` (round to nearest even, as
// torch's .to(dtype)) and checks them against transformers run on the same
// rounded weights; also reports the distance to the fp32-weight output.
void check_rounded(DType dt, const std::string& kind) {
  TensorStore f32 = TensorStore::open(kWeights);
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const std::string& n : f32.names()) tensors.emplace_back(n, f32.get(n).to(dt));
  const std::string path = temp_path(kind + ".safetensors");
  save_safetensors(path, tensors);
  UMT5Encoder enc = UMT5Encoder::load(path, UMT5Config::from_json(kConfig));
  Golden g;
  Tensor out = enc.forward(g.get("len40.input_ids"), g.get("len40.attention_mask"));
  double err = rel_error(out, g.get(kind + ".len40.last_hidden_state"));
  double vs_fp32 = rel_error(out, g.get("len40.last_hidden_state"));
  std::printf("  %s weights: rel error %.3e vs transformers on the same weights, %.3e vs fp32 weights\n",
              kind.c_str(), err, vs_fp32);
  EXPECT_LT(err, kGoldenTol);
  std::remove(path.c_str());
}

TEST(UMT5, Bf16WeightsMatchTransformersOnRoundedWeights) { check_rounded(DType::BF16, "bf16"); }
TEST(UMT5, F16WeightsMatchTransformersOnRoundedWeights) { check_rounded(DType::F16, "f16"); }

TEST(UMT5, ComfyScaledFp8FileMatchesTransformersOnDequantizedWeights) {
  UMT5Encoder enc = UMT5Encoder::load(kData + "/umt5_fp8_scaled.safetensors", UMT5Config::from_json(kConfig));
  Golden g;
  Tensor out = enc.forward(g.get("len40.input_ids"), g.get("len40.attention_mask"));
  double err = rel_error(out, g.get("fp8.len40.last_hidden_state"));
  double vs_fp32 = rel_error(out, g.get("len40.last_hidden_state"));
  std::printf("  scaled fp8: rel error %.3e vs transformers on fp8 x scale weights, %.3e vs fp32 weights\n", err,
              vs_fp32);
  EXPECT_LT(err, kGoldenTol);
}

TEST(UMT5, WanLayoutNamesLoadTheSameWeights) {
  TensorStore hf = TensorStore::open(kWeights);
  const UMT5Layout wan{"wan", ""};
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const WeightRequest& r : umt5_weight_list(UMT5Config::from_json(kConfig)))
    tensors.emplace_back(umt5_file_key(wan, r.key), hf.get(r.key).clone());
  const std::string path = temp_path("wan_layout.safetensors");
  save_safetensors(path, tensors);
  TensorStore st = TensorStore::open(path);
  EXPECT_EQ(detect_umt5_layout(st).name, "wan");
  EXPECT_TRUE(st.contains("blocks.2.ffn.gate.0.weight"));
  UMT5Encoder enc = UMT5Encoder::load(st, UMT5Config::from_json(kConfig));
  Golden g;
  Tensor out = enc.forward(g.get("batch2.input_ids"), g.get("batch2.attention_mask"));
  EXPECT_LT(rel_error(out, g.get("batch2.last_hidden_state")), kGoldenTol);
  std::remove(path.c_str());
}

TEST(UMT5, DumpHookSeesNamedIntermediates) {
  UMT5Encoder enc = load_f32();
  std::set<std::string> names;
  Tensor last;
  enc.set_dump_hook([&](const std::string& n, const Tensor& t) {
    names.insert(n);
    if (n == "encoder.final_layer_norm") last = t;
  });
  Golden g;
  Tensor out = enc.forward(g.get("len7.input_ids"), g.get("len7.attention_mask"));
  for (const char* n : {"encoder.embed_tokens", "encoder.block.0.attn_out", "encoder.block.2.ffn_out",
                        "encoder.block.2.out", "encoder.final_layer_norm"})
    EXPECT_TRUE(names.count(n)) << n;
  ASSERT_TRUE(last.defined());
  EXPECT_EQ(rel_error(last, out), 0.0);
}

TEST(UMT5, RejectsOutOfVocabularyIds) {
  UMT5Encoder enc = load_f32();
  Tensor ids = Tensor::zeros(Shape{1, 3}, DType::I64);
  ids.data<int64_t>()[2] = 1024;
  try {
    enc.forward(ids, Tensor());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), 65);
    EXPECT_NE(std::string(e.what()).find("input_ids[2] = 1024"), std::string::npos) << e.what();
  }
}

// ---- real size ----------------------------------------------------------------------
// A umt5-xxl file cannot be committed or generated densely (11 GB in fp16), so the
// test writes a safetensors file with exactly the expected names and shapes
// (linears F8_E4M3 + scale_weight as in ComfyUI's fp8 file, the rest F16: 6.7 GB)
// as a sparse file: the header is real, the data section is a hole made by
// ftruncate, so it takes no disk space. The loader's dry run (the same bind
// code, headers only) checks names, shapes and dtypes on it.

void write_sparse_safetensors(const std::string& path, const std::vector<WeightRequest>& table,
                              const std::string& override_key = "", const Shape& override_shape = {}) {
  nlohmann::ordered_json header;
  uint64_t offset = 0;
  auto add = [&](const std::string& name, const char* dtype, const Shape& shape, uint64_t elem) {
    uint64_t bytes = static_cast<uint64_t>(shape.numel()) * elem;
    header[name] = {{"dtype", dtype}, {"shape", shape.vec()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  };
  for (const WeightRequest& r : table) {
    const std::string& name = r.key;
    const Shape shape = name == override_key ? override_shape : r.shape;
    const bool linear = shape.ndim() == 2 && name.find("relative_attention_bias") == std::string::npos &&
                        name != "shared.weight";
    if (linear) {
      add(name, "F8_E4M3", shape, 1);
      add(name.substr(0, name.size() - 6) + "scale_weight", "F32", Shape{1}, 4);
    } else {
      add(name, "F16", shape, 2);
    }
  }
  add("scaled_fp8", "F8_E4M3", Shape{0}, 1);
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');
  const uint64_t n = json.size();
  int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
  ASSERT_GE(fd, 0) << path;
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
  ASSERT_EQ(::write(fd, len, 8), 8);
  ASSERT_EQ(::write(fd, json.data(), json.size()), static_cast<ssize_t>(json.size()));
  ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(8 + n + offset)), 0);
  ::close(fd);
}

TEST(UMT5, RealSizeTensorTableIsAcceptedAndAWrongShapeIsNamed) {
  const UMT5Config xxl = UMT5Config::preset("umt5-xxl");
  const std::vector<WeightRequest> table = umt5_weight_list(xxl);
  ASSERT_EQ(table.size(), 2u + 10u * 24u);
  int64_t params = 0;
  for (const WeightRequest& r : table) params += r.shape.numel();
  EXPECT_EQ(params, 5'680'910'336);  // docs/wan.md §1.1: 5.68 B
  EXPECT_EQ(table.front().key, "shared.weight");
  EXPECT_EQ(table.front().shape, (Shape{256384, 4096}));
  UMT5LoadOptions dry;
  dry.dry_run = true;
  WeightReport report;
  dry.report = &report;

  const std::string path = temp_path("umt5_xxl_sparse.safetensors");
  write_sparse_safetensors(path, table);
  {
    TensorStore st = TensorStore::open(path);
    EXPECT_EQ(st.info("encoder.block.23.layer.1.DenseReluDense.wo.weight").shape, (Shape{4096, 10240}));
    EXPECT_NO_THROW(UMT5Encoder::load(st, xxl, dry));
    EXPECT_EQ(report.num_params, 5'680'910'336);
    EXPECT_TRUE(report.unused_keys.empty());  // scale_weight and scaled_fp8 are markers
    // The sizes read off the file are the preset's.
    const UMT5Config seen = UMT5Config::from_weights(st);
    EXPECT_EQ(umt5_weight_list(seen), table);
    // The same file against the small config is refused by shape.
    EXPECT_THROW(UMT5Encoder::load(st, UMT5Config::from_json(kConfig), dry), Error);
  }
  const std::string bad_key = "encoder.block.7.layer.0.SelfAttention.k.weight";
  write_sparse_safetensors(path, table, bad_key, Shape{4096, 5120});
  {
    TensorStore st = TensorStore::open(path);
    try {
      UMT5Encoder::load(st, xxl, dry);
      FAIL() << "expected an error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), 65);
      const std::string msg = e.what();
      EXPECT_NE(msg.find(bad_key + " is [4096, 5120], config expects [4096, 4096]"), std::string::npos) << msg;
    }
    // The full load stops at the same check before converting any weight.
    EXPECT_THROW(UMT5Encoder::load(st, xxl), Error);
  }
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace t2v
