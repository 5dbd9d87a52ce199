// Wan DiT weight layouts, the original -> diffusers rename table, header-only
// checks and binding. See wan_dit_weights.h and docs/wan.md §2.11.
#include "diffusion/wan_dit_weights.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "core/error.h"
#include "core/weights.h"

namespace t2v {

namespace {

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }
bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

// Keys that are not parameters: the scaled-fp8 marker and per-tensor scales
// (consumed by WeightLoader when it dequantizes the weight they belong to).
bool is_marker_key(const std::string& key) {
  return key == "scaled_fp8" || ends_with(key, ".scale_weight") || ends_with(key, ".scale_input") ||
         key == std::string(kComfyPrefix) + "scaled_fp8";
}

bool is_convertible_dtype(DType dt) {
  return dt == DType::F32 || dt == DType::F16 || dt == DType::BF16 || dt == DType::F8_E4M3 || dt == DType::F8_E5M2;
}

// Canonical keys that exist in every layout, used to recognise a layout.
const std::vector<std::string>& signature_keys() {
  static const std::vector<std::string> keys = {
      "patch_embedding.weight",  "text_embedding.0.weight",       "time_embedding.0.weight",
      "time_projection.1.weight", "blocks.0.modulation",          "blocks.0.self_attn.q.weight",
      "blocks.0.cross_attn.k.weight", "blocks.0.ffn.0.weight",    "blocks.0.norm3.weight",
      "head.modulation",          "head.head.weight"};
  return keys;
}

}  // namespace

const char* wan_dit_layout_name(WanDiTLayout layout) {
  switch (layout) {
    case WanDiTLayout::Original: return "original";
    case WanDiTLayout::Comfy: return "comfy";
    case WanDiTLayout::Diffusers: return "diffusers";
  }
  return "?";
}

// ---- the rename table ----------------------------------------------------------
// Canonical (original Wan) names on the left. Block-level entries are matched on
// the part after `blocks.{i}.`; everything not listed keeps its name
// (patch_embedding.*). norm3 <-> norm2 is the one name that swaps meaning.
std::string wan_dit_diffusers_key(const std::string& canonical) {
  static const std::vector<std::pair<std::string, std::string>> top = {
      {"text_embedding.0.", "condition_embedder.text_embedder.linear_1."},
      {"text_embedding.2.", "condition_embedder.text_embedder.linear_2."},
      {"time_embedding.0.", "condition_embedder.time_embedder.linear_1."},
      {"time_embedding.2.", "condition_embedder.time_embedder.linear_2."},
      {"time_projection.1.", "condition_embedder.time_proj."},
      {"head.head.", "proj_out."},
      {"head.modulation", "scale_shift_table"},
  };
  static const std::vector<std::pair<std::string, std::string>> block = {
      {"modulation", "scale_shift_table"},
      {"self_attn.q.", "attn1.to_q."},
      {"self_attn.k.", "attn1.to_k."},
      {"self_attn.v.", "attn1.to_v."},
      {"self_attn.o.", "attn1.to_out.0."},
      {"self_attn.norm_q.", "attn1.norm_q."},
      {"self_attn.norm_k.", "attn1.norm_k."},
      {"cross_attn.q.", "attn2.to_q."},
      {"cross_attn.k.", "attn2.to_k."},
      {"cross_attn.v.", "attn2.to_v."},
      {"cross_attn.o.", "attn2.to_out.0."},
      {"cross_attn.norm_q.", "attn2.norm_q."},
      {"cross_attn.norm_k.", "attn2.norm_k."},
      {"norm3.", "norm2."},  // cross-attention affine LN
      {"ffn.0.", "ffn.net.0.proj."},
      {"ffn.2.", "ffn.net.2."},
  };
  for (const auto& [from, to] : top)
    if (starts_with(canonical, from)) return to + canonical.substr(from.size());
  if (starts_with(canonical, "blocks.")) {
    const size_t dot = canonical.find('.', 7);
    if (dot != std::string::npos) {
      const std::string head = canonical.substr(0, dot + 1);  // "blocks.{i}."
      const std::string rest = canonical.substr(dot + 1);
      for (const auto& [from, to] : block)
        if (starts_with(rest, from)) return head + to + rest.substr(from.size());
    }
  }
  return canonical;
}

