// Wan DiT configs: presets, config.json parsing (diffusers and original field
// names), detection from tensor shapes, FLOP count.
#include "diffusion/wan_dit_config.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/config_check.h"
#include "core/error.h"
#include "core/weights.h"
#include "diffusion/wan_dit_weights.h"

namespace t2v {

namespace fs = std::filesystem;

namespace {

// Bounds of every size (generous: Wan2.1 14B has dim 5120, 40 layers).
constexpr int64_t kMaxDim = 65536;       // dim, text_dim, freq_dim
constexpr int64_t kMaxFfn = 1 << 20;     // ffn_dim
constexpr int64_t kMaxHeads = 1024;      // num_heads
constexpr int64_t kMaxHeadDim = 4096;    // attention_head_dim
constexpr int64_t kMaxLayers = 1024;     // num_layers
constexpr int64_t kMaxChannels = 1024;   // in_dim, out_dim
constexpr int64_t kMaxTextLen = 65536;   // text_len
constexpr int64_t kMaxPatch = 64;        // each patch_size entry
constexpr int64_t kMaxRopeLen = 1 << 20; // rope_max_seq_len

const char* kConfigHint = "fix the config.json or pass a preset name";

}  // namespace

void WanDiTConfig::validate(const std::string& origin) const {
  const ConfigCheck c(origin, kConfigHint);
  c.range("dim", dim, 1, kMaxDim);
  c.range("ffn_dim", ffn_dim, 1, kMaxFfn);
  c.range("freq_dim", freq_dim, 2, kMaxDim);
  c.range("num_heads", num_heads, 1, kMaxHeads);
  c.range("num_layers", num_layers, 1, kMaxLayers);
  c.range("in_dim", in_dim, 1, kMaxChannels);
  c.range("out_dim", out_dim, 1, kMaxChannels);
  c.range("text_dim", text_dim, 1, kMaxDim);
  c.range("text_len", text_len, 1, kMaxTextLen);
  for (int64_t p : patch_size) c.range("patch_size entry", p, 1, kMaxPatch);
  c.range("rope_max_seq_len", rope_max_seq_len, 1, kMaxRopeLen);
  c.open_range("eps", eps, 0.0, 1.0);
  if (dim % num_heads != 0) c.fail(fmt::format("dim {} is not divisible by num_heads {}", dim, num_heads));
  if (head_dim() % 2 != 0 || head_dim() < 6)
    c.fail(fmt::format("head dim {} must be even and at least 6 for the 3D RoPE split", head_dim()));
  if (freq_dim % 2 != 0) c.fail(fmt::format("freq_dim {} must be even", freq_dim));
  // The sizes the weights are made of (patch embedding and head rows, time projection).
  c.product("in_dim x patch", {in_dim, patch_size[0], patch_size[1], patch_size[2]});
  c.product("out_dim x patch", {out_dim, patch_size[0], patch_size[1], patch_size[2]});
  c.product("6 x dim", {6, dim});
}

std::string WanDiTConfig::summary() const {
  return fmt::format(
      "dim {}, ffn {}, heads {} x {}, layers {}, in {} / out {}, text_dim {}, freq_dim {}, patch {}x{}x{}", dim,
      ffn_dim, num_heads, num_heads > 0 ? dim / num_heads : 0, num_layers, in_dim, out_dim, text_dim, freq_dim,
      patch_size[0], patch_size[1], patch_size[2]);
}

// ---- presets (docs/wan.md §2.1) ----------------------------------------------------
std::vector<std::string> WanDiTConfig::preset_names() {
  return {"wan2.1-t2v-1.3b", "wan2.1-t2v-14b", "wan2.2-ti2v-5b", "wan2.2-i2v-a14b"};
}

WanDiTConfig WanDiTConfig::preset(const std::string& name) {
  WanDiTConfig c;
  if (name == "wan2.1-t2v-1.3b") {
    c.dim = 1536, c.ffn_dim = 8960, c.num_heads = 12, c.num_layers = 30;
  } else if (name == "wan2.1-t2v-14b") {
    // Also each expert of Wan2.2 T2V-A14B (docs/wan.md §8.3).
    c.dim = 5120, c.ffn_dim = 13824, c.num_heads = 40, c.num_layers = 40;
  } else if (name == "wan2.2-ti2v-5b") {
    c.dim = 3072, c.ffn_dim = 14336, c.num_heads = 24, c.num_layers = 30, c.in_dim = 48, c.out_dim = 48;
    c.model_type = "ti2v";
  } else if (name == "wan2.2-i2v-a14b") {
    // Each expert: noise 16 + mask 4 + image latent 16 channels in, no image encoder.
    c.dim = 5120, c.ffn_dim = 13824, c.num_heads = 40, c.num_layers = 40, c.in_dim = 36;
    c.model_type = "i2v";
  } else {
    throw Error(kExitUsage, fmt::format("unknown Wan DiT preset '{}'", name),
                fmt::format("use one of: {}, or a config.json", fmt::join(preset_names(), ", ")));
  }
  c.preset_name = name;
  return c;
}

// ---- config.json ---------------------------------------------------------------
namespace {

using nlohmann::json;

// An integer field within [lo, hi] (the fallback when absent or null).
int64_t get_int(const json& j, const char* key, int64_t fallback, const ConfigCheck& check, int64_t lo, int64_t hi) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  const json& v = j[key];
  if (!v.is_number_integer())
    check.fail(fmt::format("field \"{}\" must be an integer, got {}", key, v.dump()));
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi))
    check.fail(fmt::format("{} = {} is outside [{}, {}]", key, v.dump(), lo, hi));
  const int64_t n = v.get<int64_t>();
  check.range(key, n, lo, hi);
  return n;
}

