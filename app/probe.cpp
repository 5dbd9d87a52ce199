#include "app/probe.h"

#include <filesystem>

#include <fmt/format.h>

#include "app/engine.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "image_encoder/clip_vision.h"
#include "diffusion/probe.h"
#include "text_encoder/probe.h"
#include "vae/probe.h"

namespace t2v {

namespace {

// clip-vision: `pixel_values` [B, 3, S, S] (preprocessed) or `image` [B, 3, H, W] in [-1, 1]
// (preprocessed here as Wan does) -> `hidden_states` [B, N, D] of the second-to-last block.
void probe_clip_vision(const ProbeOptions& o, Device dev) {
  const TensorStore store = TensorStore::open(o.weights);
  const ClipVisionConfig cfg = ClipVisionConfig::resolve(o.config, o.weights, &store);
  ClipVisionLoadOptions lo;
  lo.device = dev;
  const ClipVisionEncoder enc = ClipVisionEncoder::load(store, cfg, lo);
  const SafetensorsFile in(o.inputs);
  Tensor pixels;
  if (in.find("pixel_values")) {
    pixels = in.get("pixel_values").to(DType::F32).clone();
  } else if (in.find("image")) {
    pixels = clip_vision_preprocess(in.get("image").to(DType::F32).clone(), cfg);
  } else {
    throw Error(kExitDataErr, fmt::format("{}: no tensor named 'pixel_values' or 'image'", o.inputs),
                "save the preprocessed input as 'pixel_values', or images in [-1, 1] as 'image'");
  }
  const Tensor h = enc.forward(pixels).to(Device::CPU);
  save_safetensors(o.out, {{"hidden_states", h}, {"pixel_values", pixels}},
                   {{"component", "clip-vision"}, {"config", cfg.summary()}});
}

}  // namespace

int run_probe(const ProbeOptions& o) {
  const Engine engine(EngineOptions{.device = o.device});
  const Device dev = engine.device();
  std::error_code ec;
  for (const auto& [opt, path] : {std::pair{"--weights", o.weights}, std::pair{"--inputs", o.inputs}})
    if (!std::filesystem::exists(path, ec))
      throw Error(kExitNoInput, fmt::format("{} '{}' does not exist", opt, path), "check the path");
  if (o.component == "text-encoder") {
    probe_text_encoder(o.weights, o.config.empty() ? "umt5-xxl" : o.config, o.inputs, o.out, dev);
  } else if (o.component == "dit") {
    probe_dit(o.weights, o.config, o.inputs, o.out, dev);
  } else if (o.component == "vae-decode") {
    probe_vae_decode(o.weights, o.config.empty() ? "wan2.1-vae" : o.config, o.inputs, o.out, dev);
  } else if (o.component == "clip-vision") {
    probe_clip_vision(o, dev);
  } else if (o.component == "vae-encode") {
    probe_vae_encode(o.weights, o.config.empty() ? "wan2.1-vae" : o.config, o.inputs, o.out, dev);
  } else {
    throw Error(kExitUsage, fmt::format("unknown probe component '{}'", o.component),
                "use text-encoder, dit, vae-decode, vae-encode or clip-vision");
  }
  return 0;
}

}  // namespace t2v