std::string wan_dit_file_key(WanDiTLayout layout, const std::string& canonical) {
  switch (layout) {
    case WanDiTLayout::Original: return canonical;
    case WanDiTLayout::Comfy: return kComfyPrefix + canonical;
    case WanDiTLayout::Diffusers: return wan_dit_diffusers_key(canonical);
  }
  return canonical;
}

// ---- layout detection ------------------------------------------------------------
namespace {

int count_signature(const TensorStore& store, WanDiTLayout layout) {
  int n = 0;
  for (const auto& k : signature_keys()) n += store.contains(wan_dit_file_key(layout, k)) ? 1 : 0;
  return n;
}

std::string first_names(const TensorStore& store, size_t n) {
  std::string s;
  for (size_t i = 0; i < store.names().size() && i < n; ++i) s += (i ? ", " : "") + store.names()[i];
  if (store.names().size() > n) s += fmt::format(", ... ({} tensors)", store.names().size());
  return s;
}

void refuse_image_to_video(const TensorStore& store) {
  for (const char* k : {"img_emb.proj.0.weight", "blocks.0.cross_attn.k_img.weight",
                        "model.diffusion_model.img_emb.proj.0.weight", "condition_embedder.image_embedder.norm1.weight",
                        "blocks.0.attn2.add_k_proj.weight"}) {
    if (store.contains(k))
      throw Error(kExitDataErr,
                  fmt::format("{}: holds an image-to-video Wan DiT (tensor {} present)", store.description(), k),
                  "t2v runs the text-to-video DiT (Wan2.1 T2V-1.3B / T2V-14B); pass a T2V checkpoint");
  }
}

}  // namespace

bool is_wan_dit(const TensorStore& store) {
  for (auto layout : {WanDiTLayout::Original, WanDiTLayout::Comfy, WanDiTLayout::Diffusers})
    if (count_signature(store, layout) >= 3) return true;
  return false;
}

WanDiTLayout detect_wan_dit_layout(const TensorStore& store) {
  refuse_image_to_video(store);
  WanDiTLayout best = WanDiTLayout::Original;
  int best_n = 0;
  for (auto layout : {WanDiTLayout::Original, WanDiTLayout::Comfy, WanDiTLayout::Diffusers}) {
    const int n = count_signature(store, layout);
    if (n > best_n) best = layout, best_n = n;
  }
  // Three of the eleven signature names are enough to say which layout a
  // damaged file was meant to be; missing keys are then listed by the check.
  if (best_n < 3)
    throw Error(kExitDataErr,
                fmt::format("{}: not a Wan DiT checkpoint (no blocks.0.self_attn.q.weight, "
                            "blocks.0.attn1.to_q.weight or {}blocks.0.self_attn.q.weight); its tensors: {}",
                            store.description(), kComfyPrefix, first_names(store, 6)),
                "pass the diffusion model file (or the diffusers transformer/ folder), not the text encoder or VAE");
  return best;
}

// ---- binding --------------------------------------------------------------------
namespace {

Linear bind_linear(const WeightGetter& get, const std::string& name, int64_t out, int64_t in, WeightPrecision p) {
  Linear l;
  l.weight = get(name + ".weight", Shape{out, in}, p);
  l.bias = get(name + ".bias", Shape{out}, p);
  return l;
}

WanAttention bind_attention(const WeightGetter& get, const std::string& name, const WanDiTConfig& cfg) {
  const int64_t d = cfg.dim;
  WanAttention a;
  a.q = bind_linear(get, name + ".q", d, d, WeightPrecision::Compute);
  a.k = bind_linear(get, name + ".k", d, d, WeightPrecision::Compute);
  a.v = bind_linear(get, name + ".v", d, d, WeightPrecision::Compute);
  a.o = bind_linear(get, name + ".o", d, d, WeightPrecision::Compute);
  if (cfg.qk_norm) {
    a.norm_q = get(name + ".norm_q.weight", Shape{d}, WeightPrecision::F32);
    a.norm_k = get(name + ".norm_k.weight", Shape{d}, WeightPrecision::F32);
  }
  return a;
}

}  // namespace

