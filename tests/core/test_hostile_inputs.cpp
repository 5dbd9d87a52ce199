// core/ against hostile inputs (docs/bad_inputs.md #15, #19, #68, #71, #76, #78, #79): headers
// with 100,000 tensors parse in linear time, input files that are FIFOs or devices are refused
// without blocking, strict JSON, the NaN/Inf scan of weights, outputs that may not be
// replaced, and the Unicode name key that tells when two file names collide.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/dtype.h"
#include "core/file_read.h"
#include "core/finite.h"
#include "core/json_strict.h"
#include "core/safetensors.h"
#include "core/unicode.h"
#include "core/utf8.h"
#include "core/weights.h"

using namespace t2v;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

struct TempFolder {
  fs::path dir;
  TempFolder() {
    std::string t = (fs::temp_directory_path() / "t2v_hostile_XXXXXX").string();
    EXPECT_NE(::mkdtemp(t.data()), nullptr);
    dir = t;
  }
  ~TempFolder() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::string file(const std::string& name) const { return (dir / name).string(); }
};

template <class F>
Error expect_error(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "no t2v::Error was thrown";
  return Error(0, "");
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// CPU seconds of this process: a bound that holds on a machine shared with other jobs.
double cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec * 1e-9;
}

// The header of n zero-size tensors, the shape that made the reader quadratic.
std::string zero_size_header(int n) {
  std::string h = "{";
  for (int i = 0; i < n; ++i) {
    if (i) h += ',';
    h += "\"t";
    h += std::to_string(i);
    h += "\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}";
  }
  h += "}";
  h.append((8 - h.size() % 8) % 8, ' ');
  return h;
}

void write_safetensors_bytes(const std::string& path, const std::string& header) {
  std::ofstream f(path, std::ios::binary);
  const uint64_t n = header.size();
  f.write(reinterpret_cast<const char*>(&n), 8);
  f << header;
}

}  // namespace

// 100,000 zero-size tensors took 27 s (nlohmann's callback parser rescans the root object
// each time an entry closes); linear now: about 0.3 s of CPU. CPU seconds, as the machine
// may be shared; the bound is far below the quadratic time and far above the linear one.
TEST(HostileSafetensors, HundredThousandTensorsParseInLinearTime) {
  const std::string header = zero_size_header(100000);
  double c0 = cpu_seconds();
  std::vector<TensorInfo> ts = parse_safetensors_header("mem", header.data(), header.size(), 0, nullptr);
  const double parse_s = cpu_seconds() - c0;
  EXPECT_EQ(ts.size(), 100000u);
  EXPECT_LT(parse_s, 3.0);

  TempFolder tmp;
  write_safetensors_bytes(tmp.file("many.safetensors"), header);
  c0 = cpu_seconds();
  TensorStore store = TensorStore::open(tmp.file("many.safetensors"));
  const double open_s = cpu_seconds() - c0;
  EXPECT_EQ(store.names().size(), 100000u);
  EXPECT_TRUE(store.contains("t99999"));
  EXPECT_LT(open_s, 4.0);
  std::printf("100,000 tensors: header parsed in %.2f CPU s, store opened in %.2f CPU s\n", parse_s, open_s);
}

TEST(HostileJson, DuplicateKeysDepthAndOverflowAreOneError) {
  StrictJsonOptions o;
  o.code = kExitConfig;
  o.what = "config";
  Error e = expect_error([&] { parse_json_strict("c.json", "{\"a\": 1, \"b\": {\"x\": 1, \"x\": 2}}", o); });
  EXPECT_EQ(e.code(), kExitConfig);
  EXPECT_NE(std::string(e.what()).find("c.json: duplicate key \"x\" in the config JSON"), std::string::npos) << e.what();
  e = expect_error([&] { parse_json_strict("c.json", "{\"a\": 1e999}", o); });
  EXPECT_NE(std::string(e.what()).find("number overflow"), std::string::npos) << e.what();
  o.max_depth = 3;
  e = expect_error([&] { parse_json_strict("c.json", "[[[[1]]]]", o); });
  EXPECT_NE(std::string(e.what()).find("nests deeper than 3"), std::string::npos) << e.what();
  e = expect_error([&] { parse_json_strict("c.json", "{} x", o); });
  EXPECT_NE(std::string(e.what()).find("trailing data"), std::string::npos) << e.what();
  // The same keys in different objects are fine, and the tree is what nlohmann builds.
  const std::string text = "{\"a\": [1, {\"a\": 2.5, \"b\": null}], \"b\": {\"a\": \"x\", \"c\": [true, false]}}";
  o.max_depth = 8;
  EXPECT_EQ(parse_json_strict("c.json", text, o), nlohmann::json::parse(text));
}

