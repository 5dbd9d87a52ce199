// Wan2.1 VAE: encoder/decoder assembly, weight binding for both checkpoint
// layouts, chunked encode and the whole-sequence reference decode. The streamed
// (and tiled) decode is in wan_vae_decode.cpp.
#include "vae/wan_vae.h"

#include <set>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "core/weights.h"
#include "kernels/ops.h"

namespace t2v {

namespace {

CausalSlot* slot_of(CausalCache* cache) { return cache ? &cache->next() : nullptr; }

std::string numbered(const char* name, int n) { return fmt::format("{}.{}", name, n); }

}  // namespace

// ---- encoder -------------------------------------------------------------------------

void WanVAEEncoder::bind(const VAEWeightFetch& fetch, const WanVAEConfig& cfg) {
  const VAEKey key{"encoder", "encoder"};
  // Stage widths: base_dim * [1, dim_mult...], e.g. 96, 96, 192, 384, 384.
  std::vector<int> dims{cfg.base_dim};
  for (int m : cfg.dim_mult) dims.push_back(cfg.base_dim * m);
  conv1.bind(fetch, key.child("conv1", "conv_in"), cfg.in_channels, dims[0], {3, 3, 3}, {1, 1, 1});

  // The original keeps one flat list `downsamples.{n}` over all stages (res blocks,
  // then the stage's downsample); diffusers' `down_blocks.{n}` uses the same n.
  int n = 0;
  const size_t n_stages = cfg.dim_mult.size();
  stages.assign(n_stages, {});
  for (size_t i = 0; i < n_stages; ++i) {
    int in_dim = dims[i];
    const int out_dim = dims[i + 1];
    for (int r = 0; r < cfg.num_res_blocks; ++r, ++n) {
      stages[i].res_blocks.emplace_back();
      stages[i].res_blocks.back().bind(fetch, key.child(numbered("downsamples", n), numbered("down_blocks", n)),
                                       in_dim, out_dim);
      in_dim = out_dim;
    }
    if (i + 1 < n_stages) {
      const ResampleMode mode = cfg.temperal_downsample[i] ? ResampleMode::Downsample3d : ResampleMode::Downsample2d;
      stages[i].resample.emplace();
      stages[i].resample->bind(fetch, key.child(numbered("downsamples", n), numbered("down_blocks", n)), out_dim,
                               mode);
      ++n;
    }
  }
  const int c = dims.back();
  middle_0.bind(fetch, key.child("middle.0", "mid_block.resnets.0"), c, c);
  middle_1.bind(fetch, key.child("middle.1", "mid_block.attentions.0"), c);
  middle_2.bind(fetch, key.child("middle.2", "mid_block.resnets.1"), c, c);
  head_0.bind(fetch, key.child("head.0", "norm_out"), c, /*images=*/false);
  head_2.bind(fetch, key.child("head.2", "conv_out"), c, 2 * cfg.z_dim, {3, 3, 3}, {1, 1, 1});
}

Tensor WanVAEEncoder::forward(const Tensor& x_in, CausalCache* cache) const {
  Tensor x = conv1.forward(x_in, slot_of(cache));  // [B, C0, F, H, W]
  for (const VAEStage& s : stages) x = s.forward(x, cache);
  x = middle_0.forward(x, cache);
  x = middle_1.forward(x);
  x = middle_2.forward(x, cache);
  x = ops::silu(head_0.forward(x));
  return head_2.forward(x, slot_of(cache));  // [B, 2z, T, H/8, W/8]
}

// ---- decoder -------------------------------------------------------------------------

void WanVAEDecoder::bind(const VAEWeightFetch& fetch, const WanVAEConfig& cfg) {
  const VAEKey key{"decoder", "decoder"};
  // Stage widths: base * [dim_mult[-1], reversed(dim_mult)...], e.g. 384, 384, 384, 192, 96.
  const int base = cfg.decoder_base_dim;
  std::vector<int> dims{base * cfg.dim_mult.back()};
  for (auto it = cfg.dim_mult.rbegin(); it != cfg.dim_mult.rend(); ++it) dims.push_back(base * *it);
  conv1.bind(fetch, key.child("conv1", "conv_in"), cfg.z_dim, dims[0], {3, 3, 3}, {1, 1, 1});
  middle_0.bind(fetch, key.child("middle.0", "mid_block.resnets.0"), dims[0], dims[0]);
  middle_1.bind(fetch, key.child("middle.1", "mid_block.attentions.0"), dims[0]);
  middle_2.bind(fetch, key.child("middle.2", "mid_block.resnets.1"), dims[0], dims[0]);

  // Original: flat `upsamples.{n}`; diffusers: `up_blocks.{i}.resnets.{r}` and
  // `up_blocks.{i}.upsamplers.0`. Each stage has num_res_blocks + 1 res blocks.
  const std::vector<bool> temporal = cfg.temperal_upsample();
  const size_t n_stages = cfg.dim_mult.size();
  stages.assign(n_stages, {});
  int n = 0;
  for (size_t i = 0; i < n_stages; ++i) {
    // After an upsample the conv has halved the channels: the next stage takes dims[i] / 2 in.
    int in_dim = i == 0 ? dims[0] : dims[i] / 2;
    const int out_dim = dims[i + 1];
    const std::string block = fmt::format("up_blocks.{}", i);
    for (int r = 0; r <= cfg.num_res_blocks; ++r, ++n) {
      stages[i].res_blocks.emplace_back();
      stages[i].res_blocks.back().bind(fetch, key.child(numbered("upsamples", n), fmt::format("{}.resnets.{}", block, r)),
                                       in_dim, out_dim);
      in_dim = out_dim;
    }
    if (i + 1 < n_stages) {
      const ResampleMode mode = temporal[i] ? ResampleMode::Upsample3d : ResampleMode::Upsample2d;
      stages[i].resample.emplace();
      stages[i].resample->bind(fetch, key.child(numbered("upsamples", n), block + ".upsamplers.0"), out_dim, mode);
      ++n;
    }
  }
  const int c = dims.back();
  head_0.bind(fetch, key.child("head.0", "norm_out"), c, /*images=*/false);
  head_2.bind(fetch, key.child("head.2", "conv_out"), c, cfg.out_channels, {3, 3, 3}, {1, 1, 1});
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

std::vector<WanVAEKeyEntry> wan_vae_key_table(const WanVAEConfig& cfg, WanVAEParts parts) {
  std::vector<WanVAEKeyEntry> table;
  WanVAE::bind(
      cfg,
      [&](const VAEKey& key, const Shape& shape) {
        table.push_back({key.original, key.diffusers, shape});
        return Tensor();
      },
      parts);
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

WanVAEConfig detect_wan_vae_config(const TensorStore& store) {
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
  WanVAEConfig c = WanVAEConfig::preset("wan2.1-vae");
  const Shape* enc_in = shape_of("encoder.conv1.weight", "encoder.conv_in.weight");    // [base, 3, 3, 3, 3]
  const Shape* dec_out = shape_of("decoder.head.0.gamma", "decoder.norm_out.gamma");  // [base, 1, 1, 1]
  const Shape* post_quant = shape_of("conv2.weight", "post_quant_conv.weight");       // [z, z, 1, 1, 1]
  const Shape* quant = shape_of("conv1.weight", "quant_conv.weight");                 // [2z, 2z, 1, 1, 1]
  if (enc_in && enc_in->ndim() == 5) c.base_dim = static_cast<int>((*enc_in)[0]);
  c.decoder_base_dim = dec_out && dec_out->ndim() >= 1 ? static_cast<int>((*dec_out)[0]) : c.base_dim;
  if (!enc_in) c.base_dim = c.decoder_base_dim;
  if (post_quant && post_quant->ndim() == 5)
    c.z_dim = static_cast<int>((*post_quant)[0]);
  else if (quant && quant->ndim() == 5)
    c.z_dim = static_cast<int>((*quant)[0] / 2);
  if (dec_out)
    c.num_res_blocks = count("decoder.upsamples.{}.residual.0.gamma", "decoder.up_blocks.0.resnets.{}.norm1.gamma") - 1;
  else
    c.num_res_blocks = count("encoder.downsamples.{}.residual.0.gamma", "encoder.down_blocks.{}.norm1.gamma");
  if (c.z_dim != static_cast<int>(c.latents_mean.size()))
    throw Error(kExitDataErr,
                fmt::format("{}: the VAE has z_dim {}; its latent mean/std are not known without a config",
                            store.description(), c.z_dim),
                "pass the VAE's config.json (Wan2.2's VAE, z_dim 48, is not supported)");
  try {
    c.validate(store.description());
  } catch (const Error& e) {
    throw Error(kExitDataErr, fmt::format("cannot infer a Wan VAE config from the tensor shapes: {}", e.what()),
                "pass the VAE's config.json");
  }
  return c;
}

namespace {

std::string list_first(const std::vector<std::string>& items, size_t n) {
  std::string s;
  for (size_t i = 0; i < items.size() && i < n; ++i) s += (i ? ", " : "") + items[i];
  if (items.size() > n) s += fmt::format(", ... ({} more)", items.size() - n);
  return s;
}

// The file key of a table entry in `layout`.
std::string file_key(const WanVAEKeyEntry& e, WanVAELayout layout, const std::string& prefix) {
  return prefix + (layout == WanVAELayout::Diffusers ? e.diffusers : e.original);
}

}  // namespace

void check_wan_vae_weights(const TensorStore& store, const WanVAEConfig& cfg, WanVAEParts parts) {
  std::string prefix;
  const WanVAELayout layout = detect_wan_vae_layout(store, &prefix);
  std::vector<std::string> missing, misshaped;
  for (const WanVAEKeyEntry& e : wan_vae_key_table(cfg, parts)) {
    const std::string fk = file_key(e, layout, prefix);
    if (!store.contains(fk)) {
      missing.push_back(fk);
      continue;
    }
    const TensorInfo& info = store.info(fk);
    if (info.shape != e.shape)
      misshaped.push_back(fmt::format("{} is {}, config expects {}", fk, info.shape.str(), e.shape.str()));
    else if (!dtype_is_float(info.dtype))
      misshaped.push_back(fmt::format("{} has dtype {}, expected F32/F16/BF16", fk, dtype_name(info.dtype)));
  }
  if (missing.empty() && misshaped.empty()) return;
  std::string msg;
  if (!missing.empty())
    msg = fmt::format("missing {} tensor{} for layout '{}': {}", missing.size(), missing.size() == 1 ? "" : "s",
                      wan_vae_layout_name(layout), list_first(missing, 8));
  if (!misshaped.empty())
    msg += fmt::format("{}{} tensor{} with the wrong shape for layout '{}': {}", msg.empty() ? "" : "; ",
                       misshaped.size(), misshaped.size() == 1 ? "" : "s", wan_vae_layout_name(layout),
                       list_first(misshaped, 4));
  throw Error(kExitDataErr, fmt::format("{}: {}", store.description(), msg),
              fmt::format("the file is not the VAE the config describes (base_dim {}, z_dim {}, num_res_blocks {}); "
                          "pass the Wan2.1 VAE or its diffusers vae/ folder with its config.json",
                          cfg.base_dim, cfg.z_dim, cfg.num_res_blocks));
}

// ---- WanVAE --------------------------------------------------------------------------------

WanVAE WanVAE::bind(const WanVAEConfig& cfg, const VAEWeightFetch& fetch, WanVAEParts parts) {
  cfg.validate("VAE config");
  WanVAE vae;
  vae.config = cfg;
  vae.parts = parts;
  const VAEKey root{"", ""};
  if (parts.encoder) {
    vae.encoder.bind(fetch, cfg);
    vae.conv1.bind(fetch, root.child("conv1", "quant_conv"), 2 * cfg.z_dim, 2 * cfg.z_dim, {1, 1, 1}, {0, 0, 0});
  }
  if (parts.decoder) {
    vae.conv2.bind(fetch, root.child("conv2", "post_quant_conv"), cfg.z_dim, cfg.z_dim, {1, 1, 1}, {0, 0, 0});
    vae.decoder.bind(fetch, cfg);
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
  // Names and shapes first: one error lists everything that does not fit.
  check_wan_vae_weights(store, cfg, opts.parts);
  std::string prefix;
  const WanVAELayout layout = detect_wan_vae_layout(store, &prefix);

  std::unordered_map<std::string, std::string> to_diffusers;
  for (const WanVAEKeyEntry& e : wan_vae_key_table(cfg)) to_diffusers.emplace(e.original, e.diffusers);

  WeightLoaderOptions lo;
  lo.device = opts.device;
  lo.dtype = opts.dtype;
  lo.layout = wan_vae_layout_name(layout);
  lo.strip_prefix = prefix;
  if (layout == WanVAELayout::Diffusers)
    lo.rename = [to_diffusers](const std::string& k) {
      auto it = to_diffusers.find(k);
      return it == to_diffusers.end() ? k : it->second;
    };
  WeightLoader loader(store, lo);
  WanVAE vae = bind(
      cfg,
      [&](const VAEKey& key, const Shape& shape) {
        Tensor t = loader.get(key.original, shape);
        if (!t.defined()) loader.finish();  // raises with the recorded problem
        return t;
      },
      opts.parts);

  // Tensors outside the full table are worth a warning; the half not requested
  // (e.g. the encoder of a decode-only run) is not.
  std::set<std::string> known;
  for (const WanVAEKeyEntry& e : wan_vae_key_table(cfg)) known.insert(file_key(e, layout, prefix));
  std::vector<std::string> unexpected;
  for (const std::string& k : store.names())
    if (!known.count(k)) unexpected.push_back(k);
  if (!unexpected.empty())
    spdlog::warn("{}: {} unexpected tensor{} for a Wan VAE (layout '{}'): {}", store.description(), unexpected.size(),
                 unexpected.size() == 1 ? "" : "s", wan_vae_layout_name(layout), list_first(unexpected, 8));
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
  const int64_t s = config.spatial_factor();
  encoder.forward(to_compute(Tensor::zeros(Shape{1, config.in_channels, 1, s, s}, DType::F32)), &cache);
  cache.rewind();
  encoder.forward(to_compute(Tensor::zeros(Shape{1, config.in_channels, 4, s, s}, DType::F32)), &cache);
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
  return x.to(w.dtype()).to(w.device());  // convert on the host side: Tensor::to(DType) is CPU-only
}

Tensor WanVAE::decode_whole_sequence(const Tensor& mu) const {
  check_decode_input(mu);
  Tensor x = conv2.forward(to_compute(mu), nullptr);
  return ops::clamp(decoder.forward(x, nullptr), -1.0f, 1.0f);
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
  if (x.dim() != 5 || x.size(1) != cfg.in_channels || x.size(0) < 1 || x.size(2) < 1)
    throw Error(kExitDataErr,
                fmt::format("VAE encode: video is {}, expected [B, {}, F, H, W]", x.shape().str(), cfg.in_channels),
                "pass frames as [B, 3, F, H, W] in [-1, 1]");
  if (x.size(3) < s || x.size(4) < s || x.size(3) % s != 0 || x.size(4) % s != 0)
    throw Error(kExitDataErr,
                fmt::format("VAE encode: frame size {}x{} (HxW) is not a positive multiple of {}", x.size(3),
                            x.size(4), s),
                "crop or resize the frames to multiples of 8");
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
