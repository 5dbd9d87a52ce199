// The model components of `t2v probe` (probe_components.h): load, run on the
// named inputs, write the outputs as F32.
#include "app/probe_components.h"

#include <algorithm>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "core/error.h"
#include "core/safetensors.h"
#include "diffusion/wan_dit.h"
#include "image_encoder/clip_vision.h"
#include "text_encoder/umt5.h"
#include "vae/wan_vae.h"

namespace t2v {

namespace {

// A result on the host in F32 (a device result in the compute dtype is brought back first).
Tensor host_f32(const Tensor& t) { return t.to(Device::CPU).to(DType::F32); }

// ---- text encoder -----------------------------------------------------------------

Tensor read_ids(const SafetensorsFile& in, const std::string& inputs, const char* name, bool required) {
  const TensorInfo* info = in.find(name);
  if (!info) {
    if (required)
      throw Error(kExitDataErr, fmt::format("probe inputs '{}' lack tensor '{}'", inputs, name),
                  "write input_ids (I64 [B, L]) and attention_mask (I64 [B, L])");
    return {};
  }
  if (info->shape.ndim() != 2)
    fail(kExitDataErr, "probe inputs '{}': '{}' is {}, expected [B, L]", inputs, name, info->shape.str());
  if (info->dtype != DType::I64 && info->dtype != DType::I32)
    fail(kExitDataErr, "probe inputs '{}': '{}' is {}, expected I64", inputs, name, dtype_name(info->dtype));
  return in.get(name).to(DType::I64);
}

// ---- DiT ------------------------------------------------------------------------------

// ndim_max > ndim: either rank (the timestep: [B], or [B, N] per token for Wan2.2 TI2V).
Tensor dit_input(const SafetensorsFile& f, const char* name, int ndim, int ndim_max = 0) {
  if (!f.find(name))
    throw Error(kExitDataErr, fmt::format("{}: input tensor '{}' is missing", f.path(), name),
                "the dit probe reads hidden_states, timestep and encoder_hidden_states");
  Tensor t = f.get(name);
  const int hi = std::max(ndim, ndim_max);
  if (t.dim() < ndim || t.dim() > hi || !dtype_is_float(t.dtype()))
    throw Error(kExitDataErr, fmt::format("{}: input '{}' is {}, expected a {} float tensor", f.path(), name, t.str(),
                                          hi == ndim ? fmt::format("{}-D", ndim) : fmt::format("{}-D or {}-D", ndim, hi)));
  return t.to(DType::F32);
}

// ---- VAE ------------------------------------------------------------------------------

Tensor vae_input(const TensorStore& inputs, const std::string& name, const std::string& path) {
  if (!inputs.contains(name))
    throw Error(kExitDataErr, fmt::format("{}: no input tensor '{}'", path, name),
                fmt::format("write the input as '{}' (F32)", name));
  return inputs.get(name).to(DType::F32);
}

WanVAE load_vae(const std::string& weights, const std::string& config, const ProbeTarget& target, bool encoder) {
  WanVAELoadOptions opts;
  opts.device = target.device;
  opts.dtype = target.dtype;
  opts.parts.encoder = encoder;
  opts.parts.decoder = !encoder;
  return WanVAE::load(weights, WanVAEConfig::resolve(config, weights), opts);
}

}  // namespace

void probe_text_encoder(const std::string& weights, const std::string& config, const std::string& inputs,
                        const std::string& out, const ProbeTarget& target) {
  // "auto" reads the sizes off the weights; anything else as UMT5Config::resolve.
  const UMT5Config cfg = config == "auto" ? UMT5Config::from_weights(TensorStore::open(weights))
                                          : UMT5Config::resolve(config, weights);
  const SafetensorsFile in(inputs);
  const Tensor ids = read_ids(in, inputs, "input_ids", true);
  const Tensor mask = read_ids(in, inputs, "attention_mask", false);
  UMT5LoadOptions lo;
  lo.device = target.device;
  lo.dtype = target.dtype;
  const UMT5Encoder enc = UMT5Encoder::load(TensorStore::open(weights), cfg, lo);
  save_safetensors(out, {{"last_hidden_state", host_f32(enc.forward(ids, mask))}});
}

void probe_dit(const std::string& weights, const std::string& config, const std::string& inputs,
               const std::string& out, const ProbeTarget& target, bool dump_intermediates) {
  refuse_pickle(weights);
  const TensorStore store = TensorStore::open(weights);
  const WanDiTConfig cfg = WanDiTConfig::resolve(config, weights, &store);
  WanDiTLoadOptions lo;
  lo.device = target.device;
  lo.dtype = target.dtype;
  const WanDiT model(cfg, load_wan_dit(store, cfg, lo));

  const SafetensorsFile in(inputs);
  const Tensor x = dit_input(in, "hidden_states", 5).to(target.device);
  const Tensor t = dit_input(in, "timestep", 1, 2);
  const Tensor ctx = dit_input(in, "encoder_hidden_states", 3).to(target.device);
  // Image-to-video models: the CLIP features (diffusers' name for them).
  const Tensor img =
      cfg.image_to_video() ? dit_input(in, "encoder_hidden_states_image", 3).to(target.device) : Tensor();

  std::vector<std::pair<std::string, Tensor>> outputs;
  DumpHook dump;
  if (dump_intermediates)
    dump = [&](const std::string& name, const Tensor& v) {
      if (name != "sample") outputs.emplace_back(name, host_f32(v).clone());
    };
  const Tensor sample = host_f32(model.forward(x, t, ctx, img, dump));
  outputs.insert(outputs.begin(), {"sample", sample});
  save_safetensors(out, outputs, {{"component", "dit"}, {"config", cfg.summary()}});
}

void probe_vae_decode(const std::string& weights, const std::string& config, const std::string& inputs,
                      const std::string& out, const ProbeTarget& target) {
  const WanVAE vae = load_vae(weights, config, target, /*encoder=*/false);
  const TensorStore in = TensorStore::open(inputs);
  const Tensor latents = vae_input(in, "latents", inputs).to(target.device);
  save_safetensors(out, {{"sample", host_f32(vae.decode(latents))}});
}

void probe_vae_encode(const std::string& weights, const std::string& config, const std::string& inputs,
                      const std::string& out, const ProbeTarget& target) {
  const WanVAE vae = load_vae(weights, config, target, /*encoder=*/true);
  const TensorStore in = TensorStore::open(inputs);
  const Tensor sample = vae_input(in, "sample", inputs).to(target.device);
  const WanVAEEncoding enc = vae.encode(sample);
  save_safetensors(out, {{"latent_mean", host_f32(enc.mean)}, {"latent_logvar", host_f32(enc.logvar)}});
}

void probe_clip_vision(const std::string& weights, const std::string& config, const std::string& inputs,
                       const std::string& out, const ProbeTarget& target) {
  const TensorStore store = TensorStore::open(weights);
  const ClipVisionConfig cfg = ClipVisionConfig::resolve(config, weights, &store);
  ClipVisionLoadOptions lo;
  lo.device = target.device;
  lo.dtype = target.dtype;
  const ClipVisionEncoder enc = ClipVisionEncoder::load(store, cfg, lo);
  const SafetensorsFile in(inputs);
  Tensor pixels;
  if (in.find("pixel_values")) {
    pixels = in.get("pixel_values").to(DType::F32).clone();
  } else if (in.find("image")) {
    pixels = clip_vision_preprocess(in.get("image").to(DType::F32).clone(), cfg);
  } else {
    throw Error(kExitDataErr, fmt::format("{}: no tensor named 'pixel_values' or 'image'", inputs),
                "save the preprocessed input as 'pixel_values', or images in [-1, 1] as 'image'");
  }
  save_safetensors(out, {{"hidden_states", host_f32(enc.forward(pixels))}, {"pixel_values", pixels}},
                   {{"component", "clip-vision"}, {"config", cfg.summary()}});
}

}  // namespace t2v
