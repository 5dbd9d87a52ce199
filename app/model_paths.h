// Where each part of a model lives. Users point --model at a diffusers folder
// (model_index.json, transformer/, text_encoder/, vae/, tokenizer/, scheduler/)
// or at a folder of single files as ComfyUI keeps them; --dit/--t5/--vae/
// --tokenizer override single parts.
#pragma once

#include <optional>
#include <string>

#include "app/options.h"

namespace t2v {

struct ModelPaths {
  std::string name;            // for metadata: the folder or file name
  std::string dit, dit_config;  // weights (file/folder/index) and config.json ("" = detect from shapes)
  // Wan2.2 A14B: the low-noise expert (diffusers transformer_2/, --dit-low); `dit` is then the
  // high-noise expert. boundary_ratio from model_index.json when it has one.
  std::string dit_low, dit_low_config;
  std::optional<double> boundary_ratio;
  std::string pipeline_class;  // model_index.json's _class_name ("WanPipeline", "WanImageToVideoPipeline")
  std::string t5, t5_config;    // config "" = preset umt5-xxl
  std::string vae, vae_config;  // config "" = preset wan2.1-vae
  std::string tokenizer;        // folder, spiece.model, or the umT5 .safetensors with `spiece_model`
  std::string clip, clip_config;  // CLIP image encoder of image-to-video models ("" for text-to-video)
  std::string scheduler_config; // diffusers scheduler_config.json, if any
  bool any() const { return !dit.empty() || !t5.empty() || !vae.empty(); }
  bool complete() const { return !dit.empty() && !t5.empty() && !vae.empty() && !tokenizer.empty(); }
};

// The model the repository ships (models/<name>), if it is present next to the
// program's source tree or installed; "" when there is none.
std::string default_model_folder();

// Resolves the options into paths. Throws Error(66) naming what is missing
// ("no text encoder in folder X: expected text_encoder/ or a umt5 .safetensors").
// Pickle files are refused (Error 65) with conversion instructions.
ModelPaths resolve_model_paths(const GenerateOptions& o);

}  // namespace t2v