void bind_wan_dit(WanDiTWeights& w, const WanDiTConfig& cfg, const WeightGetter& get) {
  const int64_t d = cfg.dim;
  const auto& p = cfg.patch_size;
  using WP = WeightPrecision;
  // Conv3d weight [dim, C, pt, ph, pw]; the forward uses it as a Linear over
  // gathered patches [dim, C*pt*ph*pw] (same memory, channel slowest).
  Tensor pe = get("patch_embedding.weight", Shape{d, cfg.in_dim, p[0], p[1], p[2]}, WP::Compute);
  w.patch_embedding.weight = pe.defined() ? pe.reshape(Shape{d, cfg.in_dim * cfg.patch_numel()}) : pe;
  w.patch_embedding.bias = get("patch_embedding.bias", Shape{d}, WP::F32);
  w.text_embedding_0 = bind_linear(get, "text_embedding.0", d, cfg.text_dim, WP::Compute);
  w.text_embedding_2 = bind_linear(get, "text_embedding.2", d, d, WP::Compute);
  // Time MLP and projection run in fp32 in the reference (docs/wan.md §2.4).
  w.time_embedding_0 = bind_linear(get, "time_embedding.0", d, cfg.freq_dim, WP::F32);
  w.time_embedding_2 = bind_linear(get, "time_embedding.2", d, d, WP::F32);
  w.time_projection_1 = bind_linear(get, "time_projection.1", 6 * d, d, WP::F32);
  w.blocks.resize(static_cast<size_t>(cfg.num_layers));
  for (int64_t i = 0; i < cfg.num_layers; ++i) {
    const std::string b = fmt::format("blocks.{}.", i);
    WanDiTBlock& blk = w.blocks[static_cast<size_t>(i)];
    blk.modulation = get(b + "modulation", Shape{1, 6, d}, WP::F32);
    blk.self_attn = bind_attention(get, b + "self_attn", cfg);
    if (cfg.cross_attn_norm) {
      blk.norm3.weight = get(b + "norm3.weight", Shape{d}, WP::F32);
      blk.norm3.bias = get(b + "norm3.bias", Shape{d}, WP::F32);
    }
    blk.cross_attn = bind_attention(get, b + "cross_attn", cfg);
    blk.ffn_0 = bind_linear(get, b + "ffn.0", cfg.ffn_dim, d, WP::Compute);
    blk.ffn_2 = bind_linear(get, b + "ffn.2", d, cfg.ffn_dim, WP::Compute);
  }
  w.head.modulation = get("head.modulation", Shape{1, 2, d}, WP::F32);
  // The head Linear is fp32 in the reference (docs/wan.md §2.9).
  w.head.head = bind_linear(get, "head.head", cfg.out_dim * cfg.patch_numel(), d, WP::F32);
}

std::vector<WanDiTParam> wan_dit_expected_params(const WanDiTConfig& cfg) {
  std::vector<WanDiTParam> params;
  WanDiTWeights w;
  bind_wan_dit(w, cfg, [&](const std::string& key, const Shape& shape, WeightPrecision) {
    params.push_back({key, shape});
    return Tensor();
  });
  return params;
}

// ---- header-only check ----------------------------------------------------------
namespace {

// The preset a found shape belongs to (for the hint of a shape error), or "".
std::string preset_with_shape(const std::string& key, const Shape& found, const WanDiTConfig& cfg) {
  static const auto presets = [] {
    std::vector<std::pair<WanDiTConfig, std::map<std::string, Shape>>> v;
    for (const auto& name : wan_dit_preset_names()) {
      const WanDiTConfig p = *wan_dit_preset(name);
      std::map<std::string, Shape> shapes;
      for (const auto& param : wan_dit_expected_params(p)) shapes[param.key] = param.shape;
      v.emplace_back(p, std::move(shapes));
    }
    return v;
  }();
  for (const auto& [p, shapes] : presets) {
    if (p.dim == cfg.dim && p.ffn_dim == cfg.ffn_dim && p.text_dim == cfg.text_dim) continue;
    const auto it = shapes.find(key);
    if (it != shapes.end() && it->second == found) return p.preset;
  }
  return "";
}

// Number of transformer blocks present in the file (largest index + 1).
int64_t count_blocks(const TensorStore& store, WanDiTLayout layout) {
  const std::string prefix = layout == WanDiTLayout::Comfy ? std::string(kComfyPrefix) + "blocks." : "blocks.";
  int64_t n = 0;
  for (const auto& name : store.names()) {
    if (!starts_with(name, prefix)) continue;
    const size_t start = prefix.size(), dot = name.find('.', start);
    if (dot == std::string::npos || dot == start) continue;
    const std::string idx = name.substr(start, dot - start);
    if (idx.find_first_not_of("0123456789") != std::string::npos || idx.size() > 6) continue;
    n = std::max<int64_t>(n, std::stoll(idx) + 1);
  }
  return n;
}

}  // namespace

