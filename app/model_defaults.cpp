#include "app/model_defaults.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/model_paths.h"
#include "core/error.h"

namespace t2v {

namespace fs = std::filesystem;

std::vector<double> teacache_coefficients_from_json(const nlohmann::json& v, const std::string& where) {
  auto bad = [&](const std::string& what) {
    return Error(kExitConfig, fmt::format("'{}': \"teacache\" {}", where, what),
                 "run `t2v calibrate-cache --model FOLDER --write` to write it again, or delete the key");
  };
  if (!v.is_object()) throw bad("must be an object {\"coefficients\": [5 numbers], ...}");
  std::vector<double> c;
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (it.key() == "coefficients") {
      if (!it.value().is_array() || it.value().size() != 5) throw bad("\"coefficients\" must be an array of 5 numbers");
      for (const auto& x : it.value()) {
        if (!x.is_number() || !std::isfinite(x.get<double>()))
          throw bad("\"coefficients\" must be an array of 5 finite numbers");
        c.push_back(x.get<double>());
      }
    } else if (it.key() != "calibration") {  // "calibration": how the fit was made (free-form)
      throw bad(fmt::format("has an unknown key \"{}\" (known: coefficients, calibration)", it.key()));
    }
  }
  if (c.empty()) throw bad("has no \"coefficients\"");
  return c;
}

std::string model_defaults_folder(const GenerateOptions& o) {
  if (!o.model.empty()) return o.model;
  if (o.dit.empty() && o.t5.empty() && o.vae.empty()) return default_model_folder();
  return "";
}

std::set<std::string> apply_model_defaults(GenerateOptions& o, const std::string& folder,
                                           const std::set<std::string>& given) {
  std::set<std::string> applied;
  if (folder.empty()) return applied;
  const fs::path path = fs::path(folder) / "t2v.json";
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return applied;
  const std::string where = path.string();
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object())
    throw Error(kExitConfig, fmt::format("'{}' is not a JSON object", where), "fix or delete the file");
  auto bad = [&](const std::string& key, const char* want) {
    return Error(kExitConfig, fmt::format("'{}': \"{}\" must be {}", where, key, want), "fix the value or delete the key");
  };
  auto want_int = [&](const std::string& key) {
    const auto& v = j[key];
    if (!v.is_number_integer() || v.get<int64_t>() <= 0 || v.get<int64_t>() > 1000000) throw bad(key, "a positive integer");
    return v.get<int>();
  };
  auto want_num = [&](const std::string& key) {
    const auto& v = j[key];
    if (!v.is_number()) throw bad(key, "a number");
    return v.get<double>();
  };
  auto want_str = [&](const std::string& key) {
    const auto& v = j[key];
    if (!v.is_string()) throw bad(key, "a string");
    return v.get<std::string>();
  };
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    if (key == "width" || key == "height") {
      int v = want_int(key);
      if (!given.count("size")) (key == "width" ? o.width : o.height) = v, applied.insert("size");
    } else if (key == "frames") {
      int v = want_int(key);
      if (!given.count("frames")) o.frames = v, applied.insert(key);
    } else if (key == "fps") {
      int v = want_int(key);
      if (!given.count("fps")) o.fps = Rational{v, 1}, applied.insert(key);
    } else if (key == "steps") {
      int v = want_int(key);
      if (!given.count("steps")) o.steps = v, applied.insert(key);
    } else if (key == "cfg") {
      double v = want_num(key);
      if (!given.count("cfg")) o.cfg = v, applied.insert(key);
    } else if (key == "shift") {
      double v = want_num(key);
      if (!given.count("shift")) o.shift = v, applied.insert(key);
    } else if (key == "sampler") {
      const std::string v = want_str(key);
      if (!given.count("sampler")) o.sampler = parse_sampler(v), applied.insert(key);
    } else if (key == "negative_prompt") {
      std::string v = want_str(key);
      if (!given.count("negative-prompt")) o.negative_prompt = v, applied.insert("negative-prompt");
    } else if (key == "teacache") {
      o.teacache_coefficients = teacache_coefficients_from_json(it.value(), where);
    } else {
      throw Error(kExitConfig, fmt::format("'{}': unknown key \"{}\"", where, key),
                  "known keys: width, height, frames, fps, steps, cfg, shift, sampler, negative_prompt, teacache");
    }
  }
  return applied;
}

}  // namespace t2v
