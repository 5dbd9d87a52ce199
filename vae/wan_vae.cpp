// Wan2.1 VAE: encoder/decoder assembly, weight binding for both checkpoint
// layouts, chunked encode and the whole-sequence reference decode. The streamed
// (and tiled) decode is in wan_vae_decode.cpp.
#include "vae/wan_vae.h"

#include <climits>
#include <cstdint>
#include <string_view>
#include <utility>

#include "core/strings.h"
#include "core/weights.h"
#include "kernels/ops.h"
#include "vae/wan_vae_residual.h"

namespace t2v {

namespace {

CausalSlot* slot_of(CausalCache* cache) { return cache ? &cache->next() : nullptr; }

}  // namespace

// ---- encoder -------------------------------------------------------------------------

void WanVAEEncoder::bind(const WeightScope& s, const WanVAEConfig& cfg) {
  if (cfg.is_residual) return bind_residual_encoder(*this, s, cfg);  // Wan2.2 (wan_vae_residual.cpp)
  // Stage widths: base_dim * [1, dim_mult...], e.g. 96, 96, 192, 384, 384.
  std::vector<int> dims{cfg.base_dim};
  for (int m : cfg.dim_mult) dims.push_back(cfg.base_dim * m);
  conv1.bind(s.pp("conv1"), cfg.in_channels, dims[0], {3, 3, 3}, {1, 1, 1});

  // The original keeps one flat list `downsamples.{n}` over all stages (res blocks,
  // then the stage's downsample).
  const WeightScope list = s.pp("downsamples");
  int n = 0;
  const size_t n_stages = cfg.dim_mult.size();
  stages.assign(n_stages, {});
  for (size_t i = 0; i < n_stages; ++i) {
    int in_dim = dims[i];
    const int out_dim = dims[i + 1];
    for (int r = 0; r < cfg.num_res_blocks; ++r, ++n) {
      stages[i].res_blocks.emplace_back();
      stages[i].res_blocks.back().bind(list.pp(n), in_dim, out_dim);
      in_dim = out_dim;
    }
    if (i + 1 < n_stages) {
      const ResampleMode mode = cfg.temperal_downsample[i] ? ResampleMode::Downsample3d : ResampleMode::Downsample2d;
      stages[i].resample.emplace();
      stages[i].resample->bind(list.pp(n), out_dim, mode);
      ++n;
    }
  }
  const int c = dims.back();
  middle_0.bind(s.pp("middle.0"), c, c);
  middle_1.bind(s.pp("middle.1"), c);
  middle_2.bind(s.pp("middle.2"), c, c);
  head_0.bind(s.pp("head.0"), c, /*images=*/false);
  head_2.bind(s.pp("head.2"), c, 2 * cfg.z_dim, {3, 3, 3}, {1, 1, 1});
}

Tensor WanVAEEncoder::forward(const Tensor& x_in, CausalCache* cache) const {
  Tensor x = conv1.forward(vae_patchify(x_in, patch), slot_of(cache));  // [B, C0, F, H/p, W/p]
  for (const VAEStage& s : stages) x = s.forward(x, cache);
  x = middle_0.forward(x, cache);
  x = middle_1.forward(x);
  x = middle_2.forward(x, cache);
  x = ops::silu(head_0.forward(x));
  return head_2.forward(x, slot_of(cache));  // [B, 2z, T, H/8, W/8]
}

// ---- decoder -------------------------------------------------------------------------

void WanVAEDecoder::bind(const WeightScope& s, const WanVAEConfig& cfg) {
  if (cfg.is_residual) return bind_residual_decoder(*this, s, cfg);  // Wan2.2 (wan_vae_residual.cpp)
  // Stage widths: base * [dim_mult[-1], reversed(dim_mult)...], e.g. 384, 384, 384, 192, 96.
  const int base = cfg.decoder_base_dim;
  std::vector<int> dims{base * cfg.dim_mult.back()};
  for (auto it = cfg.dim_mult.rbegin(); it != cfg.dim_mult.rend(); ++it) dims.push_back(base * *it);
  conv1.bind(s.pp("conv1"), cfg.z_dim, dims[0], {3, 3, 3}, {1, 1, 1});
  middle_0.bind(s.pp("middle.0"), dims[0], dims[0]);
  middle_1.bind(s.pp("middle.1"), dims[0]);
  middle_2.bind(s.pp("middle.2"), dims[0], dims[0]);

  // One flat list `upsamples.{n}`: each stage has num_res_blocks + 1 res blocks,
  // then (but the last) its upsample.
  const std::vector<bool> temporal = cfg.temperal_upsample();
  const WeightScope list = s.pp("upsamples");
  const size_t n_stages = cfg.dim_mult.size();
  stages.assign(n_stages, {});
  int n = 0;
  for (size_t i = 0; i < n_stages; ++i) {
    // After an upsample the conv has halved the channels: the next stage takes dims[i] / 2 in.
    int in_dim = i == 0 ? dims[0] : dims[i] / 2;
    const int out_dim = dims[i + 1];
    for (int r = 0; r <= cfg.num_res_blocks; ++r, ++n) {
      stages[i].res_blocks.emplace_back();
      stages[i].res_blocks.back().bind(list.pp(n), in_dim, out_dim);
      in_dim = out_dim;
    }
    if (i + 1 < n_stages) {
      const ResampleMode mode = temporal[i] ? ResampleMode::Upsample3d : ResampleMode::Upsample2d;
      stages[i].resample.emplace();
      stages[i].resample->bind(list.pp(n), out_dim, mode);
      ++n;
    }
  }
  const int c = dims.back();
  head_0.bind(s.pp("head.0"), c, /*images=*/false);
  head_2.bind(s.pp("head.2"), c, cfg.out_channels, {3, 3, 3}, {1, 1, 1});
}

Tensor WanVAEDecoder::forward(const Tensor& z, CausalCache* cache) const {
  Tensor x = conv1.forward(z, slot_of(cache));  // [B, C, T, h, w]
  x = middle_0.forward(x, cache);
  x = middle_1.forward(x);
  x = middle_2.forward(x, cache);
  for (const VAEStage& s : stages) x = s.forward(x, cache);
  x = ops::silu(head_0.forward(x));
  return head_2.forward(x, slot_of(cache));  // [B, 3, T', 8h, 8w]
}

// ---- layouts -----------------------------------------------------------------------------

const char* wan_vae_layout_name(WanVAELayout l) { return l == WanVAELayout::Original ? "original" : "diffusers"; }

namespace {

// Residual-block parts: original -> diffusers (anything else, e.g. a resample's
// `resample.1` / `time_conv`, keeps its name).
std::string residual_part(const std::string& rest) {
  static const std::pair<std::string_view, std::string_view> kMap[] = {{"residual.0.", "norm1."},
                                                                       {"residual.2.", "conv1."},
                                                                       {"residual.3.", "norm2."},
                                                                       {"residual.6.", "conv2."},
                                                                       {"shortcut.", "conv_shortcut."}};
  for (const auto& [o, d] : kMap)
    if (starts_with(rest, o)) return std::string(d) + rest.substr(o.size());
  return rest;
}

// The part of an encoder/decoder key after "encoder." / "decoder.".
std::string body_key(const WanVAEConfig& cfg, bool decoder, const std::string& rest) {
  static const std::pair<std::string_view, std::string_view> kFixed[] = {{"conv1.", "conv_in."},
                                                                         {"head.0.", "norm_out."},
                                                                         {"head.2.", "conv_out."},
                                                                         {"middle.1.", "mid_block.attentions.0."}};
  for (const auto& [o, d] : kFixed)
    if (starts_with(rest, o)) return std::string(d) + rest.substr(o.size());
  if (starts_with(rest, "middle.0.")) return "mid_block.resnets.0." + residual_part(rest.substr(9));
  if (starts_with(rest, "middle.2.")) return "mid_block.resnets.1." + residual_part(rest.substr(9));
  if (cfg.is_residual) {  // Wan2.2: nested stage lists (wan_vae_residual.h)
    const auto k = wan_vae_residual_stage_key(cfg, decoder, rest);
    return k ? k->prefix + (k->resnet ? residual_part(k->tail) : k->tail) : rest;
  }
  const std::string list = decoder ? "upsamples." : "downsamples.";
  const size_t dot = rest.find('.', list.size());
  if (!starts_with(rest, list) || dot == std::string::npos || dot == list.size() || dot - list.size() > 6) return rest;
  const std::string index = rest.substr(list.size(), dot - list.size());
  if (index.find_first_not_of("0123456789") != std::string::npos) return rest;
  const int n = std::stoi(index);
  const std::string tail = rest.substr(dot + 1);
  // diffusers' down_blocks keep the flat index.
  if (!decoder) return fmt::format("down_blocks.{}.{}", n, residual_part(tail));
  // up_blocks: stage i holds num_res_blocks + 1 resnets, then one upsampler.
  const int per_stage = cfg.num_res_blocks + 2, i = n / per_stage, j = n % per_stage;
  if (j <= cfg.num_res_blocks) return fmt::format("up_blocks.{}.resnets.{}.{}", i, j, residual_part(tail));
  return fmt::format("up_blocks.{}.upsamplers.0.{}", i, tail);
}

}  // namespace

std::string wan_vae_diffusers_key(const WanVAEConfig& cfg, const std::string& original) {
  if (starts_with(original, "conv1.")) return "quant_conv." + original.substr(6);
  if (starts_with(original, "conv2.")) return "post_quant_conv." + original.substr(6);
  if (starts_with(original, "encoder.")) return "encoder." + body_key(cfg, false, original.substr(8));
  if (starts_with(original, "decoder.")) return "decoder." + body_key(cfg, true, original.substr(8));
  return original;
}

WeightLayout wan_vae_weight_layout(const WanVAEConfig& cfg, WanVAELayout layout, const std::string& prefix) {
  if (layout == WanVAELayout::Original)
    return {wan_vae_layout_name(layout), [prefix](const std::string& k) { return prefix + k; }};
  return {wan_vae_layout_name(layout),
          [cfg, prefix](const std::string& k) { return prefix + wan_vae_diffusers_key(cfg, k); }};
}

std::vector<WanVAEKeyEntry> wan_vae_key_table(const WanVAEConfig& cfg, WanVAEParts parts) {
  std::vector<WanVAEKeyEntry> table;
  for (const WeightRequest& r : list_weights([&](const WeightScope& root) { WanVAE::bind(root, cfg, parts); }))
    table.push_back({r.key, wan_vae_diffusers_key(cfg, r.key), r.shape});
  return table;
}

WanVAELayout detect_wan_vae_layout(const TensorStore& store, std::string* prefix) {
  // Marker tensors: the decoder's or the encoder's first conv, in either naming.
  static const char* kPrefixes[] = {"", "first_stage_model.", "vae."};
  for (const char* p : kPrefixes) {
    const std::string s(p);
    if (store.contains(s + "decoder.conv1.weight") || store.contains(s + "encoder.conv1.weight")) {
      if (prefix) *prefix = s;
      return WanVAELayout::Original;
    }
    if (store.contains(s + "decoder.conv_in.weight") || store.contains(s + "encoder.conv_in.weight")) {
      if (prefix) *prefix = s;
      return WanVAELayout::Diffusers;
    }
  }
  throw Error(kExitDataErr,
              fmt::format("{}: not a Wan VAE checkpoint (no decoder.conv1.weight or decoder.conv_in.weight)",
                          store.description()),
              "pass the Wan2.1 VAE (wan_2.1_vae.safetensors or a diffusers vae/ folder)");
}

WanVAEConfig WanVAEConfig::from_weights(const TensorStore& store) {
  std::string prefix;
  const WanVAELayout layout = detect_wan_vae_layout(store, &prefix);
  const bool diffusers = layout == WanVAELayout::Diffusers;
  auto shape_of = [&](const std::string& original, const std::string& diffusers_key) -> const Shape* {
    const std::string k = prefix + (diffusers ? diffusers_key : original);
    return store.contains(k) ? &store.info(k).shape : nullptr;
  };
  // Residual blocks at the start of the first stage (they are followed by a resample).
  auto count = [&](const char* original_fmt, const char* diffusers_fmt) {
    int n = 0;
    while (n < 64 && shape_of(fmt::format(fmt::runtime(original_fmt), n), fmt::format(fmt::runtime(diffusers_fmt), n)))
      ++n;
    return n;
  };
  // A size past int range becomes -1, which validate() refuses, instead of wrapping.
  auto narrow = [](int64_t v) { return v < 0 || v > INT32_MAX ? -1 : static_cast<int>(v); };
  // Wan2.2's residual blocks nest their lists (docs/wan.md §8.1).
  const bool residual =
      shape_of("encoder.downsamples.0.downsamples.0.residual.0.gamma", "encoder.down_blocks.0.resnets.0.norm1.gamma") ||
      shape_of("decoder.upsamples.0.upsamples.0.residual.0.gamma", "decoder.up_blocks.0.upsampler.resample.1.weight");
  WanVAEConfig c = WanVAEConfig::preset(residual ? "wan2.2-vae" : "wan2.1-vae");
  const Shape* enc_in = shape_of("encoder.conv1.weight", "encoder.conv_in.weight");    // [base, 3p², 3, 3, 3]
  const Shape* dec_conv_out = shape_of("decoder.head.2.weight", "decoder.conv_out.weight");  // [3p², base, 3, 3, 3]
  const Shape* dec_out = shape_of("decoder.head.0.gamma", "decoder.norm_out.gamma");  // [base, 1, 1, 1]
  const Shape* post_quant = shape_of("conv2.weight", "post_quant_conv.weight");       // [z, z, 1, 1, 1]
  const Shape* quant = shape_of("conv1.weight", "quant_conv.weight");                 // [2z, 2z, 1, 1, 1]
  if (enc_in && enc_in->ndim() == 5) c.base_dim = narrow((*enc_in)[0]);
  c.decoder_base_dim = dec_out && dec_out->ndim() >= 1 ? narrow((*dec_out)[0]) : c.base_dim;
  if (!enc_in) c.base_dim = c.decoder_base_dim;
  if (post_quant && post_quant->ndim() == 5)
    c.z_dim = narrow((*post_quant)[0]);
  else if (quant && quant->ndim() == 5)
    c.z_dim = narrow((*quant)[0] / 2);
  if (residual && dec_out)
    c.num_res_blocks = count("decoder.upsamples.0.upsamples.{}.residual.0.gamma",
                             "decoder.up_blocks.0.resnets.{}.norm1.gamma") - 1;
  else if (residual)
    c.num_res_blocks = count("encoder.downsamples.0.downsamples.{}.residual.0.gamma",
                             "encoder.down_blocks.0.resnets.{}.norm1.gamma");
  else if (dec_out)
    c.num_res_blocks = count("decoder.upsamples.{}.residual.0.gamma", "decoder.up_blocks.0.resnets.{}.norm1.gamma") - 1;
  else
    c.num_res_blocks = count("encoder.downsamples.{}.residual.0.gamma", "encoder.down_blocks.{}.norm1.gamma");
  // The pixel channels after the patchify: 3 (Wan2.1) or 12 = 3 x 2 x 2 (Wan2.2).
  const int64_t pix = enc_in && enc_in->ndim() == 5     ? (*enc_in)[1]
                      : dec_conv_out && dec_conv_out->ndim() == 5 ? (*dec_conv_out)[0]
                                                                   : c.in_channels;
  c.in_channels = c.out_channels = narrow(pix);
  c.patch_size = pix == 12 ? 2 : pix == 3 ? 1 : -1;
  if (c.z_dim != static_cast<int>(c.latents_mean.size()))
    throw Error(kExitDataErr,
                fmt::format("{}: the VAE has z_dim {}; its latent mean/std are not known without a config",
                            store.description(), c.z_dim),
                "pass the VAE's config.json (the Wan2.1 VAE has 16 latent channels, the Wan2.2 VAE 48)");
  try {
    c.validate(store.description());
  } catch (const Error& e) {
    throw Error(kExitDataErr, fmt::format("cannot infer a Wan VAE config from the tensor shapes: {}", e.what()),
                "pass the VAE's config.json");
  }
  return c;
}

// ---- WanVAE --------------------------------------------------------------------------------

WanVAE WanVAE::bind(const WeightScope& root, const WanVAEConfig& cfg, WanVAEParts parts) {
  cfg.validate("VAE config");
  WanVAE vae;
  vae.config = cfg;
  vae.parts = parts;
  vae.dtype = root.source().dtype();
  if (parts.encoder) {
    vae.encoder.bind(root.pp("encoder"), cfg);
    vae.conv1.bind(root.pp("conv1"), 2 * cfg.z_dim, 2 * cfg.z_dim, {1, 1, 1}, {0, 0, 0});
  }
  if (parts.decoder) {
    vae.conv2.bind(root.pp("conv2"), cfg.z_dim, cfg.z_dim, {1, 1, 1}, {0, 0, 0});
    vae.decoder.bind(root.pp("decoder"), cfg);
  }
  return vae;
}

WanVAE WanVAE::load(const std::string& path, const WanVAEConfig& cfg, const WanVAELoadOptions& opts) {
  refuse_pickle(path);
  TensorStore store = TensorStore::open(path);
  return load(store, cfg, opts);
}

WanVAE WanVAE::load(const TensorStore& store, const WanVAEConfig& cfg, const WanVAELoadOptions& opts) {
  if (!opts.parts.encoder && !opts.parts.decoder)
    throw Error(kExitUsage, "WanVAE::load: neither the encoder nor the decoder was requested", "");
  cfg.validate("VAE config");
  std::string prefix;
  const WanVAELayout layout = detect_wan_vae_layout(store, &prefix);
  const bool diffusers = layout == WanVAELayout::Diffusers;
  CheckpointOptions co;
  co.device = opts.device;
  co.dtype = opts.dtype;
  co.strict = opts.strict;
  co.dry_run = opts.dry_run;
  co.delta = opts.delta;
  co.model = "Wan VAE";
  co.config = cfg.summary();
  co.hint = fmt::format(
      "the file is not the VAE the config describes (base_dim {}, z_dim {}, num_res_blocks {}); pass the Wan2.1 VAE "
      "or its diffusers vae/ folder with its config.json",
      cfg.base_dim, cfg.z_dim, cfg.num_res_blocks);
  // The half not requested (e.g. the encoder of a decode-only run) is not "unused".
  const WanVAEParts parts = opts.parts;
  co.unbound_on_purpose = [prefix, diffusers, parts](const std::string& file_key) {
    if (!starts_with(file_key, prefix)) return false;
    const std::string_view k = std::string_view(file_key).substr(prefix.size());
    if (!parts.encoder && (starts_with(k, "encoder.") || starts_with(k, diffusers ? "quant_conv." : "conv1.")))
      return true;
    return !parts.decoder && (starts_with(k, "decoder.") || starts_with(k, diffusers ? "post_quant_conv." : "conv2."));
  };
  WanVAE vae;
  const WeightReport report = bind_checkpoint(store, wan_vae_weight_layout(cfg, layout, prefix), co,
                                              [&](const WeightScope& root, CheckpointSource&) {
                                                vae = bind(root, cfg, opts.parts);
                                              });
  if (opts.report) *opts.report = report;
  return vae;
}

size_t WanVAE::decoder_cache_slots() const {
  T2V_ASSERT(parts.decoder, "the decoder was not loaded");
  CausalCache cache;
  // Count by running the decoder's slot walk on a 1x1 latent; cheap at any size.
  const Tensor z = to_compute(Tensor::zeros(Shape{1, config.z_dim, 1, 1, 1}, DType::F32));
  decoder.forward(z, &cache);
  cache.rewind();
  decoder.forward(z, &cache);
  return cache.size();
}

size_t WanVAE::encoder_cache_slots() const {
  T2V_ASSERT(parts.encoder, "the encoder was not loaded");
  CausalCache cache;
  const int64_t s = config.spatial_factor(), c = config.video_channels();
  encoder.forward(to_compute(Tensor::zeros(Shape{1, c, 1, s, s}, DType::F32)), &cache);
  cache.rewind();
  encoder.forward(to_compute(Tensor::zeros(Shape{1, c, 4, s, s}, DType::F32)), &cache);
  return cache.size();
}

void WanVAE::check_decode_input(const Tensor& mu) const {
  if (!parts.decoder)
    throw Error(kExitUsage, "VAE decode: the decoder was not loaded", "load the VAE with parts.decoder = true");
  if (mu.dim() != 5 || mu.size(1) != config.z_dim || mu.size(0) < 1 || mu.size(2) < 1 || mu.size(3) < 1 ||
      mu.size(4) < 1)
    throw Error(kExitDataErr,
                fmt::format("VAE decode: latent is {}, expected [B, {}, T, h, w]", mu.shape().str(), config.z_dim),
                "pass a 5-D latent with the VAE's z_dim channels");
}

Tensor WanVAE::to_compute(const Tensor& x) const {
  const Tensor& w = parts.decoder ? conv2.weight : conv1.weight;
  const Tensor on_device = x.to(w.device());
  return on_device.dtype() == dtype ? on_device : ops::cast(on_device, dtype);
}

Tensor WanVAE::finish_decode(const Tensor& y) const {
  return ops::clamp(vae_unpatchify(y, config.patch_size), -1.0f, 1.0f);
}

Tensor WanVAE::decode_whole_sequence(const Tensor& mu) const {
  check_decode_input(mu);
  Tensor x = conv2.forward(to_compute(mu), nullptr);
  return finish_decode(decoder.forward(x, nullptr));
}

WanVAEEncoding WanVAE::split_moments(const Tensor& h) const {
  const int64_t z = config.z_dim;
  return {ops::slice(h, 1, 0, z), ops::clamp(ops::slice(h, 1, z, 2 * z), -30.0f, 20.0f)};
}

namespace {

void check_encode_input(const Tensor& x, const WanVAEConfig& cfg, bool have_encoder) {
  if (!have_encoder)
    throw Error(kExitUsage, "VAE encode: the encoder was not loaded", "load the VAE with parts.encoder = true");
  const int64_t s = cfg.spatial_factor();
  if (x.dim() != 5 || x.size(1) != cfg.video_channels() || x.size(0) < 1 || x.size(2) < 1)
    throw Error(kExitDataErr,
                fmt::format("VAE encode: video is {}, expected [B, {}, F, H, W]", x.shape().str(), cfg.video_channels()),
                "pass frames as [B, 3, F, H, W] in [-1, 1]");
  if (x.size(3) < s || x.size(4) < s || x.size(3) % s != 0 || x.size(4) % s != 0)
    throw Error(kExitDataErr,
                fmt::format("VAE encode: frame size {}x{} (HxW) is not a positive multiple of {}", x.size(3),
                            x.size(4), s),
                fmt::format("crop or resize the frames to multiples of {}", s));
}

}  // namespace

WanVAEEncoding WanVAE::encode(const Tensor& x_in) const {
  check_encode_input(x_in, config, parts.encoder);
  const Tensor x = to_compute(x_in);
  const int64_t step = config.temporal_factor();
  const int64_t T = config.latent_frames(x.size(2));
  CausalCache cache;
  std::vector<Tensor> chunks;
  chunks.reserve(static_cast<size_t>(T));
  for (int64_t i = 0; i < T; ++i) {
    // Chunk 0 is frame 0; chunk i is frames [1 + 4(i-1), 1 + 4i).
    const int64_t begin = i == 0 ? 0 : 1 + step * (i - 1);
    const int64_t end = i == 0 ? 1 : 1 + step * i;
    cache.rewind();
    chunks.push_back(encoder.forward(ops::slice(x, 2, begin, end), &cache));
  }
  Tensor h = chunks.size() == 1 ? chunks[0] : ops::concat(chunks, 2);
  return split_moments(conv1.forward(h, nullptr));
}

WanVAEEncoding WanVAE::encode_whole_sequence(const Tensor& x_in) const {
  check_encode_input(x_in, config, parts.encoder);
  const Tensor x = to_compute(x_in);
  const int64_t used = config.pixel_frames(config.latent_frames(x.size(2)));
  Tensor frames = used == x.size(2) ? x : ops::slice(x, 2, 0, used);
  return split_moments(conv1.forward(encoder.forward(frames, nullptr), nullptr));
}

}  // namespace t2v
