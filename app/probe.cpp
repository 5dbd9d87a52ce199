#include "app/probe.h"

#include <filesystem>

#include <fmt/format.h>

#include "app/engine.h"
#include "app/probe_components.h"
#include "core/error.h"
#include "video_io/atomic_file.h"

namespace t2v {

int run_probe(const ProbeOptions& o) {
  // The device and the dtype as generate settles them (Error 69 / 64 before any file).
  const Engine engine(EngineOptions{.device = o.device, .dtype = o.dtype});
  const ProbeTarget target{engine.device(), engine.dtype()};
  std::error_code ec;
  for (const auto& [opt, path] : {std::pair{"--weights", o.weights}, std::pair{"--inputs", o.inputs}})
    if (!std::filesystem::exists(path, ec))
      throw Error(kExitNoInput, fmt::format("{} '{}' does not exist", opt, path), "check the path");
  // The output before any weights: an existing file only with --overwrite, never a link or
  // device (docs/bad_inputs.md #71).
  const std::filesystem::path out(o.out);
  check_output_writable(out.has_parent_path() ? out.parent_path().string() : ".");
  check_output_target(o.out, o.overwrite);
  if (o.component == "text-encoder") {
    probe_text_encoder(o.weights, o.config.empty() ? "umt5-xxl" : o.config, o.inputs, o.out, target);
  } else if (o.component == "dit") {
    probe_dit(o.weights, o.config, o.inputs, o.out, target);
  } else if (o.component == "vae-decode") {
    probe_vae_decode(o.weights, o.config, o.inputs, o.out, target);  // no config: beside the weights or from their shapes
  } else if (o.component == "vae-encode") {
    probe_vae_encode(o.weights, o.config, o.inputs, o.out, target);  // no config: as vae-decode
  } else if (o.component == "clip-vision") {
    probe_clip_vision(o.weights, o.config, o.inputs, o.out, target);
  } else {
    throw Error(kExitUsage, fmt::format("unknown probe component '{}'", o.component),
                "use text-encoder, dit, vae-decode, vae-encode or clip-vision");
  }
  return 0;
}

}  // namespace t2v