TEST(HostileFiles, FifosDevicesAndFoldersAreRefusedWithoutBlocking) {
  TempFolder tmp;
  ASSERT_EQ(::mkfifo(tmp.file("fifo").c_str(), 0600), 0);
  fs::create_directories(tmp.file("folder"));
  const auto t0 = Clock::now();
  for (const std::string& p : {tmp.file("fifo"), std::string("/dev/zero"), tmp.file("folder")}) {
    Error e = expect_error([&] { read_input_file(p, "config file", 1 << 20, kExitConfig); });
    EXPECT_EQ(e.code(), kExitNoInput) << e.what();
    EXPECT_NE(std::string(e.what()).find("not a regular file"), std::string::npos) << e.what();
    e = expect_error([&] { SafetensorsFile f(p); });
    EXPECT_EQ(e.code(), kExitNoInput) << e.what();
  }
  refuse_pickle(tmp.file("fifo"));  // does not block either
  EXPECT_LT(seconds_since(t0), 5.0);
  // A regular file above the cap: refused without reading it all.
  {
    std::ofstream f(tmp.file("big.json"));
    f << std::string(4096, ' ');
  }
  Error e = expect_error([&] { read_input_file(tmp.file("big.json"), "config file", 1024, kExitConfig); });
  EXPECT_EQ(e.code(), kExitConfig);
  EXPECT_EQ(read_input_file(tmp.file("big.json"), "config file", 4096, kExitConfig).size(), 4096u);
  e = expect_error([&] { read_input_file(tmp.file("missing"), "config file", 10, kExitConfig); });
  EXPECT_EQ(e.code(), kExitNoInput);
}

TEST(HostileFiles, SaveSafetensorsReplacesOnlyRegularFilesAndOnlyWhenAllowed) {
  TempFolder tmp;
  const std::vector<std::pair<std::string, Tensor>> t = {{"x", Tensor::zeros(Shape{2}, DType::F32)}};
  ASSERT_EQ(::mkfifo(tmp.file("fifo").c_str(), 0600), 0);
  fs::create_symlink(tmp.file("target"), tmp.file("link"));
  for (const std::string& p : {tmp.file("fifo"), tmp.file("link")}) {
    Error e = expect_error([&] { save_safetensors(p, t); });
    EXPECT_EQ(e.code(), kExitCantCreate) << e.what();
    EXPECT_FALSE(fs::is_regular_file(fs::symlink_status(p))) << p;
  }
  EXPECT_FALSE(fs::exists(tmp.file("target")));
  save_safetensors(tmp.file("a.safetensors"), t, {}, /*overwrite=*/false);
  Error e = expect_error([&] { save_safetensors(tmp.file("a.safetensors"), t, {}, /*overwrite=*/false); });
  EXPECT_EQ(e.code(), kExitCantCreate);
  save_safetensors(tmp.file("a.safetensors"), t);  // the default replaces a regular file
}

// The scan against a plain reference (std::isfinite after conversion to F32), for every
// float dtype, odd sizes, random values with NaN/Inf at random places.
TEST(HostileFinite, FirstNonFiniteMatchesAScalarReference) {
  std::mt19937 rng(7);
  for (DType dt : {DType::F32, DType::F16, DType::BF16, DType::F8_E4M3, DType::F8_E5M2}) {
    for (int64_t n : {1, 7, 1000, 16385, 300001}) {
      for (int trial = 0; trial < 3; ++trial) {
        std::vector<float> v(static_cast<size_t>(n));
        std::normal_distribution<float> d(0.f, 3.f);
        for (float& x : v) x = d(rng);
        if (trial > 0) {
          const float bad = trial == 1 ? std::nanf("") : -INFINITY;
          v[std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng)] = bad;
          v[std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng)] = bad;
        }
        const Tensor t = Tensor::from_floats(v, {n}).to(dt);
        const std::vector<float> back = t.to(DType::F32).to_vector();
        int64_t want = -1;
        for (int64_t i = 0; i < n && want < 0; ++i)
          if (!std::isfinite(back[static_cast<size_t>(i)])) want = i;
        EXPECT_EQ(first_non_finite(t), want) << dtype_name(dt) << " n=" << n << " trial " << trial;
      }
    }
  }
  EXPECT_EQ(first_non_finite(Tensor::zeros(Shape{10}, DType::I32)), -1);
}

