// GGUF reader: the metadata of every value type as the `gguf` package wrote it,
// ComfyUI-GGUF's 5-D tensors and orig_shape keys, one corrupt fixture per
// validation rule (tools/make_gguf_fixtures.py), a header larger than the first
// read, TensorStore dispatch and the architecture check.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "core/gguf.h"
#include "core/safetensors.h"

using namespace t2v;
namespace fs = std::filesystem;

namespace {

const std::string kData = std::string(T2V_TEST_DATA_DIR) + "/core";

struct TempDir {
  fs::path path;
  TempDir() {
    std::string t = (fs::temp_directory_path() / "t2v_gguf_XXXXXX").string();
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
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

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

// Little-endian pieces of a hand-built GGUF.
std::string u32(uint32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); }
std::string u64(uint64_t v) { return std::string(reinterpret_cast<const char*>(&v), 8); }
std::string gstr(const std::string& s) { return u64(s.size()) + s; }

}  // namespace

TEST(Gguf, ReadsEveryMetadataTypeAsThePackageWroteIt) {
  GgufFile f(kData + "/gguf/metadata.gguf");
  std::ifstream js(kData + "/gguf/metadata.json");
  const nlohmann::json expect = nlohmann::json::parse(js);
  const GgufHeader& h = f.header();
  EXPECT_EQ(h.version, 3u);
  EXPECT_EQ(h.alignment, expect["alignment"].get<uint64_t>());
  EXPECT_EQ(h.data_start % 64, 0u);
  EXPECT_EQ(f.architecture(), expect["architecture"].get<std::string>());
  for (const auto& [key, e] : expect["scalars"].items()) {
    SCOPED_TRACE(key);
    const GgufKV* kv = h.find(key);
    ASSERT_NE(kv, nullptr);
    const std::string type = e["type"];
    const nlohmann::json& v = e["value"];
    if (type == "STRING") {
      EXPECT_EQ(kv->type, GgufValueType::String);
      EXPECT_EQ(kv->string(), v.get<std::string>());
    } else if (type == "FLOAT32" || type == "FLOAT64") {
      EXPECT_EQ(kv->number(), v.get<double>());
      EXPECT_FALSE(kv->integer().has_value());
    } else if (type == "BOOL") {
      EXPECT_EQ(kv->type, GgufValueType::Bool);
      EXPECT_EQ(kv->integer(), v.get<bool>() ? 1 : 0);
    } else if (type == "UINT64") {
      // 2^63 + 5: beyond int64, still a number.
      EXPECT_FALSE(kv->integer().has_value());
      EXPECT_EQ(kv->number(), static_cast<double>(std::stoull(v.get<std::string>())));
      EXPECT_EQ(kv->repr(), v.get<std::string>());
    } else {
      EXPECT_EQ(kv->integer(), v.get<int64_t>());
      EXPECT_EQ(kv->repr(), std::to_string(v.get<int64_t>()));
    }
  }
  for (const auto& [key, e] : expect["arrays"].items()) {
    SCOPED_TRACE(key);
    const GgufKV* kv = h.find(key);
    ASSERT_NE(kv, nullptr);
    ASSERT_TRUE(kv->is_array());
    const std::string type = e["type"];
    const nlohmann::json& v = e["value"];
    EXPECT_EQ(kv->count, v.size());
    if (type == "STRING") {
      EXPECT_EQ(kv->strings(), v.get<std::vector<std::string>>());
      EXPECT_EQ(kv->strings(1)->size(), 1u);
    } else if (type == "FLOAT32") {
      EXPECT_FALSE(kv->integers().has_value());
      EXPECT_EQ(kv->repr(), "[0.5, -1]");
    } else if (type == "BOOL") {
      EXPECT_EQ(kv->integers(), (std::vector<int64_t>{1, 0}));
    } else if (type == "UINT64") {
      EXPECT_EQ(kv->integers(), (std::vector<int64_t>{int64_t{1} << 40, 0}));
    } else {
      EXPECT_EQ(kv->integers(), v.get<std::vector<int64_t>>());
    }
  }
  EXPECT_EQ(h.find("a.string")->repr(2), "[\"<pad>\", \"\", ... (3 string values)]");
  // The 5-D tensor (fix_5d_tensors) and the reshaped one (orig_shape) in PyTorch order.
  for (const auto& [name, e] : expect["tensors"].items()) {
    SCOPED_TRACE(name);
    const TensorInfo* t = f.find(name);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->shape, Shape(e["shape"].get<std::vector<int64_t>>()));
    EXPECT_FALSE(t->quant.has_value());
    EXPECT_EQ(f.get(name).to_vector(), e["values"].get<std::vector<float>>());
  }
  EXPECT_EQ(f.find("blocks.0.modulation")->shape, (Shape{1, 6, 4}));
  // Offsets in the data section are aligned to general.alignment.
  for (const TensorInfo& t : f.tensors()) EXPECT_EQ(t.begin % 64, 0u) << t.name;
}

