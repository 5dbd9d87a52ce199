// Generation defaults a model folder carries in `t2v.json` (the shipped default
// model is 64x64, 17 frames, 8 fps, ...): applied to every setting the user did
// not give on the command line.
#pragma once

#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/options.h"

namespace t2v {

// The folder whose t2v.json applies: --model, or the default model when no
// model part is given; empty when none.
std::string model_defaults_folder(const GenerateOptions& o);

// Reads <folder>/t2v.json when present and sets the fields not named in `given`
// (option names without dashes: size, frames, fps, steps, cfg, shift, sampler,
// timesteps, lora, negative-prompt) and o.teacache_coefficients from "teacache". "loras"
// name files relative to the folder.
// Then the sampler rules (apply_sampler_rules). Returns the names applied. A
// malformed file is Error(78) naming the file and key.
std::set<std::string> apply_model_defaults(GenerateOptions& o, const std::string& folder,
                                           const std::set<std::string>& given);

// The rules between the sampler settings, once it is known where each came from
// (`given`: the command line or a batch line; `applied`: t2v.json):
//   distill with a given steps count: Error(64) (the steps are the --timesteps);
//   --timesteps given for another sampler: Error(64);
//   t2v.json timesteps when another sampler was chosen: dropped;
//   distill and cfg not given: cfg 1 (one forward per step), unless the same
//   t2v.json chose both the distill sampler and its cfg.
void apply_sampler_rules(GenerateOptions& o, const std::set<std::string>& given, const std::set<std::string>& applied);

// The "teacache" entry of a t2v.json ({"coefficients": [5 numbers], "calibration": ...}):
// its coefficients, highest power first. Error(78) naming `where` when malformed.
std::vector<double> teacache_coefficients_from_json(const nlohmann::json& v, const std::string& where);

}  // namespace t2v
