// safetensors reader/writer: a file written by Python's safetensors, round trips,
// one corrupt fixture per validation rule, sharded checkpoints, pickle refusal.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/safetensors.h"

using namespace t2v;
namespace fs = std::filesystem;

namespace {

const std::string kData = std::string(T2V_TEST_DATA_DIR) + "/core";

struct TempDir {
  fs::path path;
  TempDir() {
    std::string t = (fs::temp_directory_path() / "t2v_core_XXXXXX").string();
    EXPECT_NE(::mkdtemp(t.data()), nullptr);
    path = t;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// A raw safetensors file: u64 length, header, data.
std::string raw_file(const std::string& header, const std::string& data) {
  std::string s(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s + header + data;
}

// Runs f, expecting a t2v::Error; returns it.
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

}  // namespace

// ---- a file written by Python's safetensors ----------------------------------------
TEST(Safetensors, ReadsPythonFixtureExactly) {
  const std::string path = kData + "/python_fixture.safetensors";
  nlohmann::json want;
  std::ifstream(kData + "/python_fixture.json") >> want;
  SafetensorsFile f(path);
  EXPECT_EQ(f.tensors().size(), want["tensors"].size());
  for (const auto& [k, v] : want["metadata"].items()) {
    ASSERT_TRUE(f.metadata().count(k)) << k;
    EXPECT_EQ(f.metadata().at(k), v.get<std::string>());
  }
  EXPECT_EQ(f.metadata().size(), want["metadata"].size());
  uint64_t prev_end = 0;
  for (const TensorInfo& ti : f.tensors()) {  // file order: ascending offsets
    EXPECT_EQ(ti.begin, prev_end);
    prev_end = ti.end;
  }
  for (const auto& [name, w] : want["tensors"].items()) {
    SCOPED_TRACE(name);
    const TensorInfo* ti = f.find(name);
    ASSERT_NE(ti, nullptr);
    EXPECT_STREQ(dtype_name(ti->dtype), w["dtype"].get<std::string>().c_str());
    EXPECT_EQ(ti->shape.vec(), w["shape"].get<std::vector<int64_t>>());
    Tensor t = f.get(name);
    EXPECT_EQ(t.shape(), ti->shape);
    const auto& vals = w["values"];
    ASSERT_EQ(static_cast<int64_t>(vals.size()), t.numel());
    for (int64_t i = 0; i < t.numel(); ++i) {
      if (ti->dtype == DType::I64)
        EXPECT_EQ(t.data<int64_t>()[i], vals[i].get<int64_t>());
      else if (ti->dtype == DType::I32)
        EXPECT_EQ(t.data<int32_t>()[i], vals[i].get<int32_t>());
      else if (ti->dtype == DType::U8)
        EXPECT_EQ(t.data<uint8_t>()[i], vals[i].get<int>());
      else  // every narrow float is exact in fp32, so torch's value must match exactly
        EXPECT_EQ(t.item(i), static_cast<float>(vals[i].get<double>())) << "element " << i;
    }
  }
  EXPECT_EQ(f.find("nope"), nullptr);
  Error e = expect_error([&] { f.get("nope"); });
  EXPECT_EQ(e.code(), 65);
  EXPECT_NE(std::string(e.what()).find("no tensor named \"nope\""), std::string::npos);
}

// ---- writer -> reader -----------------------------------------------------------------------
TEST(Safetensors, RoundTripsEveryDtypeInGivenOrder) {
  TempDir dir;
  std::vector<std::pair<std::string, Tensor>> ts;
  Tensor f32 = Tensor::from_floats({1.5f, -2.0f, 3.25f, 1e-20f, -0.0f, 7.0f}, {2, 3});
  ts.emplace_back("z.first", f32);  // names deliberately not sorted: order is kept
  ts.emplace_back("a.f16", f32.to(DType::F16));
  ts.emplace_back("m.bf16", f32.to(DType::BF16).reshape({3, 2}));
  ts.emplace_back("e4m3", f32.to(DType::F8_E4M3));
  ts.emplace_back("e5m2", f32.to(DType::F8_E5M2).reshape({6}));
  ts.emplace_back("i64", f32.to(DType::I64));
  ts.emplace_back("i32", f32.to(DType::I32).reshape({1, 1, 1, 2, 3}));
  ts.emplace_back("u8", Tensor::full({5}, 200.0f, DType::U8));
  ts.emplace_back("empty", Tensor::empty({0, 4}, DType::BF16));
  ts.emplace_back("scalar", Tensor::full({}, 3.0f));
  const std::string path = dir / "out.safetensors";
  save_safetensors(path, ts, {{"seed", "42"}, {"prompt", "a cat\twith \"quotes\" ✓"}});

  // Header is padded with spaces to a multiple of 8; nothing else left in the folder.
  std::string bytes = read_bytes(path);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator{}), 1);

