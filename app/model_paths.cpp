#include "app/model_paths.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include "app/inspect.h"
#include "core/error.h"
#include "core/safetensors.h"

namespace t2v {

namespace fs = std::filesystem;

std::string default_model_folder() {
  // T2V_DEFAULT_MODEL (empty: none) for installs away from the source tree; else the
  // source tree the program was built from, then the working directory.
  if (const char* env = std::getenv("T2V_DEFAULT_MODEL")) return env;
  for (const fs::path& p : {fs::path(T2V_SOURCE_DIR) / "models" / "t2v-tiny", fs::path("models") / "t2v-tiny"}) {
    std::error_code ec;
    if (fs::exists(p / "model_index.json", ec)) return p.string();
  }
  return "";
}

static bool is_dir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}
static bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}
// A config file is used when anything is there under its name: a FIFO or device is then
// refused when read (docs/bad_inputs.md #68), not silently passed over for another config.
static bool is_present(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec) && !fs::is_directory(p, ec);
}

static void require_exists(const std::string& path, const std::string& what) {
  std::error_code ec;
  if (!fs::exists(path, ec))
    throw Error(kExitNoInput, fmt::format("{} '{}' does not exist", what, path), "check the path");
  refuse_pickle(path);
}

// A folder of single files (ComfyUI style): classify each .safetensors and .gguf by its keys.
static void scan_single_files(const fs::path& dir, ModelPaths& p) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string ext = e.path().extension().string();
    if (ext == ".pth" || ext == ".pt" || ext == ".ckpt" || ext == ".bin") refuse_pickle(e.path().string());
    if (e.is_regular_file() && (ext == ".safetensors" || ext == ".gguf")) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const fs::path& f : files) {
    TensorStore store = TensorStore::open(f.string());
    DetectedModel d = detect_model(store);
    if (d.family == "wan-dit") {
      // Wan2.2 A14B as ComfyUI names its experts (wan2.2_t2v_high_noise_14B_fp16.safetensors, *_low_noise_*).
      const std::string n = f.filename().string();
      const bool low = n.find("low_noise") != std::string::npos;
      if (low && p.dit_low.empty()) p.dit_low = f.string();
      if (!low && p.dit.empty()) p.dit = f.string();
    }
    if (d.family == "wan-vae" && p.vae.empty()) p.vae = f.string();
    if (d.family == "clip-vision" && p.clip.empty()) p.clip = f.string();
    if (d.family == "umt5-encoder" && p.t5.empty()) {
      p.t5 = f.string();
      if (store.contains("spiece_model") && p.tokenizer.empty()) p.tokenizer = f.string();
    }
  }
  if (p.tokenizer.empty()) {
    for (const fs::path& cand : {dir / "spiece.model", dir / "tokenizer" / "spiece.model", dir / "google" / "umt5-xxl"})
      if (fs::exists(cand)) {
        p.tokenizer = cand.string();
        break;
      }
  }
}

// Wan2.2 entries of a diffusers model_index.json: the pipeline class, boundary_ratio and
// the second transformer (the low-noise expert), which must then be there.
static void read_model_index(const fs::path& m, ModelPaths& p) {
  const fs::path index = m / "model_index.json";
  nlohmann::json j;
  try {
    std::ifstream in(index);
    j = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    throw Error(kExitDataErr, fmt::format("{}: not valid JSON ({})", index.string(), e.what()),
                "restore the model folder's model_index.json");
  }
  if (!j.is_object()) return;
  if (j.contains("_class_name") && j["_class_name"].is_string()) p.pipeline_class = j["_class_name"];
  if (j.contains("boundary_ratio") && j["boundary_ratio"].is_number()) p.boundary_ratio = j["boundary_ratio"].get<double>();
  const bool wants_second = j.contains("transformer_2") && j["transformer_2"].is_array() &&
                            !j["transformer_2"].empty() && !j["transformer_2"][0].is_null();
  if (wants_second || is_dir(m / "transformer_2")) {
    if (!is_dir(m / "transformer_2"))
      throw Error(kExitNoInput,
                  fmt::format("{}: model_index.json names transformer_2 (the low-noise expert) but {} is missing",
                              m.string(), (m / "transformer_2").string()),
                  "download the model's transformer_2/ folder, or pass the expert with --dit-low");
    p.dit_low = (m / "transformer_2").string();
    if (is_file(m / "transformer_2" / "config.json")) p.dit_low_config = (m / "transformer_2" / "config.json").string();
  }
}

