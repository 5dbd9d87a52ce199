// Wan DiT configs: presets, config.json parsing (diffusers and original field
// names), detection from tensor shapes, FLOP count.
#include "diffusion/wan_dit_config.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/config_check.h"
#include "core/file_read.h"
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
  c.range("image_dim", image_dim, 0, kMaxDim);
  c.range("image_pos_len", image_pos_len, 0, kMaxTextLen);
  if (image_pos_len > 0 && image_dim == 0) c.fail("image_pos_len is set without image_dim");
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
  std::string s = fmt::format(
      "dim {}, ffn {}, heads {} x {}, layers {}, in {} / out {}, text_dim {}, freq_dim {}, patch {}x{}x{}", dim,
      ffn_dim, num_heads, num_heads > 0 ? dim / num_heads : 0, num_layers, in_dim, out_dim, text_dim, freq_dim,
      patch_size[0], patch_size[1], patch_size[2]);
  if (image_to_video()) s += fmt::format(", {} image_dim {}", model_type(), image_dim);
  if (first_last_frame()) s += fmt::format(", image positions {}", image_pos_len);
  return s;
}

// ---- presets (docs/wan.md §2.1) ----------------------------------------------------
std::vector<std::string> WanDiTConfig::preset_names() {
  return {"wan2.1-t2v-1.3b", "wan2.1-t2v-14b", "wan2.1-i2v-14b", "wan2.1-flf2v-14b", "wan2.2-ti2v-5b",
          "wan2.2-i2v-a14b"};
}

WanDiTConfig WanDiTConfig::preset(const std::string& name) {
  WanDiTConfig c;
  if (name == "wan2.1-t2v-1.3b") {
    c.dim = 1536, c.ffn_dim = 8960, c.num_heads = 12, c.num_layers = 30;
  } else if (name == "wan2.1-t2v-14b") {
    // Also each expert of Wan2.2 T2V-A14B (docs/wan.md §8.3).
    c.dim = 5120, c.ffn_dim = 13824, c.num_heads = 40, c.num_layers = 40;
  } else if (name == "wan2.1-i2v-14b" || name == "wan2.1-flf2v-14b") {
    // 16 noise + 4 mask + 16 image-latent channels in; CLIP ViT-H/14 features (docs/wan.md §5.1).
    c.dim = 5120, c.ffn_dim = 13824, c.num_heads = 40, c.num_layers = 40, c.in_dim = 36, c.image_dim = 1280;
    if (name == "wan2.1-flf2v-14b") c.image_pos_len = 514;
  } else if (name == "wan2.2-ti2v-5b") {
    c.dim = 3072, c.ffn_dim = 14336, c.num_heads = 24, c.num_layers = 30, c.in_dim = 48, c.out_dim = 48;
  } else if (name == "wan2.2-i2v-a14b") {
    // Each expert: noise 16 + mask 4 + image latent 16 channels in, no image embedder.
    c.dim = 5120, c.ffn_dim = 13824, c.num_heads = 40, c.num_layers = 40, c.in_dim = 36;
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
        p.patch_size == c.patch_size && p.image_dim == c.image_dim && p.image_pos_len == c.image_pos_len)
      c.preset_name = name;
  }
}

