#include "app/model_defaults.h"

#include <climits>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/model_paths.h"
#include "core/error.h"
#include "scheduler/distill.h"

namespace t2v {

namespace fs = std::filesystem;

namespace {
// The values of <folder>/t2v.json for the settings not in `given`; the names applied.
std::set<std::string> read_model_defaults(GenerateOptions& o, const std::string& folder,
                                          const std::set<std::string>& given);
}  // namespace

std::string model_defaults_folder(const GenerateOptions& o) {
  if (!o.model.empty()) return o.model;
  if (o.dit.empty() && o.t5.empty() && o.vae.empty()) return default_model_folder();
  return "";
}

void apply_sampler_rules(GenerateOptions& o, const std::set<std::string>& given, const std::set<std::string>& applied) {
  const bool distill = o.sampler == Sampler::kDistill;
  if (distill && given.count("steps"))
    throw Error(kExitUsage,
                fmt::format("--steps {} with the distill sampler{}: it runs one step per --timesteps entry", o.steps,
                            given.count("sampler") ? "" : " (chosen by the model's t2v.json)"),
                "drop --steps, or choose another --sampler to run a number of steps");
  if (!distill && given.count("timesteps"))
    throw Error(kExitUsage,
                fmt::format("--timesteps is for --sampler distill, not {}", sampler_option_name(o.sampler)),
                "add --sampler distill, or give --steps instead");
  if (!distill) o.timesteps.clear();  // from t2v.json, for its distill sampler
  if (distill && !given.count("cfg") && !(applied.count("sampler") && applied.count("cfg"))) o.cfg = 1.0;
}

std::set<std::string> apply_model_defaults(GenerateOptions& o, const std::string& folder,
                                           const std::set<std::string>& given) {
  std::set<std::string> applied = read_model_defaults(o, folder, given);
  apply_sampler_rules(o, given, applied);
  return applied;
}

namespace {

std::set<std::string> read_model_defaults(GenerateOptions& o, const std::string& folder,
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
    } else if (key == "timesteps") {
      const auto& v = j[key];
      std::vector<int> ts;
      if (!v.is_array()) throw bad(key, "a list of integers, e.g. [1000, 750, 500, 250]");
      for (const auto& e : v) {
        if (!e.is_number_integer() || e.get<int64_t>() < INT_MIN || e.get<int64_t>() > INT_MAX)
          throw bad(key, "a list of integers, e.g. [1000, 750, 500, 250]");
        ts.push_back(e.get<int>());
      }
      try {
        check_distill_timesteps(ts, fmt::format("'{}': \"timesteps\"", where));
      } catch (const Error& e) {
        throw Error(kExitConfig, e.what(), "fix the value or delete the key");
      }
      if (!given.count("timesteps")) o.timesteps = ts, applied.insert(key);
    } else if (key == "loras") {
      const auto& v = j[key];
      std::vector<LoraSpec> loras;
      const char* want = "a list of {\"file\": \"relative/path.safetensors\", \"strength\": 1.0}";
      if (!v.is_array()) throw bad(key, want);
      for (const auto& e : v) {
        if (!e.is_object() || !e.contains("file") || !e["file"].is_string() || e["file"].get<std::string>().empty())
          throw bad(key, want);
        for (auto field = e.begin(); field != e.end(); ++field)
          if (field.key() != "file" && field.key() != "strength") throw bad(key, want);
        LoraSpec l;
        const fs::path file(e["file"].get<std::string>());
        l.file = file.is_absolute() ? file.string() : (fs::path(folder) / file).string();
        if (e.contains("strength")) {
          if (!e["strength"].is_number() || !std::isfinite(e["strength"].get<double>()))
            throw bad(key, "a list whose \"strength\" values are finite numbers");
          l.strength = e["strength"].get<double>();
        }
        loras.push_back(l);
      }
      if (!given.count("lora")) o.loras = loras, applied.insert("lora");
    } else {
      throw Error(kExitConfig, fmt::format("'{}': unknown key \"{}\"", where, key),
                  "known keys: width, height, frames, fps, steps, cfg, shift, sampler, timesteps, loras, "
                  "negative_prompt");
    }
  }
  return applied;
}

}  // namespace

}  // namespace t2v