TEST(Gguf, AcceptsVersion2AndEmptyArrays) {
  GgufFile v2(kData + "/gguf/version2.gguf");
  EXPECT_EQ(v2.header().version, 2u);
  EXPECT_EQ(v2.find("w")->shape, (Shape{2, 4}));
  EXPECT_EQ(v2.find("b")->shape, (Shape{3}));
  GgufFile e(kData + "/gguf/empty_array.gguf");
  const GgufKV* kv = e.header().find("a.empty");
  ASSERT_NE(kv, nullptr);
  EXPECT_EQ(kv->count, 0u);
  EXPECT_EQ(kv->integers(), std::vector<int64_t>{});
  EXPECT_EQ(kv->repr(), "[]");
}

TEST(Gguf, EachCorruptFixtureGivesOneLineError65) {
  const std::string dir = kData + "/gguf_corrupt";
  std::ifstream list(dir + "/EXPECTED.tsv");
  std::string line;
  std::set<std::string> listed;
  while (std::getline(list, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t tab = line.find('\t');
    ASSERT_NE(tab, std::string::npos) << line;
    const std::string file = line.substr(0, tab), expect = line.substr(tab + 1);
    const std::string path = dir + "/" + file;
    listed.insert(file);
    SCOPED_TRACE(file);
    for (int via = 0; via < 3; ++via) {
      Error e = expect_error([&] {
        if (via == 0) {
          GgufFile f(path);
        } else if (via == 1) {
          TensorStore::open(path);
        } else {
          const std::string bytes = read_bytes(path);  // the in-memory parser (the fuzzer's entry)
          parse_gguf(path, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), bytes.size());
        }
      });
      const std::string msg = e.what();
      if (via == 0) std::printf("[ corrupt ] %s\n", msg.substr(dir.size() + 1).c_str());
      EXPECT_EQ(e.code(), 65) << msg;
      EXPECT_NE(msg.find(expect), std::string::npos) << "message: " << msg << "\nexpected: " << expect;
      EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << "message must start with the file: " << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line: " << msg;
      EXPECT_NE(msg.find("hint: "), std::string::npos) << msg;
    }
  }
  EXPECT_GE(listed.size(), 40u);
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".gguf") {
      EXPECT_TRUE(listed.count(e.path().filename().string())) << e.path() << " has no expectation";
    }
}

TEST(Gguf, HeaderLongerThanTheFirstReadIsReadInFull) {
  // A 3 MB string value: the reader's first 1 MB read ends inside it.
  TempDir dir;
  const std::string big(3u << 20, 'x');
  std::string h = "GGUF" + u32(3) + u64(1) + u64(2);
  h += gstr("general.architecture") + u32(8) + gstr("wan");
  h += gstr("big") + u32(8) + gstr(big);
  h += gstr("w") + u32(1) + u64(4) + u32(0) + u64(0);
  h.append((32 - h.size() % 32) % 32, '\0');
  const float vals[4] = {1.0f, -2.0f, 3.5f, 0.25f};
  h.append(reinterpret_cast<const char*>(vals), sizeof vals);
  write_bytes(dir / "big.gguf", h);
  GgufFile f(dir / "big.gguf");
  EXPECT_EQ(f.header().find("big")->string()->size(), big.size());
  EXPECT_EQ(f.get("w").to_vector(), (std::vector<float>{1.0f, -2.0f, 3.5f, 0.25f}));
  // The in-memory parser asks for more bytes rather than calling the file truncated.
  const auto* p = reinterpret_cast<const uint8_t*>(h.data());
  EXPECT_THROW(parse_gguf("x", p, 1000, h.size()), GgufNeedMore);
  // The same bytes cut short are a truncated file.
  Error e = expect_error([&] { parse_gguf("x", p, 1000, 1000); });
  EXPECT_NE(std::string(e.what()).find("runs past the end of the file"), std::string::npos) << e.what();
}

