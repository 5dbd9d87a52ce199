// `t2v generate`, `inspect` and `probe` against hostile inputs found by probing as an
// adversarial user (docs/bad_inputs.md #19, #68, #70-72, #74, #77, #79, #81, #83): each must
// end in bounded time with the right exit code, one line on stderr, and nothing written
// where it should not be.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>

#include "cli_test_util.h"
#include "core/safetensors.h"

namespace t2v::test {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

const std::vector<std::string> kTiny = {"--size", "16x16", "--frames", "1", "--steps", "1", "--seed", "1"};

size_t count_lines(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

// Exactly one line on stderr, an error naming `what`.
void expect_one_line_error(const RunResult& r, const std::string& what) {
  EXPECT_EQ(count_lines(r.err), 1u) << r.err;
  EXPECT_EQ(r.err.rfind("t2v: error:", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(what), std::string::npos) << r.err;
}

std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// t2v under a wall-clock limit (`timeout` kills it: exit 124), so a hang fails the test
// instead of stalling the suite.
RunResult run_bounded(const std::vector<std::string>& args, int seconds = 30) {
  std::vector<std::string> argv = {"/usr/bin/timeout", "-k", "5", std::to_string(seconds), t2v_exe()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_program(argv);
}

// A private copy of the default model the test may damage.
std::string copy_model(const TempDir& dir) {
  const std::string m = dir.file("model");
  fs::copy(test_model_dir(), m, fs::copy_options::recursive);
  return m;
}

// Overwrites every F32 element of tensor `name` in the safetensors file `path` with `value`.
void set_tensor(const std::string& path, const std::string& name, float value) {
  uint64_t header = 0;
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(&header), 8);
  const TensorInfo* t = nullptr;
  SafetensorsFile f(path);
  t = f.find(name);
  ASSERT_NE(t, nullptr) << name;
  ASSERT_EQ(t->dtype, DType::F32) << name;
  std::fstream io(path, std::ios::binary | std::ios::in | std::ios::out);
  io.seekp(static_cast<std::streamoff>(8 + header + t->begin));
  for (uint64_t i = 0; i < (t->end - t->begin) / 4; ++i) io.write(reinterpret_cast<const char*>(&value), 4);
}

// The first file under `dir` ending in .safetensors.
std::string weights_in(const std::string& dir) {
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".safetensors") return e.path().string();
  return "";
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

TEST(GenerateHostile, OverlongPromptsAreRefusedAtOnce) {
  TempDir dir;
  const auto t0 = Clock::now();
  RunResult r = run_bounded(concat({"generate", "-p", std::string(70000, 'a'), "-o", dir.file("v.mp4")}, kTiny));
  EXPECT_EQ(r.code, 65) << r.err;
  expect_one_line_error(r, "prompt is 70000 bytes, above the limit of 65536 bytes");
  // A 1 MB single word (and a 4 MB one) in a batch list: the list check refuses them.
  write_text(dir.file("list.jsonl"), "{\"prompt\": \"" + std::string(1000000, 'a') + "\"}\n{\"prompt\": \"" +
                                         std::string(4000000, 'b') + "\"}\n");
  r = run_bounded(batch_args(dir.file("list.jsonl"), dir.file("out")));
  EXPECT_EQ(r.code, 65) << r.err.substr(0, 2000);
  EXPECT_NE(r.err.find("list.jsonl:1: prompt is 1000000 bytes"), std::string::npos) << r.err.substr(0, 2000);
  EXPECT_NE(r.err.find("list.jsonl:2: the line is"), std::string::npos) << r.err.substr(0, 2000);
  EXPECT_LT(seconds_since(t0), 10.0);
  EXPECT_FALSE(fs::exists(dir.file("v.mp4")));
}

TEST(GenerateHostile, PromptsOfOnlyInvisibleCharactersAreEmpty) {
  TempDir dir;
  for (const char* blank : {"\u3000", "\u00a0\u00a0", "\u200b", "\u2003 \u2003", "\ufeff", "\u2060", "\u180e",
                            "\u200b\u3000\u200d\u00ad", "\u2800", "\u3164"}) {
    RunResult r = run_t2v(concat({"generate", "-p", blank, "-o", dir.file("v.mp4")}, kTiny));
    EXPECT_EQ(r.code, 65) << r.err;
    expect_one_line_error(r, "prompt is empty");
  }
  EXPECT_FALSE(fs::exists(dir.file("v.mp4")));
}

TEST(GenerateHostile, NonFiniteWeightsAndStageOutputsAreErrorsAndNothingIsWritten) {
  TempDir dir;
  const std::string model = copy_model(dir);
  const std::string vae = weights_in(model + "/vae");
  const std::string out = dir.file("v.mp4");
  const std::vector<std::string> gen = concat({"generate", "--model", model, "-p", "a red ball", "-o", out}, kTiny);

  // A NaN weight: found while the VAE loads, named by file and key.
  set_tensor(vae, "decoder.conv_in.weight", std::nanf(""));
  RunResult r = run_t2v(gen);
  EXPECT_EQ(r.code, 65) << r.err;
  EXPECT_NE(r.err.find("decoder.conv_in.weight (canonical decoder.conv1.weight) holds NaN or Inf"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("diffusion_pytorch_model.safetensors"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));

  // Finite weights that overflow in the decoder: the decoded frames are NaN/Inf.
  set_tensor(vae, "decoder.conv_in.weight", 3e38f);
  r = run_t2v(gen);
  EXPECT_EQ(r.code, 70) << r.err;
  EXPECT_NE(r.err.find("NaN or Inf in the decoded frames"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));
  fs::copy_file(weights_in(test_model_dir() + "/vae"), vae, fs::copy_options::overwrite_existing);

  // The text encoder's output overflows: named as such, not as the latents it would spoil.
  const std::string t5 = weights_in(model + "/text_encoder");
  set_tensor(t5, "encoder.final_layer_norm.weight", 3e38f);
  r = run_t2v(gen);
  EXPECT_EQ(r.code, 70) << r.err;
  EXPECT_NE(r.err.find("NaN or Inf in the text encoder's output"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));
  for (const auto& e : fs::directory_iterator(dir.path())) EXPECT_NE(e.path().extension(), ".mp4") << e.path();
}

TEST(GenerateHostile, SizesAreCheckedAgainstTheModelsCompressionAndMemory) {
  TempDir dir;
  const std::string out = dir.file("v.mp4");
  const auto t0 = Clock::now();
  // The default model compresses 8x (4x VAE, 2x2 patch): 8192x8192 is a million tokens.
  RunResult r = run_bounded({"generate", "-p", "a red ball", "--size", "8192x8192", "--frames", "1", "--steps", "1",
                             "--seed", "1", "-o", out, "-q"});
  EXPECT_EQ(r.code, 64) << r.err;
  EXPECT_NE(r.err.find("1048576 transformer tokens for this model"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("at most --size"), std::string::npos) << r.err;
  EXPECT_LT(seconds_since(t0), 10.0);
  // Under a 3 GB address-space limit 2048x2048 does not fit: refused from the estimate.
  std::vector<std::string> argv = {"/bin/bash", "-c", "ulimit -v 3000000; exec \"$@\"", "t2v", t2v_exe(), "generate",
                                   "-p", "a red ball", "--size", "2048x2048", "--frames", "1", "--steps", "1",
                                   "--seed", "1", "-o", out, "-q"};
  r = run_program(argv);
  EXPECT_EQ(r.code, 69) << r.err;
  // (after the warning that the size is far above what Wan2.1 was trained on)
  EXPECT_NE(r.err.find("t2v: error: 1 frames at 2048x2048 need about"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("GB of memory"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ulimit -v"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));
  // The size it names passes the check under the same limit: the run gets as far as the
  // --noise file (whose shape is checked next, and is wrong on purpose).
  const std::regex hint(R"(use at most (?:--frames [0-9]+ at this size or )?--size ([0-9]+)x([0-9]+) at 1 frame\b)");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.err, m, hint)) << r.err;
  EXPECT_EQ(std::stoi(m[1]) % 16, 0) << m[0];
  EXPECT_EQ(m[1], m[2]) << m[0];  // the same aspect ratio
  save_safetensors(dir.file("noise.safetensors"), {{"noise", Tensor::zeros(Shape{1, 12, 1, 4, 4}, DType::F32)}});
  argv[9] = m[1].str() + "x" + m[2].str();
  argv.insert(argv.end(), {"--noise", dir.file("noise.safetensors")});
  r = run_program(argv);
  EXPECT_EQ(r.code, 65) << r.err;
  EXPECT_NE(r.err.find("this video needs"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));
}

TEST(GenerateHostile, ExistingPreviewsDumpsAndProbeOutputsNeedOverwrite) {
  TempDir dir;
  const std::string out = dir.file("v.mp4");
  write_text(dir.file("v.png"), "my picture");
  RunResult r = run_t2v(concat({"generate", "-p", "a red ball", "-o", out, "--preview"}, kTiny));
  EXPECT_EQ(r.code, 73) << r.err;
  expect_one_line_error(r, "v.png' already exists");
  EXPECT_EQ(read_text(dir.file("v.png")), "my picture");
  EXPECT_FALSE(fs::exists(out));

  write_text(dir.file("dump.safetensors"), "my tensors");
  r = run_t2v(concat({"generate", "-p", "a red ball", "-o", out, "--dump-frames", dir.file("dump.safetensors")}, kTiny));
  EXPECT_EQ(r.code, 73) << r.err;
  EXPECT_EQ(read_text(dir.file("dump.safetensors")), "my tensors");

  // Never replaced, even with --overwrite: a FIFO, a link, a device node.
  ASSERT_EQ(::mkfifo(dir.file("fifo").c_str(), 0600), 0);
  fs::create_symlink(dir.file("target"), dir.file("link"));
  std::vector<std::string> specials = {dir.file("fifo"), dir.file("link")};
  if (::mknod(dir.file("null").c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0) specials.push_back(dir.file("null"));
  for (const std::string& s : specials) {
    r = run_t2v(concat({"generate", "-p", "a red ball", "-o", out, "--overwrite", "--dump-frames", s}, kTiny));
    EXPECT_EQ(r.code, 73) << s << ": " << r.err;
    expect_one_line_error(r, "exists and is a");
    EXPECT_FALSE(fs::is_regular_file(fs::symlink_status(s))) << s;
  }
  EXPECT_FALSE(fs::exists(dir.file("target")));

  // probe --out: the same rule, before any weights are read.
  write_text(dir.file("probe_out.safetensors"), "keep me");
  save_safetensors(dir.file("in.safetensors"), {{"latents", Tensor::zeros(Shape{1, 12, 1, 2, 2}, DType::F32)}});
  r = run_t2v({"probe", "vae-decode", "--weights", test_model_dir() + "/vae", "--config",
               test_model_dir() + "/vae/config.json", "--inputs", dir.file("in.safetensors"), "--out",
               dir.file("probe_out.safetensors")});
  EXPECT_EQ(r.code, 73) << r.err;
  expect_one_line_error(r, "already exists");
  EXPECT_EQ(read_text(dir.file("probe_out.safetensors")), "keep me");
  r = run_t2v({"probe", "vae-decode", "--weights", test_model_dir() + "/vae", "--config",
               test_model_dir() + "/vae/config.json", "--inputs", dir.file("in.safetensors"), "--out",
               dir.file("probe_out.safetensors"), "--overwrite"});
  EXPECT_EQ(r.code, 0) << r.err;
  SafetensorsFile written(dir.file("probe_out.safetensors"));
  EXPECT_NE(written.find("sample"), nullptr);
}

TEST(GenerateHostile, BadOutputPathsFailBeforeAnyModelLoads) {
  TempDir dir;
  fs::create_directories(dir.file("a-folder"));
  fs::create_symlink(dir.file("nowhere/x.mp4"), dir.file("dangling.mp4"));
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"-o", dir.file("a-folder"), "--overwrite"}, "is a folder"},
      {{"-o", dir.file("dangling.mp4")}, "is a symbolic link"},
      {{"-o", dir.file("dangling.mp4"), "--overwrite"}, "is a symbolic link"},
      {{"-o", dir.file(std::string(300, 'n') + ".mp4")}, "bytes; the file system takes at most"},
  };
  for (const auto& [args, what] : cases) {
    RunResult r = run_t2v(concat(concat({"generate", "-p", "a red ball"}, args), kTiny));
    EXPECT_EQ(r.code, 73) << r.err;
    expect_one_line_error(r, what);  // one line: nothing was encoded or rendered first
  }
  EXPECT_FALSE(fs::exists(dir.file("nowhere")));
}

TEST(GenerateHostile, NoiseFilesAreCheckedFromTheHeaderBeforeTheModelLoads) {
  TempDir dir;
  const std::string out = dir.file("v.mp4");
  auto gen = [&](const std::string& noise) {
    return run_bounded(
        concat({"generate", "-p", "a red ball", "-o", out, "--model", test_model_dir(), "--noise", noise}, kTiny));
  };
  // The default model's latents for 16x16, 1 frame: [1, 12, 1, 4, 4] (192 elements).
  save_safetensors(dir.file("flat.safetensors"), {{"noise", Tensor::zeros(Shape{192}, DType::F32)}});
  RunResult r = gen(dir.file("flat.safetensors"));
  EXPECT_EQ(r.code, 65) << r.err;
  expect_one_line_error(r, "is [192], this video needs [1, 12, 1, 4, 4]");
  save_safetensors(dir.file("ints.safetensors"), {{"noise", Tensor::zeros(Shape{1, 12, 1, 4, 4}, DType::I64)}});
  r = gen(dir.file("ints.safetensors"));
  EXPECT_EQ(r.code, 65) << r.err;
  expect_one_line_error(r, "not a float tensor");
  Tensor nan = Tensor::zeros(Shape{1, 12, 1, 4, 4}, DType::F32);
  nan.data<float>()[5] = std::nanf("");
  save_safetensors(dir.file("nan.safetensors"), {{"noise", nan}});
  r = gen(dir.file("nan.safetensors"));
  EXPECT_EQ(r.code, 65) << r.err;
  expect_one_line_error(r, "holds NaN or Inf (element 5)");
  // A 2 GB sparse file: its header is enough to refuse it.
  {
    const std::string h = "{\"noise\":{\"dtype\":\"F32\",\"shape\":[536870912],\"data_offsets\":[0,2147483648]}}";
    std::string padded = h + std::string((8 - h.size() % 8) % 8, ' ');
    const uint64_t n = padded.size();
    std::ofstream f(dir.file("sparse.safetensors"), std::ios::binary);
    f.write(reinterpret_cast<const char*>(&n), 8);
    f << padded;
  }
  fs::resize_file(dir.file("sparse.safetensors"), fs::file_size(dir.file("sparse.safetensors")) + (uint64_t{2} << 30));
  const auto t0 = Clock::now();
  r = gen(dir.file("sparse.safetensors"));
  EXPECT_EQ(r.code, 65) << r.err;
  EXPECT_LT(seconds_since(t0), 5.0);
  EXPECT_FALSE(fs::exists(out));
}

TEST(GenerateHostile, FifosAsModelFilesAreRefusedWithoutHanging) {
  TempDir dir;
  ASSERT_EQ(::mkfifo(dir.file("fifo.safetensors").c_str(), 0600), 0);
  const auto t0 = Clock::now();
  RunResult r = run_bounded({"inspect", dir.file("fifo.safetensors")});
  EXPECT_EQ(r.code, 66) << r.err;
  expect_one_line_error(r, "not a regular file");
  r = run_bounded(concat({"generate", "-p", "a red ball", "-o", dir.file("v.mp4"), "--model", test_model_dir(),
                          "--dit", dir.file("fifo.safetensors")},
                         kTiny));
  EXPECT_EQ(r.code, 66) << r.err;
  r = run_bounded(concat({"generate", "-p", "a red ball", "-o", dir.file("v.mp4"), "--model", test_model_dir(),
                          "--tokenizer", dir.file("fifo.safetensors")},
                         kTiny));
  EXPECT_EQ(r.code, 66) << r.err;
  // Config files and t2v.json in a model folder.
  const std::string model = copy_model(dir);
  for (const std::string& f : {model + "/transformer/config.json", model + "/t2v.json", model + "/tokenizer/tokenizer.json"}) {
    const std::string keep = f + ".real";
    fs::rename(f, keep);
    ASSERT_EQ(::mkfifo(f.c_str(), 0600), 0);
    r = run_bounded(concat({"generate", "-p", "a red ball", "-o", dir.file("v.mp4"), "--model", model}, kTiny));
    EXPECT_EQ(r.code, 66) << f << ": " << r.err;
    expect_one_line_error(r, "FIFO");
    fs::remove(f);
    fs::rename(keep, f);
  }
  EXPECT_LT(seconds_since(t0), 30.0);
  EXPECT_FALSE(fs::exists(dir.file("v.mp4")));
}

TEST(GenerateHostile, DuplicateKeysInModelDefaultsAreConfigErrors) {
  TempDir dir;
  const std::string model = copy_model(dir);
  write_text(model + "/t2v.json", "{\"steps\": 2, \"steps\": 1000000}\n");
  RunResult r = run_t2v({"generate", "-p", "a red ball", "-o", dir.file("v.mp4"), "--model", model});
  EXPECT_EQ(r.code, 78) << r.err;
  expect_one_line_error(r, "duplicate key \"steps\"");
  write_text(model + "/t2v.json", "{\"sampler\": \"ddim\"}\n");
  r = run_t2v({"generate", "-p", "a red ball", "-o", dir.file("v.mp4"), "--model", model});
  EXPECT_EQ(r.code, 78) << r.err;
  expect_one_line_error(r, "t2v.json': \"sampler\" must be");
}

TEST(GenerateHostile, WronglyTypedTokenizerJsonIsADataErrorNamingTheKey) {
  TempDir dir;
  const std::string model = copy_model(dir);
  for (const auto& [text, key] : std::vector<std::pair<std::string, std::string>>{
           {"{\"model\": {\"type\": 5}}", "model.type"},
           {"{\"model\": {\"type\": \"Unigram\", \"byte_fallback\": \"no\"}}", "model.byte_fallback"},
           {"{\"model\": []}", "\"model\""},
           {"[1, 2]", "(top level)"},
           {"{\"added_tokens\": {\"a\": 1}}", "added_tokens"},
           {"{\"added_tokens\": [{\"content\": \"x\", \"id\": -1}]}", "added_tokens"},
       }) {
    write_text(model + "/tokenizer/tokenizer.json", text);
    RunResult r = run_t2v(concat({"generate", "-p", "a red ball", "-o", dir.file("v.mp4"), "--model", model}, kTiny));
    EXPECT_EQ(r.code, 65) << text << ": " << r.err;
    expect_one_line_error(r, key);
    EXPECT_NE(r.err.find("tokenizer.json"), std::string::npos) << r.err;
  }
}

TEST(GenerateHostile, AFailedPreviewLeavesNothingSoTheRetrySucceeds) {
  TempDir dir;
  const std::string out = dir.file("v.mp4");
  // At 128x128 and 17 frames the MP4 (~25 KB) and the contact sheet (~32 KB) fit under a
  // 60 KiB file size limit (bash counts -f in KiB), the GIF (~100 KB) does not: its write
  // fails as on a full disk.
  std::vector<std::string> argv = {"/bin/bash", "-c", "trap '' XFSZ; ulimit -f 60; exec \"$@\"", "t2v", t2v_exe(),
                                   "generate", "-p", "a red ball rolling", "--size", "128x128", "--frames", "17",
                                   "--steps", "2", "--seed", "1", "-o", out, "--preview", "-q"};
  RunResult r = run_program(argv);
  ASSERT_EQ(r.code, 74) << r.err;
  EXPECT_NE(r.err.find("v.gif"), std::string::npos) << r.err;
  for (const char* f : {"v.mp4", "v.png", "v.gif"}) EXPECT_FALSE(fs::exists(dir.file(f))) << f;
  // Exit 74 says "run it again": the same command then succeeds.
  r = run_t2v({"generate", "-p", "a red ball rolling", "--size", "128x128", "--frames", "17", "--steps", "2", "--seed",
               "1", "-o", out, "--preview", "-q"});
  EXPECT_EQ(r.code, 0) << r.err;
  for (const char* f : {"v.mp4", "v.png", "v.gif"}) EXPECT_TRUE(fs::exists(dir.file(f))) << f;
}

// Every error is one line: a dozen invocations that fail in different places.
TEST(GenerateHostile, EveryErrorIsOneLine) {
  TempDir dir;
  const std::string model = copy_model(dir);
  fs::copy(model, dir.file("bad_dit"), fs::copy_options::recursive);
  std::string cfg = read_text(dir.file("bad_dit/transformer/config.json"));
  cfg.replace(cfg.find("\"ffn_dim\": 512"), 14, "\"ffn_dim\": 256");
  write_text(dir.file("bad_dit/transformer/config.json"), cfg);
  fs::copy(model, dir.file("bad_t5"), fs::copy_options::recursive);
  cfg = read_text(dir.file("bad_t5/text_encoder/config.json"));
  cfg.replace(cfg.find("\"d_ff\": 128"), 11, "\"d_ff\": 64");
  write_text(dir.file("bad_t5/text_encoder/config.json"), cfg);
  fs::copy(model, dir.file("bad_vae"), fs::copy_options::recursive);
  cfg = read_text(dir.file("bad_vae/vae/config.json"));
  cfg.replace(cfg.find("\"base_dim\": 16"), 14, "\"base_dim\": 8");
  write_text(dir.file("bad_vae/vae/config.json"), cfg);
  // A DiT without one tensor, and one with an integer weight.
  fs::copy(model, dir.file("missing"), fs::copy_options::recursive);
  fs::copy(model, dir.file("ints"), fs::copy_options::recursive);
  {
    const std::string w = weights_in(model + "/transformer");
    SafetensorsFile f(w);
    std::vector<std::pair<std::string, Tensor>> all, ints;
    for (const TensorInfo& t : f.tensors()) {
      Tensor x = f.get(t.name).clone();
      if (t.name != "scale_shift_table") all.emplace_back(t.name, x);
      ints.emplace_back(t.name, t.name == "scale_shift_table" ? Tensor::zeros(t.shape, DType::I32) : x);
    }
    const std::string name = fs::path(w).filename().string();
    save_safetensors(dir.file("missing/transformer/" + name), all);
    save_safetensors(dir.file("ints/transformer/" + name), ints);
  }
  const std::string out = dir.file("v.mp4");
  // -q: the stages that ran before a part failed to load print no progress lines.
  auto gen = [&](const std::string& m) {
    return concat({"generate", "-p", "x", "--model", dir.file(m), "-o", out, "-q"}, kTiny);
  };
  const std::vector<std::vector<std::string>> cases = {
      {"generate", "-p", "x", "--frobnicate"},
      {"generate", "-o", out},
      {"frobnicate"},
      {"generate", "-p", "x", "--size", "17x16", "-o", out},
      gen("bad_dit"),
      gen("bad_t5"),
      gen("bad_vae"),
      gen("missing"),
      gen("ints"),
      gen("nothing-here"),
      {"inspect", std::string(T2V_TEST_DATA_DIR) + "/core/corrupt/overlap.safetensors"},
      {"batch", dir.file("no-list.jsonl"), "--out-dir", dir.file("o")},
      {"probe", "dit", "--weights", model, "--inputs", dir.file("none"), "--out", dir.file("o.safetensors")},
  };
  for (const auto& c : cases) {
    RunResult r = run_t2v(c);
    EXPECT_NE(r.code, 0) << c[0] << " " << (c.size() > 1 ? c[1] : "");
    EXPECT_EQ(count_lines(r.err), 1u) << "exactly one line: " << r.err;
    EXPECT_EQ(r.err.rfind("t2v: error:", 0), 0u) << r.err;
  }
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace t2v::test