// Fills in the preset name when the dims equal a preset's.
void name_preset(WanDiTConfig& c) {
  c.preset_name.clear();
  for (const auto& name : WanDiTConfig::preset_names()) {
    const WanDiTConfig p = WanDiTConfig::preset(name);
    if (p.dim == c.dim && p.ffn_dim == c.ffn_dim && p.num_heads == c.num_heads && p.num_layers == c.num_layers &&
        p.in_dim == c.in_dim && p.out_dim == c.out_dim && p.text_dim == c.text_dim && p.freq_dim == c.freq_dim &&
        p.patch_size == c.patch_size)
      c.preset_name = name;
  }
}

// 48 latent channels in and out: TI2V-5B (the Wan2.2 VAE); more in than out: the I2V
// experts' [noise, mask, image latent]; else text-to-video.
std::string model_type_from_channels(const WanDiTConfig& c) {
  if (c.in_dim == 48 && c.out_dim == 48) return "ti2v";
  return c.in_dim == c.out_dim ? "t2v" : "i2v";
}

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(kExitNoInput, fmt::format("{}: cannot open the config file", path), "check the path");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

WanDiTConfig WanDiTConfig::from_json_text(const std::string& text, const std::string& origin) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(kExitConfig, fmt::format("{}: not valid JSON ({})", origin, e.what()), "fix the config.json");
  }
  if (!j.is_object()) throw Error(kExitConfig, fmt::format("{}: expected a JSON object", origin), "fix the config.json");
  const ConfigCheck check(origin, kConfigHint);
  WanDiTConfig c;
  bool typed = false;  // model_type given by the config
  const bool diffusers = j.contains("num_attention_heads") || j.contains("attention_head_dim");
  if (diffusers) {
    // diffusers WanTransformer3DModel: inner dim = heads x head dim.
    c.num_heads = get_int(j, "num_attention_heads", 40, check, 1, kMaxHeads);
    c.dim = check.product("num_attention_heads x attention_head_dim",
                          {c.num_heads, get_int(j, "attention_head_dim", 128, check, 1, kMaxHeadDim)}, kMaxDim);
    c.in_dim = get_int(j, "in_channels", 16, check, 1, kMaxChannels);
    c.out_dim = get_int(j, "out_channels", c.in_dim, check, 1, kMaxChannels);
    c.ffn_dim = get_int(j, "ffn_dim", 13824, check, 1, kMaxFfn);
    c.num_layers = get_int(j, "num_layers", 40, check, 1, kMaxLayers);
    c.text_dim = get_int(j, "text_dim", 4096, check, 1, kMaxDim);
    c.freq_dim = get_int(j, "freq_dim", 256, check, 2, kMaxDim);
    c.rope_max_seq_len = get_int(j, "rope_max_seq_len", 1024, check, 1, kMaxRopeLen);
    if (j.contains("cross_attn_norm") && j["cross_attn_norm"].is_boolean()) c.cross_attn_norm = j["cross_attn_norm"];
    if (j.contains("qk_norm")) {
      const json& q = j["qk_norm"];
      if (q.is_null() || (q.is_boolean() && !q.get<bool>())) {
        c.qk_norm = false;
      } else if (q.is_string() && q.get<std::string>() != "rms_norm_across_heads") {
        throw Error(kExitConfig, fmt::format("{}: qk_norm \"{}\" is not supported", origin, q.get<std::string>()),
                    "Wan2.1 uses \"rms_norm_across_heads\"");
      }
    }
    for (const char* k : {"added_kv_proj_dim", "image_dim", "pos_embed_seq_len"})
      if (j.contains(k) && !j[k].is_null())
        throw Error(kExitConfig, fmt::format("{}: \"{}\" is set: an image-to-video / Wan2.2 model", origin, k),
                    "t2v runs the Wan2.1 text-to-video DiT");
  } else if (j.contains("dim")) {
    // Original Wan config.json (WanModel).
    c.dim = get_int(j, "dim", 1536, check, 1, kMaxDim);
    c.num_heads = get_int(j, "num_heads", 12, check, 1, kMaxHeads);
    c.in_dim = get_int(j, "in_dim", 16, check, 1, kMaxChannels);
    c.out_dim = get_int(j, "out_dim", 16, check, 1, kMaxChannels);
    c.ffn_dim = get_int(j, "ffn_dim", 8960, check, 1, kMaxFfn);
    c.num_layers = get_int(j, "num_layers", 30, check, 1, kMaxLayers);
    c.text_dim = get_int(j, "text_dim", 4096, check, 1, kMaxDim);
    c.text_len = get_int(j, "text_len", 512, check, 1, kMaxTextLen);
    c.freq_dim = get_int(j, "freq_dim", 256, check, 2, kMaxDim);
    if (j.contains("model_type") && j["model_type"].is_string()) {
      // t2v (Wan2.1, Wan2.2 A14B experts), ti2v (Wan2.2 TI2V-5B), i2v (Wan2.2 I2V-A14B experts:
      // image latent and mask as input channels; image encoders are refused by their tensors).
      const std::string mt = j["model_type"];
      if (mt != "t2v" && mt != "ti2v" && mt != "i2v")
        throw Error(kExitConfig, fmt::format("{}: model_type \"{}\" is not supported", origin, mt),
                    "t2v runs model_type t2v, ti2v and i2v (Wan2.2 A14B) DiTs");
      c.model_type = mt;
      typed = true;
    }
    if (j.contains("qk_norm") && j["qk_norm"].is_boolean()) c.qk_norm = j["qk_norm"];
    if (j.contains("cross_attn_norm") && j["cross_attn_norm"].is_boolean()) c.cross_attn_norm = j["cross_attn_norm"];
  } else {
    throw Error(kExitConfig,
                fmt::format("{}: neither a diffusers (num_attention_heads) nor an original Wan (dim) DiT config", origin),
                "pass the transformer's config.json or a preset name (wan2.1-t2v-1.3b, wan2.1-t2v-14b)");
  }
  if (j.contains("patch_size")) {
    const json& p = j["patch_size"];
    if (!p.is_array() || p.size() != 3 || !p[0].is_number_integer() || !p[1].is_number_integer() ||
        !p[2].is_number_integer())
      throw Error(kExitConfig, fmt::format("{}: patch_size must be three integers, got {}", origin, p.dump()),
                  "use [1, 2, 2]");
    const json wrapped = {{"patch_size[0]", p[0]}, {"patch_size[1]", p[1]}, {"patch_size[2]", p[2]}};
    c.patch_size = {get_int(wrapped, "patch_size[0]", 1, check, 1, kMaxPatch),
                    get_int(wrapped, "patch_size[1]", 2, check, 1, kMaxPatch),
                    get_int(wrapped, "patch_size[2]", 2, check, 1, kMaxPatch)};
  }
  if (j.contains("eps") && j["eps"].is_number()) {
    check.open_range("eps", j["eps"].get<double>(), 0.0, 1.0);
    c.eps = j["eps"].get<float>();
  }
  // diffusers configs do not name the type: the channels tell it, as for a checkpoint's shapes.
  if (!typed) c.model_type = model_type_from_channels(c);
  name_preset(c);
  c.validate(origin);
  return c;
}

