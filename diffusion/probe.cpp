// The DiT probe: load, run one forward, write the output (see probe.h).
#include "diffusion/probe.h"

#include <utility>
#include <vector>

#include <fmt/format.h>

#include "core/error.h"
#include "core/safetensors.h"
#include "diffusion/wan_dit.h"

namespace t2v {

namespace {

Tensor input(const SafetensorsFile& f, const char* name, int ndim) {
  if (!f.find(name))
    throw Error(kExitDataErr, fmt::format("{}: input tensor '{}' is missing", f.path(), name),
                "the dit probe reads hidden_states, timestep and encoder_hidden_states");
  Tensor t = f.get(name);
  if (t.dim() != ndim || !dtype_is_float(t.dtype()))
    throw Error(kExitDataErr, fmt::format("{}: input '{}' is {}, expected a {}-D float tensor", f.path(), name,
                                          t.str(), ndim));
  return t.to(DType::F32);
}

}  // namespace

void probe_dit(const std::string& weights, const std::string& config, const std::string& inputs,
               const std::string& out, Device device, bool dump_intermediates) {
  refuse_pickle(weights);
  const TensorStore store = TensorStore::open(weights);
  const WanDiTConfig cfg = WanDiTConfig::resolve(config, weights, &store);
  WanDiTLoadOptions lo;
  lo.device = device;
  const WanDiT model(cfg, load_wan_dit(store, cfg, lo));

  const SafetensorsFile in(inputs);
  const Tensor x = input(in, "hidden_states", 5).to(device);
  const Tensor t = input(in, "timestep", 1);
  const Tensor ctx = input(in, "encoder_hidden_states", 3).to(device);
  // Image-to-video models: the CLIP features (diffusers' name for them).
  const Tensor img = cfg.image_to_video() ? input(in, "encoder_hidden_states_image", 3).to(device) : Tensor();

  std::vector<std::pair<std::string, Tensor>> outputs;
  DumpHook dump;
  if (dump_intermediates)
    dump = [&](const std::string& name, const Tensor& v) {
      if (name != "sample") outputs.emplace_back(name, v.to(Device::CPU).clone());
    };
  Tensor sample = model.forward(x, t, ctx, img, dump).to(Device::CPU);
  outputs.insert(outputs.begin(), {"sample", sample});
  save_safetensors(out, outputs, {{"component", "dit"}, {"config", cfg.summary()}});
}

}  // namespace t2v
