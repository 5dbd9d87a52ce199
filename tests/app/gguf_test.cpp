// GGUF models end to end (tools/golden/gen_gguf_models.py wrote them in the
// ComfyUI-GGUF convention, with the sha256 of the `gguf` package's dequantization
// of every tensor beside them):
//   - t2v's dequantization of every tensor equals the package's (hash by hash);
//     from those tensors each test writes "the same weights dequantized by the
//     package" as safetensors (the repository carries no fp32 copies);
//   - `t2v probe` on each GGUF equals the probe on its dequantized safetensors;
//   - `t2v generate` renders the same frames with the DiT and umT5 as GGUF (as
//     --dit/--t5, and inside a --model folder) as with the dequantized safetensors;
//   - `t2v inspect` on a GGUF, the single-file folder scan, and parts of the wrong
//     family refused with a one-line Error(65).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "app/model_paths.h"
#include "app/sha256.h"
#include "cli_test_util.h"
#include "core/gguf.h"
#include "core/philox.h"
#include "core/quant.h"
#include "core/safetensors.h"

namespace t2v::test {
namespace {

namespace fs = std::filesystem;

const std::string kData = T2V_TEST_DATA_DIR;
const std::string kMixed = kData + "/diffusion/gguf/wan_tiny256_mixed.gguf";
const std::string kT5 = kData + "/text_encoder/gguf/umt5_tiny_q8_0.gguf";
const std::string kTinyWan = kData + "/pipeline/tiny_wan";
const std::string kTiny48Config = kData + "/diffusion/tiny_dit/config_original.json";

nlohmann::json sidecar(const std::string& gguf) {
  std::ifstream f(gguf.substr(0, gguf.size() - 5) + ".json");
  return nlohmann::json::parse(f);
}

// t2v's fp32 values of one GGUF tensor: its blocks dequantized, or its dtype converted.
Tensor fp32_of(const TensorStore& s, const std::string& name) {
  const TensorInfo& info = s.info(name);
  if (!info.quant) return s.get(name).to(DType::F32).clone();
  Tensor out = Tensor::empty(info.shape, DType::F32);
  dequantize(*info.quant, s.get(name).raw(), out.data<float>(), out.numel());
  return out;
}

std::string sha_of(const Tensor& t) {
  return sha256_hex(std::string_view(static_cast<const char*>(t.raw()), t.nbytes()));
}

// Every tensor of `gguf` dequantized, each checked against the package's hash;
// named by `source_name` when the sidecar gives one (the umT5's transformers names).
std::vector<std::pair<std::string, Tensor>> package_dequantized(const std::string& gguf) {
  const TensorStore store = TensorStore::open(gguf);
  const nlohmann::json j = sidecar(gguf);
  EXPECT_EQ(j["tensors"].size(), store.names().size()) << gguf;
  std::vector<std::pair<std::string, Tensor>> out;
  for (const auto& [name, t] : j["tensors"].items()) {
    const Tensor v = fp32_of(store, name);
    EXPECT_STREQ(tensor_type_name(store.info(name)), t["type"].get<std::string>().c_str()) << name;
    EXPECT_EQ(v.shape(), Shape(t["shape"].get<std::vector<int64_t>>())) << name;
    EXPECT_EQ(sha_of(v), t["sha256"].get<std::string>())
        << gguf << ": " << name << " (" << t["type"] << ") differs from the gguf package's dequantization";
    out.emplace_back(t.contains("source_name") ? t["source_name"].get<std::string>() : name, v);
  }
  return out;
}

double max_rel_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  const auto va = a.to_vector(), vb = b.to_vector();
  double m = 0, scale = 0;
  for (size_t i = 0; i < va.size() && i < vb.size(); ++i) {
    m = std::max(m, std::fabs(static_cast<double>(va[i]) - vb[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(vb[i])));
  }
  return scale > 0 ? m / scale : m;
}

// The settings of the pipeline golden (tests/data/pipeline/golden.json), small and fixed.
std::vector<std::string> generate_args(const TempDir& dir, const std::string& frames_out) {
  std::ifstream f(kData + "/pipeline/golden.json");
  const nlohmann::json g = nlohmann::json::parse(f);
  return {"generate",
          "-p",
          g["prompt"],
          "-n",
          g["negative_prompt"],
          "--size",
          fmt::format("{}x{}", int(g["width"]), int(g["height"])),
          "--frames",
          std::to_string(int(g["frames"])),
          "--steps",
          std::to_string(int(g["steps"])),
          "--cfg",
          fmt::format("{}", double(g["cfg"])),
          "--shift",
          fmt::format("{}", double(g["shift"])),
          "--sampler",
          g["sampler"],
          "--schedule",
          g["schedule"],
          "--seed",
          "7",
          "--dtype",
          "f32",
          "-o",
          dir.file(frames_out + ".mp4"),
          "--dump-frames",
          dir.file(frames_out + ".safetensors")};
}

std::vector<float> frames_of(const TempDir& dir, const std::string& name) {
  return SafetensorsFile(dir.file(name + ".safetensors")).get("frames").to_vector();
}

}  // namespace

TEST(Gguf, EveryModelTensorDequantizesAsThePackageDoes) {
  for (const std::string& f :
       {kData + "/diffusion/gguf/wan_tiny48_f16.gguf", kData + "/diffusion/gguf/wan_tiny48_q8_0.gguf", kMixed, kT5}) {
    SCOPED_TRACE(f);
    EXPECT_FALSE(package_dequantized(f).empty());
  }
}

TEST(Gguf, ProbeDitOnGgufEqualsProbeOnDequantizedSafetensors) {
  struct Case {
    std::string gguf, config;
  };
  for (const Case& c : {Case{kData + "/diffusion/gguf/wan_tiny48_f16.gguf", kTiny48Config},
                        Case{kData + "/diffusion/gguf/wan_tiny48_q8_0.gguf", kTiny48Config},
                        Case{kMixed, ""}}) {  // the mixed DiT: config from its shapes
    SCOPED_TRACE(c.gguf);
    TempDir dir;
    save_safetensors(dir.file("deq.safetensors"), package_dequantized(c.gguf));
    const int64_t text_dim = 32;  // both DiTs read 32-wide text
    save_safetensors(dir.file("in.safetensors"), {{"hidden_states", randn_philox(Shape{2, 16, 3, 4, 6}, 5)},
                                                  {"timestep", Tensor::from_floats({999.0f, 421.5f}, Shape{2})},
                                                  {"encoder_hidden_states", randn_philox(Shape{2, 9, text_dim}, 6)}});
    Tensor out[2];
    for (int i = 0; i < 2; ++i) {
      std::vector<std::string> args = {"probe",     "dit",
                                       "--weights", i == 0 ? c.gguf : dir.file("deq.safetensors"),
                                       "--inputs",  dir.file("in.safetensors"),
                                       "--out",     dir.file(fmt::format("out{}.safetensors", i))};
      if (!c.config.empty()) args.insert(args.end(), {"--config", c.config});
      const RunResult r = run_t2v(args);
      ASSERT_EQ(r.code, 0) << r.err;
      out[i] = SafetensorsFile(dir.file(fmt::format("out{}.safetensors", i))).get("sample").clone();
    }
    // The same fp32 numbers in the same GEMMs: equal (the bound is the one stated for this check).
    const double d = max_rel_diff(out[0], out[1]);
    std::printf("  probe dit %s: max |GGUF - dequantized| / max |y| = %.2e\n", fs::path(c.gguf).filename().c_str(), d);
    EXPECT_LE(d, 1e-5);
    EXPECT_GT(max_rel_diff(out[0], Tensor::zeros(out[0].shape(), DType::F32)), 0.0);
  }
}

TEST(Gguf, ProbeTextEncoderOnGgufEqualsProbeOnDequantizedSafetensors) {
  TempDir dir;
  // Written under the transformers names the generator recorded (not t2v's table).
  save_safetensors(dir.file("deq.safetensors"), package_dequantized(kT5));
  std::vector<float> ids;
  for (int i = 0; i < 2 * 11; ++i) ids.push_back(static_cast<float>((i * 29 + 3) % 72));
  std::vector<float> mask(22, 1.0f);
  for (int i = 18; i < 22; ++i) mask[i] = 0.0f;
  save_safetensors(dir.file("in.safetensors"), {{"input_ids", Tensor::from_floats(ids, {2, 11}).to(DType::I64)},
                                                {"attention_mask", Tensor::from_floats(mask, {2, 11}).to(DType::I64)}});
  Tensor out[2];
  for (int i = 0; i < 2; ++i) {
    const RunResult r = run_t2v({"probe", "text-encoder", "--weights", i == 0 ? kT5 : dir.file("deq.safetensors"),
                                 "--config", kTinyWan + "/text_encoder/config.json", "--inputs",
                                 dir.file("in.safetensors"), "--out", dir.file(fmt::format("o{}.safetensors", i))});
    ASSERT_EQ(r.code, 0) << r.err;
    out[i] = SafetensorsFile(dir.file(fmt::format("o{}.safetensors", i))).get("last_hidden_state").clone();
  }
  EXPECT_LE(max_rel_diff(out[0], out[1]), 1e-5);
}

TEST(Gguf, PipelineRendersTheSameFramesWithGgufParts) {
  TempDir dir;
  save_safetensors(dir.file("dit_deq.safetensors"), package_dequantized(kMixed));
  // The umT5 as a folder with its config.json (a bare --t5 file would be taken for umt5-xxl).
  for (const char* sub : {"t5_gguf", "t5_deq"}) {
    fs::create_directory(dir.file(sub));
    fs::copy_file(kTinyWan + "/text_encoder/config.json", dir.file(std::string(sub) + "/config.json"));
  }
  fs::copy_file(kT5, dir.file("t5_gguf/umt5.gguf"));
  save_safetensors(dir.file("t5_deq/model.safetensors"), package_dequantized(kT5));

  auto run = [&](const std::string& name, std::vector<std::string> parts) {
    std::vector<std::string> args = generate_args(dir, name);
    args.insert(args.end(), parts.begin(), parts.end());
    const RunResult r = run_t2v(args);
    EXPECT_EQ(r.code, 0) << name << ": " << r.err;
    return frames_of(dir, name);
  };
  const std::vector<float> gguf = run("gguf", {"--model", kTinyWan, "--dit", kMixed, "--t5", dir.file("t5_gguf")});
  const std::vector<float> deq =
      run("deq", {"--model", kTinyWan, "--dit", dir.file("dit_deq.safetensors"), "--t5", dir.file("t5_deq")});
  ASSERT_FALSE(gguf.empty());
  double max_abs = 0;
  for (size_t i = 0; i < gguf.size() && i < deq.size(); ++i)
    max_abs = std::max(max_abs, std::fabs(static_cast<double>(gguf[i]) - deq[i]));
  const double p = frame_psnr(gguf, deq);
  std::printf("  GGUF parts vs dequantized safetensors: PSNR %.1f dB, max |diff| %.2e\n", p, max_abs);
  EXPECT_GE(p, 60.0);
  EXPECT_LE(max_abs, 1e-3);
  const auto [lo, hi] = std::minmax_element(gguf.begin(), gguf.end());
  EXPECT_GT(*hi - *lo, 0.1f) << "the frames are not flat";

  // The same GGUFs inside a --model folder: transformer/ holds only the DiT GGUF
  // (no config.json: heads = dim / 128), text_encoder/ the umT5 GGUF and its config.
  const fs::path m = dir.file("model");
  fs::copy(kTinyWan, m, fs::copy_options::recursive);
  fs::remove_all(m / "transformer");
  fs::create_directory(m / "transformer");
  fs::copy_file(kMixed, m / "transformer" / "wan2.1-t2v-tiny-Q4_K_M.gguf");
  fs::remove(m / "text_encoder" / "model.safetensors");
  fs::copy_file(kT5, m / "text_encoder" / "umt5-tiny-Q8_0.gguf");
  EXPECT_EQ(run("folder", {"--model", m.string()}), gguf) << "the folder renders what --dit/--t5 render";
}

// A LoRA on a GGUF DiT: `t2v generate --dit <folder with the Q8_0 GGUF and its
// config.json> --lora` reports the LoRA and the quantized weights it makes dense, and
// renders the frames of the package-dequantized weights as safetensors with the same
// LoRA; another strength renders other frames.
TEST(Gguf, GenerateMergesALoraIntoAGgufDit) {
  TempDir dir;
  const std::string q8 = kData + "/diffusion/gguf/wan_tiny48_q8_0.gguf";
  const std::string lora = kData + "/lora/original_f16.safetensors";
  for (const char* sub : {"dit_gguf", "dit_deq"}) {
    fs::create_directory(dir.file(sub));
    fs::copy_file(kTinyWan + "/transformer/config.json", dir.file(std::string(sub) + "/config.json"));
  }
  fs::copy_file(q8, dir.file("dit_gguf/wan_tiny48_q8_0.gguf"));
  save_safetensors(dir.file("dit_deq/model.safetensors"), package_dequantized(q8));

  auto run = [&](const std::string& name, const std::string& dit, const std::string& spec) {
    std::vector<std::string> args = generate_args(dir, name);
    args.insert(args.end(), {"--model", kTinyWan, "--dit", dir.file(dit)});
    if (!spec.empty()) args.insert(args.end(), {"--lora", spec});
    const RunResult r = run_t2v(args);
    EXPECT_EQ(r.code, 0) << name << ": " << r.err;
    return std::make_pair(r.err, frames_of(dir, name));
  };
  const auto [log, gguf] = run("gguf", "dit_gguf", lora + ":1");
  EXPECT_NE(log.find("LoRA " + lora + " at strength 1: original names, "), std::string::npos) << log;
  // original_f16 touches blocks.1.ffn.2, one of the two Q8_0 matrices of the file.
  EXPECT_NE(log.find("LoRA: 1 quantized GGUF weights of the DiT are dequantized, merged and kept in F32"),
            std::string::npos)
      << log;
  const std::vector<float> deq = run("deq", "dit_deq", lora + ":1").second;
  const std::vector<float> half = run("half", "dit_gguf", lora + ":0.5").second;
  const std::vector<float> none = run("none", "dit_gguf", "").second;
  ASSERT_FALSE(gguf.empty());
  ASSERT_EQ(gguf.size(), deq.size());
  double max_abs = 0;
  for (size_t i = 0; i < gguf.size(); ++i) max_abs = std::max(max_abs, std::fabs(static_cast<double>(gguf[i]) - deq[i]));
  std::printf("  GGUF + LoRA vs dequantized safetensors + LoRA: max |diff| %.2e; PSNR vs strength 0.5 %.1f dB, "
              "vs no LoRA %.1f dB\n",
              max_abs, frame_psnr(gguf, half), frame_psnr(gguf, none));
  // The DiT forwards are equal bit for bit (tests/diffusion/test_lora_gguf.cpp), so are the frames.
  EXPECT_EQ(max_abs, 0.0);
  EXPECT_LT(frame_psnr(gguf, half), 60.0) << "the strength changes the frames";
  EXPECT_LT(frame_psnr(gguf, none), 60.0) << "the LoRA changes the frames";
  const auto [lo, hi] = std::minmax_element(gguf.begin(), gguf.end());
  EXPECT_GT(*hi - *lo, 0.1f) << "the frames are not flat";
}

TEST(Gguf, InspectListsTensorsMetadataAndWhatItDetected) {
  RunResult r = run_t2v({"inspect", kMixed});
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* want :
       {"gguf        version 3, alignment 32, architecture 'wan'", "general.architecture", "provenance.generator",
        "detected    wan-dit (original layout)", "Wan2.1 DiT, original layout (GGUF, ComfyUI-GGUF convention)",
        "heads 2 x 128", "Q4_K (", "Q6_K (", "blocks.0.self_attn.q.weight", "), loads as it is",
        "blocks.0.modulation                F32     [1, 6, 256]"})
    EXPECT_NE(r.out.find(want), std::string::npos) << "missing '" << want << "' in:\n" << r.out;
  r = run_t2v({"inspect", "--json", "--all", kMixed});
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["format"], "GGUF");
  EXPECT_EQ(j["gguf"]["architecture"], "wan");
  EXPECT_EQ(j["family"], "wan-dit");
  EXPECT_EQ(j["list"].size(), j["tensors"].get<size_t>());
  bool found = false;
  for (const auto& t : j["list"])
    if (t["name"] == "blocks.1.cross_attn.k.weight") {
      found = true;
      EXPECT_EQ(t["dtype"], "Q2_K");
      EXPECT_EQ(t["shape"], (std::vector<int64_t>{256, 256}));
    }
  EXPECT_TRUE(found);
  r = run_t2v({"inspect", kT5});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("detected    umt5-encoder (llama.cpp GGUF layout)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("status      umT5 encoder (2 layers, d_model 32), loads as it is"), std::string::npos) << r.out;
  // Another family: listed (exit 0), with a status saying t2v does not run it.
  r = run_t2v({"inspect", kData + "/core/gguf/arch_flux.gguf"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("detected    unknown (GGUF architecture 'flux')"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("status      not a model t2v runs: GGUF architecture 'flux'"), std::string::npos) << r.out;
}

TEST(Gguf, SingleFileFolderFindsGgufParts) {
  TempDir dir;
  fs::copy_file(kMixed, dir.file("wan2.1-t2v-Q4_K_M.gguf"));
  fs::copy_file(kT5, dir.file("umt5-xxl-encoder-Q8_0.gguf"));
  fs::copy_file(kTinyWan + "/vae/diffusion_pytorch_model.safetensors", dir.file("wan_2.1_vae.safetensors"));
  fs::create_directory(dir.file("tokenizer"));
  fs::copy_file(kTinyWan + "/tokenizer/spiece.model", dir.file("tokenizer/spiece.model"));
  GenerateOptions o;
  o.model = dir.path();
  const ModelPaths p = resolve_model_paths(o);
  EXPECT_EQ(p.dit, dir.file("wan2.1-t2v-Q4_K_M.gguf"));
  EXPECT_EQ(p.t5, dir.file("umt5-xxl-encoder-Q8_0.gguf"));
  EXPECT_EQ(p.vae, dir.file("wan_2.1_vae.safetensors"));
  EXPECT_TRUE(p.complete());
}

TEST(Gguf, PartsOfTheWrongFamilyAreOneLineError65) {
  TempDir dir;
  save_safetensors(dir.file("in.safetensors"), {{"hidden_states", randn_philox(Shape{1, 16, 1, 4, 4}, 1)},
                                                {"timestep", Tensor::from_floats({500.0f}, Shape{1})},
                                                {"encoder_hidden_states", randn_philox(Shape{1, 3, 32}, 2)}});
  RunResult r = run_t2v({"probe", "dit", "--weights", kT5, "--inputs", dir.file("in.safetensors"), "--out",
                         dir.file("o.safetensors"), "--config", kTiny48Config});
  EXPECT_EQ(r.code, 65) << r.err;
  EXPECT_NE(r.err.find("GGUF architecture 't5encoder' where a Wan DiT was expected"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  // The DiT GGUF as the text encoder (in a folder with the encoder's config, so the
  // sizes agree and the file itself is what is refused).
  fs::create_directory(dir.file("t5"));
  fs::copy_file(kTinyWan + "/text_encoder/config.json", dir.file("t5/config.json"));
  fs::copy_file(kMixed, dir.file("t5/umt5.gguf"));
  std::vector<std::string> args = generate_args(dir, "x");
  for (const std::string& a : {std::string("--model"), kTinyWan, std::string("--t5"), dir.file("t5")})
    args.push_back(a);
  r = run_t2v(args);
  EXPECT_EQ(r.code, 65) << r.err;
  EXPECT_NE(r.err.find("GGUF architecture 'wan' where a umT5 text encoder was expected"), std::string::npos) << r.err;
}

}  // namespace t2v::test