// Regular files only, size-capped (docs/bad_inputs.md #68).
std::string read_text(const std::string& path) {
  return read_input_file(path, "DiT config file", kMaxConfigBytes, kExitConfig);
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
    // Image-to-video: image_dim is the CLIP width; the image key/value projections
    // (added_kv_proj_dim) read the embedded image tokens, which have the model's width.
    c.image_dim = get_int(j, "image_dim", 0, check, 0, kMaxDim);
    const int64_t added_kv = get_int(j, "added_kv_proj_dim", 0, check, 0, kMaxDim);
    if ((c.image_dim > 0) != (added_kv > 0) || (added_kv > 0 && added_kv != c.dim))
      check.fail(fmt::format("image_dim {} and added_kv_proj_dim {} do not describe a Wan2.1 image-to-video "
                             "model (both set, added_kv_proj_dim = the inner dim {})",
                             c.image_dim, added_kv, c.dim));
    c.image_pos_len = get_int(j, "pos_embed_seq_len", 0, check, 0, kMaxTextLen);
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
    const std::string type = j.contains("model_type") && j["model_type"].is_string() ? j["model_type"].get<std::string>()
                                                                                     : "t2v";
    if (type != "t2v" && type != "i2v" && type != "flf2v" && type != "ti2v")
      throw Error(kExitConfig, fmt::format("{}: model_type \"{}\" is not supported", origin, type),
                  "t2v runs the Wan DiT of model_type t2v, i2v, flf2v (Wan2.1) or ti2v (Wan2.2)");
    // The reference builds the image embedder for 1280-wide CLIP features (ViT-H/14) and,
    // for flf2v, positions for 2 x 257 image tokens (wan/modules/model.py MLPProj). Wan2.2's
    // I2V-A14B experts say "i2v" too but have no embedder: resolve() asks their weights.
    if (type == "i2v" || type == "flf2v") c.image_dim = 1280;
    if (type == "flf2v") c.image_pos_len = 514;
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
  // Image-to-video: the image embedder's first LayerNorm is [image_dim]; FLF2V adds
  // positions [1, image tokens, image_dim].
  if (store.contains(wan_dit_file_key(d.layout, "img_emb.proj.0.weight"))) {
    const Shape n = shape_of("img_emb.proj.0.weight");
    expect_dims("img_emb.proj.0.weight", n, 1);
    c.image_dim = n[0];
    if (store.contains(wan_dit_file_key(d.layout, "img_emb.emb_pos"))) {
      const Shape pos = shape_of("img_emb.emb_pos");
      expect_dims("img_emb.emb_pos", pos, 3);
      c.image_pos_len = pos[1];
    }
  }
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

namespace {

// The original config.json of Wan2.1 I2V-14B and of a Wan2.2 I2V-A14B expert are the same
// (model_type "i2v", in_dim 36); only the weights tell whether there is an image embedder
// (docs/wan.md §8.5). A diffusers config states image_dim itself.
WanDiTConfig settle_image_embedder(WanDiTConfig c, const std::string& text, const std::string& weights_path,
                                   const TensorStore* store) {
  const bool original = text.find("\"num_attention_heads\"") == std::string::npos;
  if (!original || !c.image_to_video() || c.first_last_frame()) return c;
  std::optional<TensorStore> opened;
  if (!store) {
    if (weights_path.empty()) return c;
    opened.emplace(TensorStore::open(weights_path));
    store = &*opened;
  }
  if (!store->contains(wan_dit_file_key(detect_wan_dit_layout(*store), "img_emb.proj.0.weight"))) {
    c.image_dim = 0;
    name_preset(c);
  }
  return c;
}

}  // namespace

WanDiTConfig WanDiTConfig::resolve(const std::string& config_arg, const std::string& weights_path,
                                   const TensorStore* store) {
  if (!config_arg.empty()) {
    const auto names = preset_names();
    if (std::find(names.begin(), names.end(), config_arg) != names.end()) return preset(config_arg);
    const bool dir = fs::is_directory(config_arg);
    const std::string path = dir ? (fs::path(config_arg) / "config.json").string() : config_arg;
    if (!dir && !fs::exists(path))
      throw Error(kExitUsage, fmt::format("config \"{}\" is neither a preset nor an existing file", config_arg),
                  fmt::format("use a config.json path or one of: {}", fmt::join(names, ", ")));
    const std::string text = read_text(path);
    return settle_image_embedder(from_json_text(text, path), text, weights_path, store);
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
      return settle_image_embedder(from_json_text(text, cfg.string()), text, weights_path, store);
  }
  if (store) return from_weights(*store);
  return from_weights(TensorStore::open(weights_path));
}

int64_t wan_dit_image_tokens(const WanDiTConfig& c) {
  if (!c.image_to_video()) return 0;
  return c.first_last_frame() ? c.image_pos_len : 257;  // CLIP ViT-H/14 at 224: class token + 16 x 16 patches
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
  // Image-to-video: the image embedder (image_dim -> image_dim -> dim) on the image tokens,
  // and in every block k_img, v_img on them and a second attention over them.
  const double I = static_cast<double>(wan_dit_image_tokens(c)), id = static_cast<double>(c.image_dim);
  f.embeddings += B * (gemm(I, id, id) + gemm(I, d, id));
  f.self_attn_proj = layers * B * 4 * gemm(N, d, d);
  // Per head 2·N·N·D for Q·Kᵀ and as much for P·V; summed over heads D·NH = dim.
  f.self_attn_sdpa = layers * B * 4.0 * N * N * d;
  f.cross_attn_proj = layers * B * (2 * gemm(N, d, d) + 2 * gemm(L, d, d) + 2 * gemm(I, d, d));
  f.cross_attn_sdpa = layers * B * 4.0 * N * (L + I) * d;
  f.ffn = layers * B * 2 * gemm(N, static_cast<double>(c.ffn_dim), d);
  f.head = B * gemm(N, static_cast<double>(c.out_dim * c.patch_numel()), d);
  return f;
}

WanDiTFlops wan_dit_flops_for_video(const WanDiTConfig& c, int64_t frames, int64_t height, int64_t width,
                                    int64_t batch, int64_t vae_stride) {
  return wan_dit_flops(c, (frames - 1) / 4 + 1, height / vae_stride, width / vae_stride, batch);
}

}  // namespace t2v
