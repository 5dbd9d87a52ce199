// CLIP vision configs: the ViT-H/14 preset, transformers config.json, detection
// from tensor shapes.
#include "image_encoder/clip_vision_config.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/config_check.h"
#include "core/error.h"
#include "core/file_read.h"
#include "image_encoder/clip_vision.h"

namespace t2v {

namespace fs = std::filesystem;

namespace {

constexpr int64_t kMaxWidth = 16384;
constexpr int64_t kMaxMlp = 1 << 18;
constexpr int64_t kMaxHeads = 1024;
constexpr int64_t kMaxLayers = 1024;
constexpr int64_t kMaxPatch = 1024;
constexpr int64_t kMaxImage = 8192;
// The head dim of ViT-H/14 (1280 / 16): what from_weights assumes, since heads do
// not show in tensor shapes.
constexpr int64_t kHeadDim = 80;

const char* kHint = "fix the config.json or pass the image encoder's config.json / a preset";

// Regular files only, size-capped (docs/bad_inputs.md #68).
std::string read_text(const std::string& path) {
  return read_input_file(path, "CLIP config file", kMaxConfigBytes, kExitConfig);
}

void name_preset(ClipVisionConfig& c) {
  c.preset_name.clear();
  for (const auto& name : ClipVisionConfig::preset_names()) {
    const ClipVisionConfig p = ClipVisionConfig::preset(name);
    if (p.hidden == c.hidden && p.intermediate == c.intermediate && p.num_heads == c.num_heads &&
        p.num_layers == c.num_layers && p.patch == c.patch && p.image_size == c.image_size)
      c.preset_name = name;
  }
}

}  // namespace

void ClipVisionConfig::validate(const std::string& origin) const {
  const ConfigCheck c(origin, kHint);
  c.range("hidden_size", hidden, 1, kMaxWidth);
  c.range("intermediate_size", intermediate, 1, kMaxMlp);
  c.range("num_attention_heads", num_heads, 1, kMaxHeads);
  // Wan drops the last block, so one block alone would leave nothing to run.
  c.range("num_hidden_layers", num_layers, 2, kMaxLayers);
  c.range("patch_size", patch, 1, kMaxPatch);
  c.range("image_size", image_size, 1, kMaxImage);
  c.range("num_channels", channels, 1, 4);
  c.open_range("layer_norm_eps", eps, 0.0, 1.0);
  if (hidden % num_heads != 0)
    c.fail(fmt::format("hidden_size {} is not divisible by num_attention_heads {}", hidden, num_heads));
  if (image_size % patch != 0)
    c.fail(fmt::format("image_size {} is not a multiple of patch_size {}", image_size, patch));
}

std::string ClipVisionConfig::summary() const {
  return fmt::format("hidden {}, mlp {}, heads {} x {}, layers {}, patch {}, image {}", hidden, intermediate,
                     num_heads, num_heads > 0 ? hidden / num_heads : 0, num_layers, patch, image_size);
}

std::vector<std::string> ClipVisionConfig::preset_names() { return {"clip-vit-h-14"}; }

ClipVisionConfig ClipVisionConfig::preset(const std::string& name) {
  if (name != "clip-vit-h-14")
    throw Error(kExitUsage, fmt::format("unknown CLIP vision preset '{}'", name),
                fmt::format("use one of: {}, or a config.json", fmt::join(preset_names(), ", ")));
  ClipVisionConfig c;  // the defaults are ViT-H/14 at 224 (Wan's open-clip-xlm-roberta-large-vit-huge-14)
  c.preset_name = name;
  return c;
}

ClipVisionConfig ClipVisionConfig::from_json_text(const std::string& text, const std::string& origin) {
  using nlohmann::json;
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(kExitConfig, fmt::format("{}: not valid JSON ({})", origin, e.what()), "fix the config.json");
  }
  if (j.is_object() && j.contains("vision_config") && j["vision_config"].is_object()) j = j["vision_config"];
  if (!j.is_object() || !j.contains("hidden_size"))
    throw Error(kExitConfig, fmt::format("{}: not a CLIP vision config (no hidden_size)", origin),
                "pass the image encoder's config.json (transformers CLIPVisionConfig)");
  const ConfigCheck check(origin, kHint);
  auto get = [&](const char* key, int64_t fallback, int64_t lo, int64_t hi) -> int64_t {
    if (!j.contains(key) || j[key].is_null()) return fallback;
    if (!j[key].is_number_integer()) check.fail(fmt::format("field \"{}\" must be an integer, got {}", key, j[key].dump()));
    if (j[key].is_number_unsigned() && j[key].get<uint64_t>() > static_cast<uint64_t>(hi))
      check.fail(fmt::format("{} = {} is outside [{}, {}]", key, j[key].dump(), lo, hi));
    const int64_t v = j[key].get<int64_t>();
    check.range(key, v, lo, hi);
    return v;
  };
  ClipVisionConfig c;
  c.hidden = get("hidden_size", 768, 1, kMaxWidth);
  c.intermediate = get("intermediate_size", 3072, 1, kMaxMlp);
  c.num_heads = get("num_attention_heads", 12, 1, kMaxHeads);
  c.num_layers = get("num_hidden_layers", 12, 2, kMaxLayers);
  c.patch = get("patch_size", 32, 1, kMaxPatch);
  c.image_size = get("image_size", 224, 1, kMaxImage);
  c.channels = get("num_channels", 3, 1, 4);
  if (j.contains("layer_norm_eps") && j["layer_norm_eps"].is_number()) {
    check.open_range("layer_norm_eps", j["layer_norm_eps"].get<double>(), 0.0, 1.0);
    c.eps = j["layer_norm_eps"].get<float>();
  }
  // ViT-H/14 uses the exact (erf) GELU; OpenAI's ViT-L/14 uses quick_gelu, which
  // Wan never pairs with its DiT.
  if (j.contains("hidden_act") && !(j["hidden_act"].is_string() && j["hidden_act"] == "gelu"))
    throw Error(kExitConfig, fmt::format("{}: hidden_act {} is not supported", origin, j["hidden_act"].dump()),
                "Wan's image encoder (CLIP ViT-H/14) uses \"gelu\"");
  name_preset(c);
  c.validate(origin);
  return c;
}

