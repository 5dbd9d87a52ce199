// `t2v probe dit` (docs/conventions.md §7): one DiT forward on named input
// tensors, for golden comparisons against diffusers.
#pragma once

#include <string>

#include "core/tensor.h"

namespace t2v {

// weights: a .safetensors file, an index json or a diffusers folder (any Wan DiT
// layout). config: a preset name, a config.json, or empty (detect: config.json
// beside the weights, else from tensor shapes). inputs: a .safetensors with
// `hidden_states` F32 [B, C, T, H, W], `timestep` F32 [B], `encoder_hidden_states`
// F32 [B, L, D]. Writes `sample` F32 [B, C, T, H, W] to `out`; with
// `dump_intermediates` also every named intermediate (see wan_dit.h).
void probe_dit(const std::string& weights, const std::string& config, const std::string& inputs,
               const std::string& out, Device device, bool dump_intermediates = false);

}  // namespace t2v