  SafetensorsFile f(path);
  ASSERT_EQ(f.tensors().size(), ts.size());
  for (size_t i = 0; i < ts.size(); ++i) {
    const TensorInfo& ti = f.tensors()[i];  // ascending offsets == given order
    EXPECT_EQ(ti.name, ts[i].first);
    EXPECT_EQ(ti.dtype, ts[i].second.dtype());
    EXPECT_EQ(ti.shape, ts[i].second.shape());
    Tensor back = f.get(ti.name);
    ASSERT_EQ(back.nbytes(), ts[i].second.nbytes());
    EXPECT_EQ(std::memcmp(back.raw(), ts[i].second.raw(), back.nbytes()), 0) << ti.name;
  }
  EXPECT_EQ(f.metadata().at("seed"), "42");
  EXPECT_EQ(f.metadata().at("prompt"), "a cat\twith \"quotes\" ✓");

  // Overwriting replaces the file atomically.
  save_safetensors(path, {{"only", f32}});
  SafetensorsFile g(path);
  EXPECT_EQ(g.tensors().size(), 1u);
  EXPECT_TRUE(g.metadata().empty());
}

TEST(Safetensors, WriterErrorsNameThePath) {
  Error e = expect_error([] { save_safetensors("/nonexistent_t2v_dir/x.safetensors", {}); });
  EXPECT_EQ(e.code(), 73);
  EXPECT_NE(std::string(e.what()).find("/nonexistent_t2v_dir/x.safetensors"), std::string::npos);
}

TEST(Safetensors, MisalignedTensorIsCopiedAligned) {
  // F16 [3] (6 bytes) first puts the F32 tensor at an odd offset for float access.
  TempDir dir;
  Tensor a = Tensor::from_floats({1, 2, 3}, {3}).to(DType::F16);
  Tensor b = Tensor::from_floats({4.5f, -5.5f}, {2});
  save_safetensors(dir / "m.safetensors", {{"a", a}, {"b", b}});
  SafetensorsFile f(dir / "m.safetensors");
  Tensor t = f.get("b");
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw()) % 4, 0u);
  EXPECT_EQ(t.to_vector(), (std::vector<float>{4.5f, -5.5f}));
}

TEST(Safetensors, AcceptsWhatTheReferenceAccepts) {
  std::map<std::string, std::string> meta;
  // Offsets listed out of order, zero-size tensors sharing an offset, padding.
  std::string h = R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},)"
                  R"("z":{"dtype":"BF16","shape":[0,7],"data_offsets":[4,4]},)"
                  R"("a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                  R"("__metadata__":{"k":"v"}}   )";
  auto ts = parse_safetensors_header("h", h.data(), h.size(), 8, &meta);
  ASSERT_EQ(ts.size(), 3u);
  EXPECT_EQ(ts[0].name, "a");
  EXPECT_EQ(ts[1].name, "z");
  EXPECT_EQ(ts[2].name, "b");
  EXPECT_EQ(meta.at("k"), "v");
  std::string empty = "{}";
  EXPECT_TRUE(parse_safetensors_header("h", empty.data(), empty.size(), 0, nullptr).empty());
  // A 640-byte header starts with bytes 80 02, the pickle protocol-2 magic.
  TempDir dir;
  std::string h640 = R"({"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})";
  h640.append(640 - h640.size(), ' ');
  write_bytes(dir / "p.safetensors", raw_file(h640, "A"));
  EXPECT_NO_THROW(refuse_pickle(dir / "p.safetensors"));
  SafetensorsFile f(dir / "p.safetensors");
  EXPECT_EQ(f.get("x").data<uint8_t>()[0], 'A');
}