ClipVisionConfig ClipVisionConfig::from_json(const std::string& path) { return from_json_text(read_text(path), path); }

ClipVisionConfig ClipVisionConfig::from_weights(const TensorStore& store) {
  std::string prefix;
  const ClipVisionLayout layout = detect_clip_vision_layout(store, &prefix);
  const WeightLayout wl = clip_vision_weight_layout(layout, prefix);
  const std::string origin = fmt::format("{} (CLIP vision, {} layout)", store.description(),
                                         clip_vision_layout_name(layout));
  auto shape_of = [&](const std::string& canonical) -> Shape {
    const std::string key = wl.file_key(canonical);
    if (!store.contains(key))
      throw Error(kExitDataErr,
                  fmt::format("{}: tensor {} is missing, so the encoder's size cannot be detected", origin, key),
                  "pass a complete image encoder checkpoint");
    return store.info(key).shape;
  };
  ClipVisionConfig c;
  const Shape pe = shape_of("embeddings.patch_embedding.weight");  // [D, C, p, p]
  const Shape pos = shape_of("embeddings.position_embedding.weight");  // [N, D] or [1, N, D]
  const Shape fc1 = shape_of("encoder.layers.0.mlp.fc1.weight");    // [mlp, D]
  if (pe.ndim() != 4 || pe[2] != pe[3] || fc1.ndim() != 2 || pos.ndim() < 2)
    throw Error(kExitDataErr,
                fmt::format("{}: patch embedding {}, position embedding {}, fc1 {} are not a ViT's shapes", origin,
                            pe.str(), pos.str(), fc1.str()),
                "the file is damaged or not a CLIP vision tower");
  c.hidden = pe[0];
  c.channels = pe[1];
  c.patch = pe[2];
  c.intermediate = fc1[0];
  const int64_t positions = pos[pos.ndim() - 2];
  const auto grid = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(positions - 1))));
  if (positions < 2 || grid * grid != positions - 1)
    throw Error(kExitDataErr,
                fmt::format("{}: {} positions are not a class token plus a square grid of patches", origin, positions),
                "the file is damaged or not a CLIP vision tower");
  c.image_size = c.patch * grid;
  c.num_layers = 0;
  while (store.contains(wl.file_key(fmt::format("encoder.layers.{}.layer_norm1.weight", c.num_layers)))) ++c.num_layers;
  if (c.hidden % kHeadDim != 0)
    throw Error(kExitDataErr,
                fmt::format("{}: the head count of a width-{} encoder cannot be read from its tensor shapes "
                            "(ViT-H/14 has heads of {})",
                            origin, c.hidden, kHeadDim),
                "put the encoder's config.json (transformers CLIPVisionConfig) beside it");
  c.num_heads = c.hidden / kHeadDim;
  name_preset(c);
  c.validate(store.description() + " (detected config)");
  return c;
}

ClipVisionConfig ClipVisionConfig::resolve(const std::string& config_arg, const std::string& weights_path,
                                           const TensorStore* store) {
  std::error_code ec;
  if (!config_arg.empty()) {
    const auto names = preset_names();
    if (std::find(names.begin(), names.end(), config_arg) != names.end()) return preset(config_arg);
    if (fs::is_directory(config_arg, ec)) return from_json((fs::path(config_arg) / "config.json").string());
    if (!fs::exists(config_arg, ec))
      throw Error(kExitUsage, fmt::format("config \"{}\" is neither a preset nor an existing file", config_arg),
                  fmt::format("use a config.json path or one of: {}", fmt::join(names, ", ")));
    return from_json(config_arg);
  }
  // A diffusers image_encoder/ folder (or a file inside one) carries its config.json.
  const fs::path p(weights_path);
  const fs::path cfg = (fs::is_directory(p, ec) ? p : p.parent_path()) / "config.json";
  if (!weights_path.empty() && fs::exists(cfg, ec)) {
    const std::string text = read_text(cfg.string());
    if (text.find("\"clip_vision_model\"") != std::string::npos || text.find("\"vision_config\"") != std::string::npos)
      return from_json_text(text, cfg.string());
  }
  if (store) return from_weights(*store);
  return from_weights(TensorStore::open(weights_path));
}

}  // namespace t2v
