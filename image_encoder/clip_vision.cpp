// CLIP vision tower: layouts and their one rename table, weight binding, the
// forward on the op set, and Wan's input preprocessing. Follows open_clip's
// VisionTransformer as Wan-Video/Wan2.1 wan/modules/clip.py runs it
// (use_31_block=True) and transformers' CLIPVisionModel (hidden_states[-2]);
// docs/wan.md §5.1.
#include "image_encoder/clip_vision.h"

#include <cmath>
#include <utility>

#include <fmt/format.h>

#include "core/error.h"
#include "core/image_resize.h"
#include "core/strings.h"
#include "kernels/ops.h"

namespace t2v {

const char* clip_vision_layout_name(ClipVisionLayout layout) {
  return layout == ClipVisionLayout::Wan ? "wan" : "transformers";
}

// ---- the rename table --------------------------------------------------------------
// Canonical names are transformers' without the `vision_model.` prefix. The Wan
// (open_clip) layout fuses q, k and v into `attn.to_qkv`; its canonical stand-in is
// `self_attn.qkv_proj`, a name transformers does not have.
std::string clip_vision_layout_key(ClipVisionLayout layout, const std::string& canonical) {
  if (layout == ClipVisionLayout::Transformers) return canonical;
  static const std::vector<std::pair<std::string, std::string>> top = {
      {"embeddings.patch_embedding.weight", "patch_embedding.weight"},
      {"embeddings.class_embedding", "cls_embedding"},
      {"embeddings.position_embedding.weight", "pos_embedding"},
      {"pre_layrnorm.", "pre_norm."},
      {"post_layernorm.", "post_norm."},
  };
  static const std::vector<std::pair<std::string, std::string>> layer = {
      {"layer_norm1.", "norm1."},          {"layer_norm2.", "norm2."},   {"self_attn.qkv_proj.", "attn.to_qkv."},
      {"self_attn.out_proj.", "attn.proj."}, {"mlp.fc1.", "mlp.0."},    {"mlp.fc2.", "mlp.2."},
  };
  for (const auto& [from, to] : top)
    if (starts_with(canonical, from)) return to + canonical.substr(from.size());
  const std::string pre = "encoder.layers.";
  if (starts_with(canonical, pre)) {
    const size_t dot = canonical.find('.', pre.size());
    if (dot != std::string::npos) {
      const std::string index = canonical.substr(pre.size(), dot - pre.size());
      const std::string rest = canonical.substr(dot + 1);
      for (const auto& [from, to] : layer)
        if (starts_with(rest, from)) return "transformer." + index + "." + to + rest.substr(from.size());
    }
  }
  return canonical;  // no Wan name (q_proj, k_proj, v_proj): reported missing if asked for
}

WeightLayout clip_vision_weight_layout(ClipVisionLayout layout, const std::string& prefix) {
  return {clip_vision_layout_name(layout),
          [layout, prefix](const std::string& k) { return prefix + clip_vision_layout_key(layout, k); }};
}

namespace {

bool find_layout(const TensorStore& store, ClipVisionLayout* layout, std::string* prefix) {
  // The transformers patch embedding wherever it sits ("vision_model.", "" or a
  // wrapper's prefix), preferring the usual prefix.
  const std::string tf = "embeddings.patch_embedding.weight";
  for (const std::string p : {"vision_model.", ""})
    if (store.contains(p + tf)) return *layout = ClipVisionLayout::Transformers, *prefix = p, true;
  for (const std::string& name : store.names())
    if (ends_with(name, "." + tf)) return *layout = ClipVisionLayout::Transformers, *prefix = name.substr(0, name.size() - tf.size()), true;
  // open_clip / Wan: patch_embedding and cls_embedding side by side ("visual." in Wan's checkpoint).
  for (const std::string p : {"visual.", ""})
    if (store.contains(p + "patch_embedding.weight") && store.contains(p + "cls_embedding"))
      return *layout = ClipVisionLayout::Wan, *prefix = p, true;
  return false;
}

}  // namespace

bool is_clip_vision(const TensorStore& store) {
  ClipVisionLayout layout;
  std::string prefix;
  return find_layout(store, &layout, &prefix);
}

ClipVisionLayout detect_clip_vision_layout(const TensorStore& store, std::string* prefix) {
  ClipVisionLayout layout;
  std::string p;
  if (!find_layout(store, &layout, &p)) {
    std::string names;
    for (size_t i = 0; i < store.names().size() && i < 4; ++i) names += (i ? ", " : "") + store.names()[i];
    throw Error(kExitDataErr,
                fmt::format("{}: not a CLIP vision encoder (no vision_model.embeddings.patch_embedding.weight or "
                            "visual.cls_embedding); its tensors: {}{}",
                            store.description(), names, store.names().size() > 4 ? ", ..." : ""),
                "pass the image encoder: diffusers image_encoder/ or ComfyUI's clip_vision_h.safetensors");
  }
  if (prefix) *prefix = p;
  return layout;
}

// ---- binding --------------------------------------------------------------------------
namespace {

void bind_linear(ClipLinear& l, const WeightScope& s, int64_t out, int64_t in) {
  l.weight = s.get("weight", Shape{out, in});
  l.bias = s.get("bias", Shape{out}, WeightPrecision::F32);
}

void bind_norm(ClipLayerNorm& n, const WeightScope& s, int64_t dim) {
  n.weight = s.get("weight", Shape{dim}, WeightPrecision::F32);
  n.bias = s.get("bias", Shape{dim}, WeightPrecision::F32);
}

// Rows [i·D, (i+1)·D) of a fused [3D, ...] tensor (undefined stays undefined: a dry run).
Tensor part(const Tensor& fused, int i, int64_t D) {
  return fused.defined() ? ops::slice(fused, 0, i * D, (i + 1) * D) : Tensor();
}

}  // namespace

ClipVisionWeights ClipVisionWeights::bind(const WeightScope& root, const ClipVisionConfig& cfg,
                                          ClipVisionLayout layout) {
  cfg.validate("the CLIP vision config");
  const int64_t D = cfg.hidden, N = cfg.num_tokens(), p = cfg.patch;
  const bool wan = layout == ClipVisionLayout::Wan;
  using WP = WeightPrecision;
  ClipVisionWeights w;
  w.patch_embedding = root.get("embeddings.patch_embedding.weight", Shape{D, cfg.channels, p, p});
  // open_clip keeps the class token as [1, 1, D] and positions as [1, N, D].
  const Tensor cls = root.get("embeddings.class_embedding", wan ? Shape{1, 1, D} : Shape{D}, WP::F32);
  const Tensor pos = root.get("embeddings.position_embedding.weight", wan ? Shape{1, N, D} : Shape{N, D}, WP::F32);
  w.class_embedding = cls.defined() ? cls.reshape(Shape{D}) : cls;
  w.position_embedding = pos.defined() ? pos.reshape(Shape{N, D}) : pos;
  bind_norm(w.pre_layrnorm, root.pp("pre_layrnorm"), D);
  // Only the blocks Wan runs: the last block (and post_layernorm) are left unbound.
  w.layers.resize(static_cast<size_t>(cfg.layers_run()));
  const WeightScope layers = root.pp("encoder.layers");
  for (int64_t i = 0; i < cfg.layers_run(); ++i) {
    ClipEncoderLayer& l = w.layers[static_cast<size_t>(i)];
    const WeightScope s = layers.pp(i);
    bind_norm(l.layer_norm1, s.pp("layer_norm1"), D);
    const WeightScope a = s.pp("self_attn");
    if (wan) {
      ClipLinear qkv;
      bind_linear(qkv, a.pp("qkv_proj"), 3 * D, D);  // rows q, k, v
      l.q_proj = {part(qkv.weight, 0, D), part(qkv.bias, 0, D)};
      l.k_proj = {part(qkv.weight, 1, D), part(qkv.bias, 1, D)};
      l.v_proj = {part(qkv.weight, 2, D), part(qkv.bias, 2, D)};
    } else {
      bind_linear(l.q_proj, a.pp("q_proj"), D, D);
      bind_linear(l.k_proj, a.pp("k_proj"), D, D);
      bind_linear(l.v_proj, a.pp("v_proj"), D, D);
    }
    bind_linear(l.out_proj, a.pp("out_proj"), D, D);
    bind_norm(l.layer_norm2, s.pp("layer_norm2"), D);
    bind_linear(l.fc1, s.pp("mlp.fc1"), cfg.intermediate, D);
    bind_linear(l.fc2, s.pp("mlp.fc2"), D, cfg.intermediate);
  }
  return w;
}

std::vector<WeightRequest> clip_vision_weight_list(const ClipVisionConfig& cfg) {
  return list_weights([&](const WeightScope& root) { ClipVisionWeights::bind(root, cfg); });
}

// ---- loading ----------------------------------------------------------------------------
ClipVisionEncoder ClipVisionEncoder::load(const std::string& path, const ClipVisionConfig& cfg,
                                          const ClipVisionLoadOptions& opts) {
  const TensorStore store = TensorStore::open(path);  // pickle (.pth) refused with the conversion command
  return load(store, cfg, opts);
}

ClipVisionEncoder ClipVisionEncoder::load(const TensorStore& store, const ClipVisionConfig& cfg,
                                          const ClipVisionLoadOptions& opts) {
  cfg.validate("the CLIP vision config");
  std::string prefix;
  const ClipVisionLayout layout = detect_clip_vision_layout(store, &prefix);
  CheckpointOptions co;
  co.device = opts.device;
  co.dtype = opts.dtype;
  co.strict = opts.strict;
  co.dry_run = opts.dry_run;
  co.model = "CLIP vision";
  co.config = cfg.summary();
  co.hint = "check that the image encoder is CLIP ViT-H/14 (clip_vision_h) as the image-to-video model expects";
  co.headline_keys = {"embeddings.patch_embedding.weight"};
  // Wan uses the second-to-last block: the last block, the post-LayerNorm, the
  // projection (transformers' visual_projection, open_clip's head), position ids and
  // anything outside the vision tower (open_clip's text tower) are not needed.
  const std::string last =
      prefix + (layout == ClipVisionLayout::Wan ? "transformer." : "encoder.layers.") + std::to_string(cfg.layers_run()) + ".";
  co.unbound_on_purpose = [prefix, last, layout](const std::string& k) {
    if (!starts_with(k, prefix)) return true;
    const std::string rest = k.substr(prefix.size());
    return starts_with(k, last) || starts_with(rest, layout == ClipVisionLayout::Wan ? "post_norm." : "post_layernorm.") ||
           rest == "head" || rest == "embeddings.position_ids";
  };
  ClipVisionWeights w;
  const WeightReport report = bind_checkpoint(
      store, clip_vision_weight_layout(layout, prefix), co, [&](const WeightScope& root, CheckpointSource& src) {
        w = ClipVisionWeights::bind(root, cfg, layout);
        // More blocks in the file than the config says: the output would come from another block.
        const std::string extra =
            prefix + clip_vision_layout_key(layout, fmt::format("encoder.layers.{}.layer_norm1.weight", cfg.num_layers));
        if (src.dry_run() && store.contains(extra))
          src.report(fmt::format("the checkpoint has more than the config's {} blocks ({} present)", cfg.num_layers,
                                 extra));
      });
  if (opts.report) *opts.report = report;
  return ClipVisionEncoder(cfg, std::move(w));
}

ClipVisionEncoder::ClipVisionEncoder(ClipVisionConfig cfg, ClipVisionWeights weights)
    : cfg_(std::move(cfg)), w_(std::move(weights)) {
  cfg_.validate("the CLIP vision config");
  T2V_ASSERT(static_cast<int64_t>(w_.layers.size()) == cfg_.layers_run(), "{} CLIP layers bound for {}",
             w_.layers.size(), cfg_.layers_run());
}

// ---- forward ----------------------------------------------------------------------------
namespace {

// x in dtype dt (no op when it already is): the one place activations change precision.
Tensor in_dtype(const Tensor& x, DType dt) { return x.dtype() == dt ? x : ops::cast(x, dt); }

// A GEMM in the compute dtype: x is already in the weight's dtype, and so is the result.
Tensor linear(const Tensor& x, const ClipLinear& l) { return ops::linear(x, l.weight, l.bias); }

Tensor layer_norm(const Tensor& x, const ClipLayerNorm& n, float eps) { return ops::layer_norm(x, n.weight, n.bias, eps); }

}  // namespace

Tensor ClipVisionEncoder::forward(const Tensor& pixels) const {
  const ClipVisionConfig& c = cfg_;
  if (pixels.dim() != 4 || pixels.size(1) != c.channels || pixels.size(2) != c.image_size ||
      pixels.size(3) != c.image_size || pixels.size(0) < 1)
    throw Error(kExitDataErr,
                fmt::format("CLIP vision input is {}, expected [B, {}, {}, {}]", pixels.str(), c.channels,
                            c.image_size, c.image_size),
                "resize the images to the encoder's input size first (clip_vision_preprocess)");
  const Device dev = w_.patch_embedding.device();
  // One compute dtype, the GEMM weights' (F32 on the CPU; BF16 or F32 on a device): the
  // patch conv, q/k/v/out and the MLP run in it, each group's input cast once. fp32
  // islands as under the reference's autocast: the residual stream, the class and
  // position embeddings, and the statistics of every LayerNorm.
  const DType cd = w_.patch_embedding.dtype();
  const int64_t B = pixels.size(0), D = c.hidden, N = c.num_tokens(), G = c.grid();
  const Tensor x = in_dtype(pixels.to(dev), cd);
  // Patch embedding: a Conv2d with kernel = stride = patch and no bias.
  ops::Conv2dParams cp;
  cp.stride = {static_cast<int>(c.patch), static_cast<int>(c.patch)};
  Tensor h = in_dtype(ops::conv2d(x, w_.patch_embedding, Tensor(), cp), DType::F32);  // [B, D, G, G]
  h = ops::permute(h.reshape(Shape{B, D, G * G}), {0, 2, 1});  // [B, G*G, D]
  // [class ; patches] + positions, then the pre-LayerNorm.
  const Tensor cls = w_.class_embedding.reshape(Shape{1, 1, D});
  std::vector<Tensor> rows(static_cast<size_t>(B), cls);
  h = ops::concat({B == 1 ? cls : ops::concat(rows, 0), h}, 1);  // [B, N, D]
  h = ops::add(h, w_.position_embedding.reshape(Shape{1, N, D}));
  h = layer_norm(h, w_.pre_layrnorm, c.eps);
  const int64_t NH = c.num_heads, Dh = c.head_dim();
  ops::AttentionParams ap;
  ap.scale = 1.0f / std::sqrt(static_cast<float>(Dh));
  for (const ClipEncoderLayer& l : w_.layers) {
    const Tensor a = in_dtype(layer_norm(h, l.layer_norm1, c.eps), cd);  // once for q, k, v
    const Shape heads{B, N, NH, Dh};
    const Tensor q = linear(a, l.q_proj).reshape(heads), k = linear(a, l.k_proj).reshape(heads),
                 v = linear(a, l.v_proj).reshape(heads);
    const Tensor o = ops::attention(q, k, v, ap).reshape(Shape{B, N, D});  // in the compute dtype
    h = ops::add(h, in_dtype(linear(o, l.out_proj), DType::F32));
    const Tensor m = in_dtype(layer_norm(h, l.layer_norm2, c.eps), cd);
    h = ops::add(h, in_dtype(linear(ops::gelu_erf(linear(m, l.fc1)), l.fc2), DType::F32));
  }
  return h;
}

// ---- preprocessing -----------------------------------------------------------------------
Tensor clip_vision_preprocess(const Tensor& images, const ClipVisionConfig& cfg) {
  if (images.dim() != 4 || images.size(1) != 3 || images.device() != Device::CPU || images.dtype() != DType::F32)
    throw Error(kExitDataErr, fmt::format("CLIP preprocessing takes CPU F32 images [B, 3, H, W], got {}", images.str()),
                "");
  // OpenAI CLIP's normalisation constants (open_clip and transformers use the same).
  static const float kMean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
  static const float kStd[3] = {0.26862954f, 0.26130258f, 0.27577711f};
  Tensor x = resize_bicubic(images, cfg.image_size, cfg.image_size);  // a squash, no crop
  float* p = x.data<float>();
  const int64_t plane = cfg.image_size * cfg.image_size;
  for (int64_t b = 0; b < x.size(0); ++b)
    for (int64_t ch = 0; ch < 3; ++ch) {
      float* q = p + (b * 3 + ch) * plane;
      // mul_(0.5).add_(0.5), then torchvision's normalize: sub_(mean).div_(std), in float32.
      for (int64_t i = 0; i < plane; ++i) q[i] = ((q[i] * 0.5f + 0.5f) - kMean[ch]) / kStd[ch];
    }
  return x;
}

}  // namespace t2v