// ---- corrupt fixtures: one per rule ---------------------------------------------------------
TEST(Safetensors, EachCorruptFixtureGivesOneLineError65) {
  const std::string dir = kData + "/corrupt";
  std::ifstream list(dir + "/EXPECTED.tsv");
  std::string line;
  std::set<std::string> listed;
  while (std::getline(list, line)) {
    if (line.empty() || line[0] == '#') continue;
    size_t tab = line.find('\t');
    ASSERT_NE(tab, std::string::npos) << line;
    const std::string file = line.substr(0, tab), expect = line.substr(tab + 1);
    const std::string path = dir + "/" + file;
    listed.insert(file);
    SCOPED_TRACE(file);
    for (int via_store = 0; via_store < 2; ++via_store) {
      Error e = expect_error([&] {
        if (via_store)
          TensorStore::open(path);
        else
          SafetensorsFile f(path);
      });
      std::string msg = e.what();
      if (!via_store) std::printf("[ corrupt ] %s\n", msg.substr(dir.size() + 1).c_str());
      EXPECT_EQ(e.code(), 65) << msg;
      EXPECT_NE(msg.find(expect), std::string::npos) << "message: " << msg << "\nexpected: " << expect;
      EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << "message must start with the file: " << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line: " << msg;
      EXPECT_NE(msg.find("hint: "), std::string::npos) << msg;
    }
  }
  EXPECT_GE(listed.size(), 30u);
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".safetensors") {
      EXPECT_TRUE(listed.count(e.path().filename().string())) << e.path() << " has no expectation";
    }
}

TEST(Safetensors, MissingFileAndFolderAre66) {
  Error e = expect_error([] { SafetensorsFile f("/nonexistent/model.safetensors"); });
  EXPECT_EQ(e.code(), 66);
  EXPECT_NE(std::string(e.what()).find("/nonexistent/model.safetensors"), std::string::npos);
  EXPECT_EQ(expect_error([] { TensorStore::open("/nonexistent/model"); }).code(), 66);
  EXPECT_EQ(expect_error([] { SafetensorsFile f(kData); }).code(), 66);
}

TEST(Safetensors, RefusePickleGivesConversionCommand) {
  Error e = expect_error([] { refuse_pickle(kData + "/corrupt/pickle_zip.safetensors"); });
  EXPECT_EQ(e.code(), 65);
  EXPECT_NE(std::string(e.what()).find("safetensors.torch import save_file"), std::string::npos);
  EXPECT_NO_THROW(refuse_pickle(kData + "/python_fixture.safetensors"));
  EXPECT_NO_THROW(refuse_pickle("/nonexistent/x.pth"));
}

// ---- sharded checkpoints --------------------------------------------------------------------------
namespace {

void write_index(const std::string& path, const std::map<std::string, std::string>& weight_map) {
  nlohmann::json j;
  j["metadata"] = {{"total_size", 0}};
  j["weight_map"] = weight_map;
  std::ofstream(path) << j.dump(1);
}

}  // namespace

TEST(TensorStore, OpensIndexFolderAndSingleFile) {
  TempDir dir;
  Tensor a = Tensor::from_floats({1, 2}, {2}), b = Tensor::from_floats({3, 4, 5}, {3});
  save_safetensors(dir / "model-00001-of-00002.safetensors", {{"blocks.0.w", a}, {"head.w", b}});
  save_safetensors(dir / "model-00002-of-00002.safetensors", {{"blocks.1.w", b}});
  write_index(dir / "model.safetensors.index.json", {{"blocks.0.w", "model-00001-of-00002.safetensors"},
                                                     {"head.w", "model-00001-of-00002.safetensors"},
                                                     {"blocks.1.w", "model-00002-of-00002.safetensors"}});
  for (const std::string& p : {dir / "model.safetensors.index.json", dir.path.string()}) {
    TensorStore s = TensorStore::open(p);
    EXPECT_EQ(s.names(), (std::vector<std::string>{"blocks.0.w", "blocks.1.w", "head.w"}));
    EXPECT_EQ(s.files().size(), 2u);
    EXPECT_TRUE(s.contains("head.w"));
    EXPECT_EQ(s.get("blocks.1.w").to_vector(), (std::vector<float>{3, 4, 5}));
    EXPECT_EQ(s.info("blocks.0.w").shape, Shape({2}));
    EXPECT_EQ(s.file_of("blocks.1.w"), dir / "model-00002-of-00002.safetensors");
    EXPECT_NE(s.description().find("(2 shards)"), std::string::npos) << s.description();
    Error e = expect_error([&] { s.info("missing.key"); });
    EXPECT_EQ(e.code(), 65);
    EXPECT_NE(std::string(e.what()).find("missing.key"), std::string::npos);
  }
  TensorStore one = TensorStore::open(dir / "model-00002-of-00002.safetensors");
  EXPECT_EQ(one.names(), (std::vector<std::string>{"blocks.1.w"}));
  EXPECT_EQ(one.description(), dir / "model-00002-of-00002.safetensors");
}