TEST(HostileFinite, NonFiniteWeightIsAnErrorNamingFileAndKeyAtLoad) {
  TempFolder tmp;
  Tensor w = Tensor::from_floats({1, 2, 3, 4, 5, 6}, {2, 3});
  w.data<float>()[4] = INFINITY;
  save_safetensors(tmp.file("m.safetensors"), {{"a.weight", w}, {"b.weight", Tensor::zeros(Shape{3}, DType::F32)}});
  const TensorStore store = TensorStore::open(tmp.file("m.safetensors"));
  CheckpointOptions o;
  o.model = "test model";
  Error e = expect_error([&] {
    bind_checkpoint(store, WeightLayout{}, o, [](const WeightScope& root, CheckpointSource&) {
      root.get("b.weight", {3});
      root.get("a.weight", {2, 3});
    });
  });
  EXPECT_EQ(e.code(), kExitDataErr);
  EXPECT_NE(std::string(e.what()).find("m.safetensors: tensor a.weight holds NaN or Inf (element 4 of 6)"),
            std::string::npos)
      << e.what();
  // A dry run (headers only) reads no data and finds nothing.
  o.dry_run = true;
  bind_checkpoint(store, WeightLayout{}, o, [](const WeightScope& root, CheckpointSource&) {
    root.get("b.weight", {3});
    root.get("a.weight", {2, 3});
  });
}

TEST(HostileUnicode, NamesThatAFileSystemTakesForOneCollide) {
  auto same = [](const char* a, const char* b) { return name_collision_key(a) == name_collision_key(b); };
  EXPECT_TRUE(same("Video", "vIDEO"));
  EXPECT_TRUE(same("Stra\u00dfe", "STRASSE"));                   // full folding: ß -> ss
  EXPECT_TRUE(same("caf\u00e9", "cafe\u0301"));                  // NFC vs NFD
  EXPECT_TRUE(same("\u00c9t\u00e9", "e\u0301te\u0301"));         // and case
  EXPECT_TRUE(same("\u212b", "\u00e5"));                         // Angstrom sign, A with ring
  EXPECT_TRUE(same("\ufb01", "fi"));                             // NFKC ligature
  EXPECT_TRUE(same("\uff21\uff22", "ab"));                       // full-width
  EXPECT_TRUE(same("\u03a3\u0391", "\u03c3\u03b1"));             // Greek
  EXPECT_TRUE(same("\u03c2", "\u03c3"));                         // final sigma folds to sigma
  EXPECT_TRUE(same("\u0401", "\u0435\u0308"));                   // Cyrillic Yo = e + diaeresis, and case
  EXPECT_TRUE(same("\ud55c", "\u1112\u1161\u11ab"));             // Hangul syllable vs its jamo
  EXPECT_TRUE(same("a\u0323\u0307", "a\u0307\u0323"));           // canonical order of marks
  EXPECT_TRUE(same("ab", "a\u200db"));                           // ignorable characters
  EXPECT_FALSE(same("cafe", "caf\u00e9"));
  EXPECT_FALSE(same("a", "b"));
  EXPECT_FALSE(same("\u0391", "A"));                             // Greek Alpha is not Latin A
  EXPECT_EQ(name_collision_key("plain-ascii_1.mp4"), "plain-ascii_1.mp4");
}

TEST(HostileUnicode, BlankTextIsSpacesAndInvisibleCharactersOnly) {
  for (const char* s : {"", " ", "\u3000", "\u00a0", "\u200b", "\u2003", "\ufeff", "\u2060", "\u180e", "\u00ad",
                        "\u115f\u1160\u3164", "\u2800", "\ufe0f", "\U000e0041", "\t\u2028\u2029"})
    EXPECT_TRUE(is_blank_text(s)) << s;
  for (const char* s : {"a", " a ", "\u3000x", ".", "\u200b!", "\u0301"}) EXPECT_FALSE(is_blank_text(s)) << s;
}