WanDiTConfig WanDiTConfig::from_json(const std::string& path) { return from_json_text(read_text(path), path); }

// ---- detection from shapes ----------------------------------------------------------

WanDiTShapes detect_wan_dit_shapes(const TensorStore& store) {
  WanDiTShapes d;
  d.layout = detect_wan_dit_layout(store);
  auto shape_of = [&](const std::string& canonical) -> Shape {
    const std::string key = wan_dit_file_key(d.layout, canonical);
    if (!store.contains(key))
      throw Error(kExitDataErr,
                  fmt::format("{} (Wan DiT, {} layout): tensor {} is missing, so the model size cannot be detected",
                              store.description(), wan_dit_layout_name(d.layout), key),
                  "pass a complete checkpoint, or a config.json / preset with --config");
    return store.info(key).shape;
  };
  auto expect_dims = [&](const std::string& canonical, const Shape& s, int n) {
    if (s.ndim() != n)
      throw Error(kExitDataErr,
                  fmt::format("{} (Wan DiT, {} layout): {} is {}, expected {} dims", store.description(),
                              wan_dit_layout_name(d.layout), wan_dit_file_key(d.layout, canonical), s.str(), n),
                  "the checkpoint is damaged or not a Wan2.1 DiT");
  };
  WanDiTConfig& c = d.cfg;
  const Shape pe = shape_of("patch_embedding.weight");  // [dim, in, pt, ph, pw]
  expect_dims("patch_embedding.weight", pe, 5);
  c.dim = pe[0], c.in_dim = pe[1], c.patch_size = {pe[2], pe[3], pe[4]};
  const Shape te = shape_of("text_embedding.0.weight");  // [dim, text_dim]
  expect_dims("text_embedding.0.weight", te, 2);
  c.text_dim = te[1];
  const Shape tm = shape_of("time_embedding.0.weight");  // [dim, freq_dim]
  expect_dims("time_embedding.0.weight", tm, 2);
  c.freq_dim = tm[1];
  const Shape ff = shape_of("blocks.0.ffn.0.weight");  // [ffn_dim, dim]
  expect_dims("blocks.0.ffn.0.weight", ff, 2);
  c.ffn_dim = ff[0];
  const Shape hd = shape_of("head.head.weight");  // [out * pt * ph * pw, dim]
  expect_dims("head.head.weight", hd, 2);
  c.out_dim = c.patch_numel() > 0 ? hd[0] / c.patch_numel() : hd[0];
  c.num_layers = 0;
  while (store.contains(wan_dit_file_key(d.layout, fmt::format("blocks.{}.modulation", c.num_layers)))) ++c.num_layers;
  c.cross_attn_norm = store.contains(wan_dit_file_key(d.layout, "blocks.0.norm3.weight"));
  c.qk_norm = store.contains(wan_dit_file_key(d.layout, "blocks.0.self_attn.norm_q.weight"));
  // Heads are invisible in shapes: take them from the preset with these dims,
  // else assume Wan's head dim of 128.
  for (const auto& name : WanDiTConfig::preset_names()) {
    const WanDiTConfig p = WanDiTConfig::preset(name);
    if (p.dim == c.dim) {
      c.num_heads = p.num_heads;
      d.heads_known = true;
    }
  }
  if (!d.heads_known && c.dim % 128 == 0) {
    c.num_heads = c.dim / 128;
    d.heads_known = true;
  }
  c.model_type = model_type_from_channels(c);
  name_preset(c);
  return d;
}

