// Wan DiT weight layouts, the original -> diffusers rename table and binding.
// See wan_dit_weights.h and docs/wan.md §2.11.
#include "diffusion/wan_dit_weights.h"

#include <algorithm>
#include <map>
#include <utility>

#include <fmt/format.h>

#include "core/error.h"
#include "core/gguf.h"
#include "core/strings.h"

namespace t2v {

namespace {

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
      // image-to-video: the image embedder
      {"img_emb.proj.0.", "condition_embedder.image_embedder.norm1."},
      {"img_emb.proj.1.", "condition_embedder.image_embedder.ff.net.0.proj."},
      {"img_emb.proj.3.", "condition_embedder.image_embedder.ff.net.2."},
      {"img_emb.proj.4.", "condition_embedder.image_embedder.norm2."},
      {"img_emb.emb_pos", "condition_embedder.image_embedder.pos_embed"},
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
      {"cross_attn.k_img.", "attn2.add_k_proj."},  // image-to-video
      {"cross_attn.v_img.", "attn2.add_v_proj."},
      {"cross_attn.norm_k_img.", "attn2.norm_added_k."},
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

WeightLayout wan_dit_weight_layout(WanDiTLayout layout) {
  return {wan_dit_layout_name(layout), [layout](const std::string& k) { return wan_dit_file_key(layout, k); }};
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

}  // namespace

bool is_wan_dit(const TensorStore& store) {
  for (auto layout : {WanDiTLayout::Original, WanDiTLayout::Comfy, WanDiTLayout::Diffusers})
    if (count_signature(store, layout) >= 3) return true;
  return false;
}

WanDiTLayout detect_wan_dit_layout(const TensorStore& store) {
  require_gguf_architecture(store, {"wan"}, "a Wan DiT");
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
void Linear::bind(const WeightScope& s, int64_t out, int64_t in, WeightPrecision p) {
  if (p == WeightPrecision::Compute) {
    MaybePacked w = s.get_packable("weight", Shape{out, in});
    weight = std::move(w.dense);
    packed = std::move(w.packed);
  } else {
    weight = s.get("weight", Shape{out, in}, p);
  }
  bias = s.get("bias", Shape{out}, p);
}

void WanAttention::bind(const WeightScope& s, const WanDiTConfig& cfg, bool image) {
  const int64_t d = cfg.dim;
  q.bind(s.pp("q"), d, d, WeightPrecision::Compute);
  k.bind(s.pp("k"), d, d, WeightPrecision::Compute);
  v.bind(s.pp("v"), d, d, WeightPrecision::Compute);
  o.bind(s.pp("o"), d, d, WeightPrecision::Compute);
  if (cfg.qk_norm) {
    norm_q = s.get("norm_q.weight", Shape{d}, WeightPrecision::F32);
    norm_k = s.get("norm_k.weight", Shape{d}, WeightPrecision::F32);
  }
  if (image) {
    k_img.bind(s.pp("k_img"), d, d, WeightPrecision::Compute);
    v_img.bind(s.pp("v_img"), d, d, WeightPrecision::Compute);
    if (cfg.qk_norm) norm_k_img = s.get("norm_k_img.weight", Shape{d}, WeightPrecision::F32);
  }
}

void WanDiTBlock::bind(const WeightScope& s, const WanDiTConfig& cfg) {
  const int64_t d = cfg.dim;
  modulation = s.get("modulation", Shape{1, 6, d}, WeightPrecision::F32);
  self_attn.bind(s.pp("self_attn"), cfg);
  if (cfg.cross_attn_norm) {
    norm3.weight = s.get("norm3.weight", Shape{d}, WeightPrecision::F32);
    norm3.bias = s.get("norm3.bias", Shape{d}, WeightPrecision::F32);
  }
  cross_attn.bind(s.pp("cross_attn"), cfg, cfg.image_to_video());
  ffn_0.bind(s.pp("ffn.0"), cfg.ffn_dim, d, WeightPrecision::Compute);
  ffn_2.bind(s.pp("ffn.2"), d, cfg.ffn_dim, WeightPrecision::Compute);
}

WanDiTWeights WanDiTWeights::bind(const WeightScope& root, const WanDiTConfig& cfg) {
  cfg.validate("the Wan DiT config");
  const int64_t d = cfg.dim;
  const auto& p = cfg.patch_size;
  using WP = WeightPrecision;
  WanDiTWeights w;
  w.dtype = root.source().dtype();
  // Conv3d weight [dim, C, pt, ph, pw]; the forward uses it as a Linear over
  // gathered patches [dim, C*pt*ph*pw] (same memory, channel slowest).
  const Tensor pe = root.get("patch_embedding.weight", Shape{d, cfg.in_dim, p[0], p[1], p[2]}, WP::Compute);
  w.patch_embedding.weight = pe.defined() ? pe.reshape(Shape{d, cfg.in_dim * cfg.patch_numel()}) : pe;
  w.patch_embedding.bias = root.get("patch_embedding.bias", Shape{d}, WP::F32);
  w.text_embedding_0.bind(root.pp("text_embedding.0"), d, cfg.text_dim, WP::Compute);
  w.text_embedding_2.bind(root.pp("text_embedding.2"), d, d, WP::Compute);
  // Time MLP and projection run in fp32 in the reference (docs/wan.md §2.4).
  w.time_embedding_0.bind(root.pp("time_embedding.0"), d, cfg.freq_dim, WP::F32);
  w.time_embedding_2.bind(root.pp("time_embedding.2"), d, d, WP::F32);
  w.time_projection_1.bind(root.pp("time_projection.1"), 6 * d, d, WP::F32);
  w.blocks.resize(static_cast<size_t>(cfg.num_layers));
  const WeightScope blocks = root.pp("blocks");
  for (int64_t i = 0; i < cfg.num_layers; ++i) w.blocks[static_cast<size_t>(i)].bind(blocks.pp(i), cfg);
  const WeightScope head = root.pp("head");
  w.head.modulation = head.get("modulation", Shape{1, 2, d}, WP::F32);
  // The head Linear is fp32 in the reference (docs/wan.md §2.9).
  w.head.head.bind(head.pp("head"), cfg.out_dim * cfg.patch_numel(), d, WP::F32);
  if (cfg.image_to_video()) {  // docs/wan.md §5.1
    const int64_t id = cfg.image_dim;
    const WeightScope ie = root.pp("img_emb");
    w.img_emb.proj_0.weight = ie.get("proj.0.weight", Shape{id}, WP::F32);
    w.img_emb.proj_0.bias = ie.get("proj.0.bias", Shape{id}, WP::F32);
    w.img_emb.proj_1.bind(ie.pp("proj.1"), id, id, WP::Compute);
    w.img_emb.proj_3.bind(ie.pp("proj.3"), d, id, WP::Compute);
    w.img_emb.proj_4.weight = ie.get("proj.4.weight", Shape{d}, WP::F32);
    w.img_emb.proj_4.bias = ie.get("proj.4.bias", Shape{d}, WP::F32);
    if (cfg.first_last_frame()) w.img_emb.emb_pos = ie.get("emb_pos", Shape{1, cfg.image_pos_len, id}, WP::F32);
  }
  return w;
}

std::vector<WeightRequest> wan_dit_weight_list(const WanDiTConfig& cfg) {
  return list_weights([&](const WeightScope& root) { WanDiTWeights::bind(root, cfg); });
}

// ---- loading --------------------------------------------------------------------
namespace {

// The preset a found shape belongs to (for the note on a shape error), or "".
std::string preset_with_shape(const std::string& key, const Shape& found, const WanDiTConfig& cfg) {
  static const auto presets = [] {
    std::vector<std::pair<WanDiTConfig, std::map<std::string, Shape>>> v;
    for (const auto& name : WanDiTConfig::preset_names()) {
      const WanDiTConfig p = WanDiTConfig::preset(name);
      std::map<std::string, Shape> shapes;
      for (const auto& r : wan_dit_weight_list(p)) shapes[r.key] = r.shape;
      v.emplace_back(p, std::move(shapes));
    }
    return v;
  }();
  for (const auto& [p, shapes] : presets) {
    if (p.dim == cfg.dim && p.ffn_dim == cfg.ffn_dim && p.text_dim == cfg.text_dim) continue;
    const auto it = shapes.find(key);
    if (it != shapes.end() && it->second == found) return p.preset_name;
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

WanDiTWeights load_wan_dit(const TensorStore& store, const WanDiTConfig& cfg, const WanDiTLoadOptions& opts) {
  cfg.validate("the Wan DiT config");
  const WanDiTLayout layout = detect_wan_dit_layout(store);
  CheckpointOptions co;
  co.device = opts.device;
  co.dtype = opts.dtype;
  co.strict = opts.strict;
  co.dry_run = opts.dry_run;
  co.delta = opts.delta;
  co.keep_packed = opts.keep_packed;
  co.model = "Wan DiT";
  co.config = cfg.summary();
  co.hint = "check that the weights and the config (--config) belong to the same model";
  co.shape_note = [cfg](const std::string& key, const Shape& found, const Shape&) {
    const std::string preset = preset_with_shape(key, found, cfg);
    if (preset.empty()) return ShapeNote{};
    return ShapeNote{"this looks like the " + preset + " model",
                     fmt::format("the weights look like the {0} model; pass its config (--config {0}) or weights "
                                 "that match this config",
                                 preset)};
  };
  // The first q projection is the line users recognise (docs/bad_inputs.md #14): list it first.
  co.headline_keys = {"blocks.0.self_attn.q.weight"};
  WanDiTWeights w;
  const WeightReport report =
      bind_checkpoint(store, wan_dit_weight_layout(layout), co, [&](const WeightScope& root, CheckpointSource& src) {
        w = WanDiTWeights::bind(root, cfg);
        const int64_t blocks_in_file = count_blocks(store, layout);
        if (src.dry_run() && blocks_in_file > cfg.num_layers)
          src.report(fmt::format("the checkpoint has {} blocks, the config {} layers", blocks_in_file,
                                 cfg.num_layers));
      });
  if (opts.report) *opts.report = report;
  return w;
}

}  // namespace t2v