WanDiTCheck check_wan_dit_weights(const TensorStore& store, const WanDiTConfig& cfg) {
  WanDiTCheck result;
  result.layout = detect_wan_dit_layout(store);
  const WanDiTLayout layout = result.layout;
  std::vector<std::string> missing, problems;
  std::set<std::string> used;
  std::string likely_preset;
  for (const auto& param : wan_dit_expected_params(cfg)) {
    const std::string key = wan_dit_file_key(layout, param.key);
    const std::string named = key == param.key ? key : fmt::format("{} (canonical {})", key, param.key);
    if (!store.contains(key)) {
      missing.push_back(named);
      continue;
    }
    used.insert(key);
    const TensorInfo& info = store.info(key);
    result.num_params += info.shape.numel();
    if (info.shape != param.shape) {
      const std::string preset = preset_with_shape(param.key, info.shape, cfg);
      if (likely_preset.empty()) likely_preset = preset;
      std::string line = fmt::format("{} is {}, config expects {}{}", named, info.shape.str(), param.shape.str(),
                                     preset.empty() ? "" : ": this looks like the " + preset + " model");
      // The first q projection is the line users recognise (docs/bad_inputs.md #14): list it first.
      if (param.key == "blocks.0.self_attn.q.weight")
        problems.insert(problems.begin(), std::move(line));
      else
        problems.push_back(std::move(line));
    } else if (!is_convertible_dtype(info.dtype)) {
      problems.push_back(fmt::format("{} has dtype {}, expected a float type (F32, F16, BF16 or F8_E4M3)", named,
                                     dtype_name(info.dtype)));
    }
  }
  const int64_t blocks_in_file = count_blocks(store, layout);
  if (blocks_in_file > cfg.num_layers)
    problems.push_back(fmt::format("the checkpoint has {} blocks, the config {} layers", blocks_in_file,
                                   cfg.num_layers));
  for (const auto& name : store.names())
    if (!used.count(name) && !is_marker_key(name)) result.unused_keys.push_back(name);

  if (!missing.empty() || !problems.empty()) {
    std::string msg = fmt::format("{} (Wan DiT, {} layout) does not match the config ({}):", store.description(),
                                  wan_dit_layout_name(layout), cfg.summary());
    const size_t kShow = 8;
    for (size_t i = 0; i < problems.size() && i < kShow; ++i) msg += "\n  " + problems[i];
    if (problems.size() > kShow) msg += fmt::format("\n  ... and {} more mismatches", problems.size() - kShow);
    if (!missing.empty()) {
      msg += fmt::format("\n  {} missing tensor(s):", missing.size());
      for (size_t i = 0; i < missing.size() && i < kShow; ++i) msg += (i ? ", " : " ") + missing[i];
      if (missing.size() > kShow) msg += ", ...";
    }
    const std::string hint =
        !likely_preset.empty()
            ? fmt::format("the weights look like the {0} model; pass its config (--config {0}) or weights that "
                          "match this config",
                          likely_preset)
            : "check that the weights and the config (--config) belong to the same model";
    throw Error(kExitDataErr, msg, hint);
  }
  return result;
}

// ---- loading --------------------------------------------------------------------
WanDiTWeights load_wan_dit(const TensorStore& store, const WanDiTConfig& cfg, const WanDiTLoadOptions& opts) {
  cfg.validate("the Wan DiT config");
  const WanDiTCheck check = check_wan_dit_weights(store, cfg);
  // Unused keys: WeightLoader::finish warns (or raises when strict) below.
  WeightLoaderOptions lo;
  lo.device = opts.device;
  lo.dtype = opts.dtype;
  lo.layout = wan_dit_layout_name(check.layout);
  if (check.layout == WanDiTLayout::Comfy) lo.strip_prefix = kComfyPrefix;
  if (check.layout == WanDiTLayout::Diffusers) lo.rename = wan_dit_diffusers_key;
  WeightLoader loader(store, lo);
  WanDiTWeights w;
  bind_wan_dit(w, cfg, [&](const std::string& key, const Shape& shape, WeightPrecision p) {
    return p == WeightPrecision::F32 ? loader.get_f32(key, shape) : loader.get(key, shape);
  });
  loader.finish(opts.strict);
  return w;
}

}  // namespace t2v
