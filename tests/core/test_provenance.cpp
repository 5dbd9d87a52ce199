// Every file under tests/data says which tools/ script wrote it, with which library
// versions and seed (docs/conventions.md §4): safetensors in __metadata__, GGUF in its
// provenance.* metadata keys, JSON in a "provenance" object, anything else through
// tests/data/PROVENANCE.tsv.
#include <fnmatch.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/gguf.h"
#include "core/safetensors.h"

using namespace t2v;
namespace fs = std::filesystem;

namespace {

const fs::path kSource = T2V_SOURCE_DIR;
const fs::path kData = T2V_TEST_DATA_DIR;
const char* const kManifest = "PROVENANCE.tsv";

struct ManifestRow {
  std::string pattern, generator, provenance_from;
  int matches = 0;
};

std::vector<ManifestRow> read_manifest() {
  std::vector<ManifestRow> rows;
  std::ifstream f(kData / kManifest);
  EXPECT_TRUE(f) << (kData / kManifest) << " is missing";
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream s(line);
    ManifestRow r;
    std::getline(s, r.pattern, '\t');
    std::getline(s, r.generator, '\t');
    std::getline(s, r.provenance_from, '\t');
    EXPECT_FALSE(r.provenance_from.empty()) << kManifest << ": malformed line: " << line;
    rows.push_back(r);
  }
  return rows;
}

// Checks one set of provenance fields; returns what is wrong ("" when nothing).
std::string check_fields(const std::string& generator, const std::string& versions_json, const std::string& seed) {
  if (generator.rfind("tools/", 0) != 0) return "generator '" + generator + "' is not a tools/ script";
  if (!fs::is_regular_file(kSource / generator)) return "generator '" + generator + "' does not exist";
  nlohmann::json v = nlohmann::json::parse(versions_json, nullptr, /*allow_exceptions=*/false);
  if (!v.is_object() || v.empty()) return "versions is not a non-empty JSON object: " + versions_json;
  for (const auto& [lib, ver] : v.items())
    if (!ver.is_string() || ver.get<std::string>().empty()) return "version of " + lib + " is not a string";
  if (seed.empty()) return "seed is empty (write 'none' when nothing is random)";
  return "";
}

std::string safetensors_problem(const fs::path& path) {
  const SafetensorsFile f(path.string());
  const auto& m = f.metadata();
  for (const char* key : {"generator", "versions", "seed"})
    if (!m.count(key)) return std::string("__metadata__ has no '") + key + "'";
  return check_fields(m.at("generator"), m.at("versions"), m.at("seed"));
}

std::string gguf_problem(const fs::path& path) {
  const GgufFile f(path.string());
  std::string v[3];
  const char* const keys[3] = {"provenance.generator", "provenance.versions", "provenance.seed"};
  for (int i = 0; i < 3; ++i) {
    const GgufKV* kv = f.header().find(keys[i]);
    if (!kv || !kv->string()) return std::string("GGUF metadata has no string '") + keys[i] + "'";
    v[i] = *kv->string();
  }
  return check_fields(v[0], v[1], v[2]);
}

std::string json_problem(const fs::path& path) {
  std::ifstream f(path);
  const nlohmann::json j = nlohmann::json::parse(f, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return "not a JSON object";
  if (!j.contains("provenance") || !j["provenance"].is_object()) return "no \"provenance\" object";
  const auto& p = j["provenance"];
  for (const char* key : {"generator", "seed"})
    if (!p.contains(key) || !p[key].is_string()) return std::string("provenance.") + key + " is not a string";
  return check_fields(p["generator"].get<std::string>(), p.value("versions", nlohmann::json()).dump(),
                      p["seed"].get<std::string>());
}

// "" when the file carries its own provenance, else the reason it does not.
std::string own_provenance_problem(const fs::path& path) {
  const std::string ext = path.extension().string();
  if (ext == ".safetensors") return safetensors_problem(path);
  if (ext == ".json") return json_problem(path);
  if (ext == ".gguf") return gguf_problem(path);
  return "a " + (ext.empty() ? std::string("file without extension") : ext + " file") + " cannot carry provenance";
}

TEST(Provenance, EveryFileUnderTestsDataNamesItsGenerator) {
  std::vector<ManifestRow> rows = read_manifest();
  int own = 0, listed = 0;
  for (const auto& e : fs::recursive_directory_iterator(kData)) {
    if (!e.is_regular_file()) continue;
    const std::string rel = fs::relative(e.path(), kData).generic_string();
    if (rel == kManifest) continue;
    bool in_manifest = false;
    for (ManifestRow& r : rows)
      if (fnmatch(r.pattern.c_str(), rel.c_str(), FNM_PATHNAME) == 0) {
        ++r.matches;
        in_manifest = true;
      }
    if (in_manifest) {
      ++listed;
      continue;
    }
    const std::string problem = own_provenance_problem(e.path());
    EXPECT_EQ(problem, "") << "tests/data/" << rel << ": " << problem
                           << " (hint: regenerate it with its tools/ script, or list it in tests/data/" << kManifest
                           << ")";
    ++own;
  }
  for (const ManifestRow& r : rows) {
    SCOPED_TRACE(r.pattern);
    EXPECT_GT(r.matches, 0) << kManifest << ": the pattern matches no file";
    EXPECT_TRUE(fs::is_regular_file(kSource / r.generator)) << r.generator << " does not exist";
    EXPECT_EQ(own_provenance_problem(kData / r.provenance_from), "")
        << r.provenance_from << " must record the run that wrote " << r.pattern;
  }
  std::printf("%d files carry their own provenance, %d are listed in %s\n", own, listed, kManifest);
  EXPECT_GT(own, 20);  // the walk found the goldens
}

// The check is not vacuous: a file written without provenance is caught.
TEST(Provenance, MissingOrBrokenFieldsAreReported) {
  const fs::path dir = fs::temp_directory_path() / ("t2v_prov_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  save_safetensors((dir / "bare.safetensors").string(), {{"x", Tensor::zeros(Shape{2}, DType::F32)}});
  EXPECT_NE(own_provenance_problem(dir / "bare.safetensors").find("no 'generator'"), std::string::npos);
  save_safetensors((dir / "ghost.safetensors").string(), {{"x", Tensor::zeros(Shape{2}, DType::F32)}},
                   {{"generator", "tools/nothing.py"}, {"versions", "{\"torch\":\"2\"}"}, {"seed", "1"}});
  EXPECT_NE(own_provenance_problem(dir / "ghost.safetensors").find("does not exist"), std::string::npos);
  std::ofstream(dir / "g.json")
      << R"({"provenance": {"generator": "tools/provenance.py", "versions": {}, "seed": "1"}})";
  EXPECT_NE(own_provenance_problem(dir / "g.json").find("versions"), std::string::npos);
  std::ofstream(dir / "ok.json") << R"({"provenance": {"generator": "tools/provenance.py",
                                        "versions": {"python": "3.11"}, "seed": "none"}})";
  EXPECT_EQ(own_provenance_problem(dir / "ok.json"), "");
  std::ofstream(dir / "a.txt") << "x";
  EXPECT_NE(own_provenance_problem(dir / "a.txt"), "");
  fs::remove_all(dir);
}

}  // namespace