WanDiTConfig WanDiTConfig::from_weights(const TensorStore& store) {
  const WanDiTShapes d = detect_wan_dit_shapes(store);
  if (!d.heads_known)
    throw Error(kExitDataErr,
                fmt::format("{}: the number of attention heads of a Wan DiT with dim {} cannot be read from its tensor "
                            "shapes",
                            store.description(), d.cfg.dim),
                "pass the model's config.json with --config");
  WanDiTConfig c = d.cfg;
  c.validate(store.description() + " (detected config)");
  return c;
}

WanDiTConfig WanDiTConfig::resolve(const std::string& config_arg, const std::string& weights_path,
                                   const TensorStore* store) {
  if (!config_arg.empty()) {
    const auto names = preset_names();
    if (std::find(names.begin(), names.end(), config_arg) != names.end()) return preset(config_arg);
    if (fs::is_directory(config_arg)) return from_json((fs::path(config_arg) / "config.json").string());
    if (!fs::exists(config_arg))
      throw Error(kExitUsage, fmt::format("config \"{}\" is neither a preset nor an existing file", config_arg),
                  fmt::format("use a config.json path or one of: {}", fmt::join(names, ", ")));
    return from_json(config_arg);
  }
  // A diffusers folder (or a file inside one) carries its config.json.
  std::error_code ec;
  const fs::path p(weights_path);
  const fs::path dir = fs::is_directory(p, ec) ? p : p.parent_path();
  const fs::path cfg = dir / "config.json";
  if (!weights_path.empty() && fs::exists(cfg, ec)) {
    // Only when it is a DiT config (a folder may hold other components' configs).
    const std::string text = read_text(cfg.string());
    if (text.find("\"num_attention_heads\"") != std::string::npos || text.find("\"dim\"") != std::string::npos)
      return from_json_text(text, cfg.string());
  }
  if (store) return from_weights(*store);
  return from_weights(TensorStore::open(weights_path));
}

