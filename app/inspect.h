// `t2v inspect`: what is in a checkpoint file or folder, and what t2v makes of it.
#pragma once

#include <optional>
#include <string>

#include "core/safetensors.h"

namespace t2v {

struct DetectedModel {
  std::string family;  // "wan-dit", "wan-vae", "umt5-encoder", "lora", or "unknown"
  std::string layout;  // "original", "comfy", "diffusers", "transformers", "llama.cpp GGUF", ...
  std::string prefix;  // key prefix to strip (e.g. "model.diffusion_model.")
};

// Detects which model a tensor set holds from its key names.
DetectedModel detect_model(const TensorStore& store);

// The model block `t2v inspect` prints for a Wan DiT checkpoint: layout, preset,
// dims (heads "unknown (needs config.json)" where shapes cannot tell), parameter
// count and dtypes; nullopt when the store is not a Wan DiT. Error(65) when a
// tensor that sets the model size is missing.
std::optional<std::string> describe_wan_dit(const TensorStore& store);

struct InspectOptions {
  bool all = false;   // list every tensor (default: the first 40)
  bool json = false;  // machine-readable output
  // For a LoRA: the model (folder) or DiT (file or folder) to check it against,
  // shapes read from the headers. Without either, only its names are matched.
  std::string model, dit;
};

// Prints the report to stdout; returns the exit code.
int run_inspect(const std::string& path, const InspectOptions& opts);

}  // namespace t2v