TEST(TensorStore, FolderWithoutIndexTakesEveryFile) {
  TempDir dir;
  save_safetensors(dir / "a.safetensors", {{"x", Tensor::full({1}, 1.0f)}});
  save_safetensors(dir / "b.safetensors", {{"y", Tensor::full({1}, 2.0f)}});
  write_bytes(dir / "notes.txt", "ignored");
  TensorStore s = TensorStore::open(dir.path.string());
  EXPECT_EQ(s.names(), (std::vector<std::string>{"x", "y"}));
  EXPECT_NE(s.description().find("(2 files)"), std::string::npos);
  // The same name in two files is refused, naming both.
  save_safetensors(dir / "c.safetensors", {{"x", Tensor::full({1}, 3.0f)}});
  Error e = expect_error([&] { TensorStore::open(dir.path.string()); });
  EXPECT_EQ(e.code(), 65);
  EXPECT_NE(std::string(e.what()).find("tensor x also appears in"), std::string::npos) << e.what();
}

TEST(TensorStore, IndexErrorsNameTheShard) {
  TempDir dir;
  save_safetensors(dir / "s1.safetensors", {{"x", Tensor::full({1}, 1.0f)}});
  {
    write_index(dir / "m.safetensors.index.json", {{"x", "s1.safetensors"}, {"y", "s2.safetensors"}});
    Error e = expect_error([&] { TensorStore::open(dir / "m.safetensors.index.json"); });
    EXPECT_EQ(e.code(), 66);
    EXPECT_NE(std::string(e.what()).find("shard \"s2.safetensors\" is missing"), std::string::npos) << e.what();
  }
  for (const std::string bad : {"../s1.safetensors", "/etc/passwd", "sub/../../x.safetensors"}) {
    write_index(dir / "m.safetensors.index.json", {{"x", bad}});
    Error e = expect_error([&] { TensorStore::open(dir / "m.safetensors.index.json"); });
    EXPECT_EQ(e.code(), 65);
    EXPECT_NE(std::string(e.what()).find("outside the index's folder"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
  }
  {
    save_safetensors(dir / "s2.safetensors", {{"z", Tensor::full({1}, 1.0f)}});
    write_index(dir / "m.safetensors.index.json", {{"x", "s1.safetensors"}, {"y", "s2.safetensors"}});
    Error e = expect_error([&] { TensorStore::open(dir / "m.safetensors.index.json"); });
    EXPECT_EQ(e.code(), 65);
    EXPECT_NE(std::string(e.what()).find("index places tensor y in s2.safetensors"), std::string::npos) << e.what();
  }
  {
    write_bytes(dir / "m.safetensors.index.json", R"({"weight_map": {"x": "s1.safetensors", "x": "s2.safetensors"}})");
    Error e = expect_error([&] { TensorStore::open(dir / "m.safetensors.index.json"); });
    EXPECT_EQ(e.code(), 65);
    EXPECT_NE(std::string(e.what()).find("duplicate key \"x\""), std::string::npos) << e.what();
  }
  {
    write_bytes(dir / "m.safetensors.index.json", R"({"metadata": {}})");
    EXPECT_EQ(expect_error([&] { TensorStore::open(dir.path.string()); }).code(), 65);
  }
}

TEST(TensorStore, FolderWithoutSafetensorsIs66) {
  TempDir dir;
  Error e = expect_error([&] { TensorStore::open(dir.path.string()); });
  EXPECT_EQ(e.code(), 66);
  write_bytes(dir / "pytorch_model.bin", std::string("PK\x03\x04", 4) + std::string(40, '\0'));
  e = expect_error([&] { TensorStore::open(dir.path.string()); });
  EXPECT_EQ(e.code(), 66);
  EXPECT_NE(std::string(e.what()).find("pytorch_model.bin"), std::string::npos) << e.what();
  e = expect_error([&] { TensorStore::open(dir / "pytorch_model.bin"); });
  EXPECT_EQ(e.code(), 65);
  EXPECT_NE(std::string(e.what()).find("save_file"), std::string::npos) << e.what();
}