int64_t wan_dit_param_count(const WanDiTConfig& cfg) {
  int64_t n = 0;
  for (const auto& r : wan_dit_weight_list(cfg)) n += r.shape.numel();
  return n;
}

// ---- FLOPs ----------------------------------------------------------------------
double WanDiTFlops::total() const {
  return patch_embedding + embeddings + self_attn_proj + self_attn_sdpa + cross_attn_proj + cross_attn_sdpa + ffn +
         head;
}

WanDiTFlops wan_dit_flops(const WanDiTConfig& c, int64_t T, int64_t h, int64_t w, int64_t batch) {
  const double B = static_cast<double>(batch);
  const double N = static_cast<double>((T / c.patch_size[0]) * (h / c.patch_size[1]) * (w / c.patch_size[2]));
  const double d = static_cast<double>(c.dim), L = static_cast<double>(c.text_len);
  const double layers = static_cast<double>(c.num_layers);
  auto gemm = [](double m, double n, double k) { return 2.0 * m * n * k; };
  WanDiTFlops f;
  f.patch_embedding = B * gemm(N, d, static_cast<double>(c.in_dim * c.patch_numel()));
  f.embeddings = B * (gemm(1, d, static_cast<double>(c.freq_dim)) + gemm(1, d, d) + gemm(1, 6 * d, d) +
                      gemm(L, d, static_cast<double>(c.text_dim)) + gemm(L, d, d));
  f.self_attn_proj = layers * B * 4 * gemm(N, d, d);
  // Per head 2·N·N·D for Q·Kᵀ and as much for P·V; summed over heads D·NH = dim.
  f.self_attn_sdpa = layers * B * 4.0 * N * N * d;
  f.cross_attn_proj = layers * B * (2 * gemm(N, d, d) + 2 * gemm(L, d, d));
  f.cross_attn_sdpa = layers * B * 4.0 * N * L * d;
  f.ffn = layers * B * 2 * gemm(N, static_cast<double>(c.ffn_dim), d);
  f.head = B * gemm(N, static_cast<double>(c.out_dim * c.patch_numel()), d);
  return f;
}

WanDiTFlops wan_dit_flops_for_video(const WanDiTConfig& c, int64_t frames, int64_t height, int64_t width,
                                    int64_t batch, int64_t vae_stride) {
  return wan_dit_flops(c, (frames - 1) / 4 + 1, height / vae_stride, width / vae_stride, batch);
}

}  // namespace t2v