ModelPaths resolve_model_paths(const GenerateOptions& o) {
  ModelPaths p;
  std::string model = o.model;
  if (model.empty() && o.dit.empty() && o.t5.empty() && o.vae.empty()) model = default_model_folder();
  if (!model.empty()) {
    require_exists(model, "--model");
    fs::path m(model);
    p.name = m.filename().string().empty() ? m.parent_path().filename().string() : m.filename().string();
    if (is_dir(m) && is_file(m / "model_index.json")) {
      // diffusers pipeline folder
      auto part = [&](const char* sub) { return is_dir(m / sub) ? (m / sub).string() : std::string(); };
      p.dit = part("transformer");
      p.t5 = part("text_encoder");
      p.vae = part("vae");
      p.tokenizer = part("tokenizer");
      p.clip = part("image_encoder");  // image-to-video pipelines
      if (!p.clip.empty() && is_present(m / "image_encoder" / "config.json"))
        p.clip_config = (m / "image_encoder" / "config.json").string();
      if (!p.dit.empty() && is_present(m / "transformer" / "config.json")) p.dit_config = (m / "transformer" / "config.json").string();
      if (!p.t5.empty() && is_present(m / "text_encoder" / "config.json")) p.t5_config = (m / "text_encoder" / "config.json").string();
      if (!p.vae.empty() && is_present(m / "vae" / "config.json")) p.vae_config = (m / "vae" / "config.json").string();
      if (is_file(m / "scheduler" / "scheduler_config.json"))
        p.scheduler_config = (m / "scheduler" / "scheduler_config.json").string();
      read_model_index(m, p);
    } else if (is_dir(m)) {
      scan_single_files(m, p);
    } else {
      throw Error(kExitUsage, fmt::format("--model '{}' is a file", model),
                  "pass the folder holding the model, or the parts with --dit/--t5/--vae");
    }
  }
  // Per-part options override the folder (and drop its config for that part).
  auto override_part = [](const std::string& given, const char* opt, std::string& path, std::string* cfg) {
    if (given.empty()) return;
    require_exists(given, opt);
    path = given;
    if (cfg) cfg->clear();
  };
  override_part(o.dit, "--dit", p.dit, &p.dit_config);
  override_part(o.dit_low, "--dit-low", p.dit_low, &p.dit_low_config);
  override_part(o.t5, "--t5", p.t5, &p.t5_config);
  override_part(o.vae, "--vae", p.vae, &p.vae_config);
  override_part(o.tokenizer, "--tokenizer", p.tokenizer, nullptr);
  override_part(o.clip, "--clip", p.clip, &p.clip_config);
  // A part given as a folder carries its own config.json.
  auto folder_config = [](const std::string& part, std::string& cfg) {
    if (cfg.empty() && is_dir(part) && is_present(fs::path(part) / "config.json")) cfg = (fs::path(part) / "config.json").string();
  };
  folder_config(p.dit, p.dit_config);
  folder_config(p.dit_low, p.dit_low_config);
  folder_config(p.t5, p.t5_config);
  folder_config(p.vae, p.vae_config);
  folder_config(p.clip, p.clip_config);
  if (p.name.empty()) p.name = fs::path(p.dit.empty() ? p.t5 : p.dit).filename().string();

  if (!p.any()) return p;
  std::string where = model.empty() ? "the given parts" : fmt::format("'{}'", model);
  if (p.dit.empty())
    throw Error(kExitNoInput, fmt::format("no diffusion transformer in {}", where),
                "expected transformer/ (diffusers) or a Wan DiT .safetensors or .gguf; or pass --dit");
  if (p.t5.empty())
    throw Error(kExitNoInput, fmt::format("no umT5 text encoder in {}", where),
                "expected text_encoder/ or a umt5 .safetensors or .gguf; or pass --t5");
  if (p.vae.empty())
    throw Error(kExitNoInput, fmt::format("no VAE in {}", where),
                "expected vae/ or wan_2.1_vae.safetensors; or pass --vae");
  if (p.tokenizer.empty())
    throw Error(kExitNoInput, fmt::format("no tokenizer in {}", where),
                "expected tokenizer/spiece.model or a umt5 file with an embedded spiece_model; or pass --tokenizer");
  return p;
}

}  // namespace t2v
