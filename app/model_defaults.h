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
// negative-prompt) and o.teacache_coefficients from "teacache". Returns the names applied. A malformed file is Error(78)
// naming the file and key.
std::set<std::string> apply_model_defaults(GenerateOptions& o, const std::string& folder,
                                           const std::set<std::string>& given);

// The "teacache" entry of a t2v.json ({"coefficients": [5 numbers], "calibration": ...}):
// its coefficients, highest power first. Error(78) naming `where` when malformed.
std::vector<double> teacache_coefficients_from_json(const nlohmann::json& v, const std::string& where);

}  // namespace t2v