TEST(Gguf, QuantizedTensorInfoAndRawBytes) {
  GgufFile f(kData + "/gguf/quant_goldens.gguf");
  const TensorInfo* t = f.find("q4_k.0");
  ASSERT_NE(t, nullptr);
  ASSERT_TRUE(t->quant.has_value());
  EXPECT_EQ(*t->quant, QuantType::Q4_K);
  EXPECT_EQ(t->dtype, DType::U8);
  EXPECT_EQ(t->shape, (Shape{3, 256}));
  EXPECT_EQ(t->end - t->begin, 3u * 144u);
  EXPECT_STREQ(tensor_type_name(*t), "Q4_K");
  const Tensor raw = f.get("q4_k.0");
  EXPECT_EQ(raw.dtype(), DType::U8);
  EXPECT_EQ(raw.shape(), (Shape{3 * 144}));
  EXPECT_STREQ(tensor_type_name(*f.find("bf16.0")), "BF16");
  EXPECT_EQ(f.find("bf16.0")->dtype, DType::BF16);
}

TEST(TensorStore, OpensGgufFilesAndFolders) {
  TempDir dir;
  // By magic, whatever the name; and a folder's .gguf files.
  fs::copy_file(kData + "/gguf/metadata.gguf", dir / "weights.bin.renamed");
  const TensorStore s = TensorStore::open(dir / "weights.bin.renamed");
  EXPECT_TRUE(s.is_gguf());
  EXPECT_EQ(s.architecture(), "wan");
  EXPECT_STREQ(s.files()[0]->format(), "GGUF");
  EXPECT_EQ(s.info("patch_embedding.weight").shape, (Shape{3, 2, 1, 2, 2}));
  fs::create_directory(dir / "m");
  fs::copy_file(kData + "/gguf/metadata.gguf", dir / "m/model.gguf");
  const TensorStore folder = TensorStore::open(dir / "m");
  EXPECT_EQ(folder.names().size(), 3u);
  EXPECT_TRUE(folder.is_gguf());
  // Two GGUF files of different families do not make one store.
  fs::copy_file(kData + "/gguf/quant_goldens.gguf", dir / "m/other.gguf");
  Error e = expect_error([&] { TensorStore::open(dir / "m"); });
  EXPECT_EQ(e.code(), 65);
  EXPECT_NE(std::string(e.what()).find("GGUF architecture 't2v-test' differs from 'wan'"), std::string::npos)
      << e.what();
  // A safetensors store is no GGUF.
  EXPECT_FALSE(TensorStore::open(kData + "/python_fixture.safetensors").is_gguf());
  // SafetensorsFile itself still refuses GGUF (probe inputs must be safetensors).
  e = expect_error([&] { SafetensorsFile st(kData + "/gguf/metadata.gguf"); });
  EXPECT_NE(std::string(e.what()).find("this is a GGUF file, not safetensors"), std::string::npos) << e.what();
}

TEST(TensorStore, GgufArchitectureCheck) {
  const TensorStore wan = TensorStore::open(kData + "/gguf/metadata.gguf");
  EXPECT_NO_THROW(require_gguf_architecture(wan, {"wan"}, "a Wan DiT"));
  Error e = expect_error([&] { require_gguf_architecture(wan, {"t5", "t5encoder"}, "a umT5 text encoder"); });
  EXPECT_EQ(e.code(), 65);
  const std::string msg = e.what();
  EXPECT_NE(msg.find("GGUF architecture 'wan' where a umT5 text encoder was expected (general.architecture 't5' or "
                     "'t5encoder')"),
            std::string::npos)
      << msg;
  // Safetensors stores have no architecture to check.
  EXPECT_NO_THROW(require_gguf_architecture(TensorStore::open(kData + "/python_fixture.safetensors"), {"t5"}, "x"));
}

TEST(Gguf, TypeNames) {
  EXPECT_STREQ(ggml_type_name(12), "Q4_K");
  EXPECT_STREQ(ggml_type_name(30), "BF16");
  EXPECT_STREQ(ggml_type_name(23), "IQ4_XS");
  EXPECT_EQ(ggml_type_name(1000), nullptr);
  for (int i = 0; i < kNumQuantTypes; ++i) {
    const auto t = static_cast<QuantType>(i);
    EXPECT_EQ(quant_from_name(quant_name(t)), t);
  }
  EXPECT_FALSE(quant_from_name("IQ4_XS").has_value());
}
