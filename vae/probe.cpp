#include "vae/probe.h"

#include "core/safetensors.h"
#include "vae/wan_vae.h"

namespace t2v {

namespace {

Tensor read_input(const TensorStore& inputs, const std::string& name, const std::string& path) {
  if (!inputs.contains(name))
    throw Error(kExitDataErr, fmt::format("{}: no input tensor '{}'", path, name),
                fmt::format("write the input as '{}' (F32)", name));
  return inputs.get(name).to(DType::F32);
}

WanVAE load_for_probe(const std::string& weights, const std::string& config, Device device, bool encoder) {
  WanVAELoadOptions opts;
  opts.device = device;
  opts.parts.encoder = encoder;
  opts.parts.decoder = !encoder;
  return WanVAE::load(weights, WanVAEConfig::resolve(config, weights), opts);
}

}  // namespace

void probe_vae_decode(const std::string& weights, const std::string& config, const std::string& inputs,
                      const std::string& out, Device device) {
  const WanVAE vae = load_for_probe(weights, config, device, /*encoder=*/false);
  const TensorStore in = TensorStore::open(inputs);
  Tensor latents = read_input(in, "latents", inputs).to(device);
  Tensor sample = vae.decode(latents);
  save_safetensors(out, {{"sample", sample.to(Device::CPU)}});
}

void probe_vae_encode(const std::string& weights, const std::string& config, const std::string& inputs,
                      const std::string& out, Device device) {
  const WanVAE vae = load_for_probe(weights, config, device, /*encoder=*/true);
  const TensorStore in = TensorStore::open(inputs);
  Tensor sample = read_input(in, "sample", inputs).to(device);
  WanVAEEncoding enc = vae.encode(sample);
  save_safetensors(out, {{"latent_mean", enc.mean.to(Device::CPU)}, {"latent_logvar", enc.logvar.to(Device::CPU)}});
}

}  // namespace t2v
