#include "app/model_defaults.h"

#include <climits>
#include <cmath>
#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/model_paths.h"
#include "core/error.h"
#include "core/file_read.h"
#include "core/json_strict.h"
#include "core/utf8.h"
#include "scheduler/distill.h"

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
  if (!fs::exists(fs::symlink_status(path, ec))) return applied;
  const std::string where = path.string();
  // A regular file (a FIFO would block the read), parsed strictly: a key given twice is
  // refused rather than the last one silently winning (docs/bad_inputs.md #68, #15).
  const std::string text = read_input_file(where, "model defaults file", kMaxConfigBytes, kExitConfig);
  if (auto bad = utf8_first_invalid(text))
    throw Error(kExitConfig, fmt::format("'{}' is not valid UTF-8 at byte {}", where, *bad), "fix or delete the file");
  StrictJsonOptions jo;
  jo.code = kExitConfig;
  jo.what = "t2v.json";
  jo.hint = "fix or delete the file";
  nlohmann::json j = parse_json_strict("'" + where + "'", text, jo);
  if (!j.is_object())
    throw Error(kExitConfig, fmt::format("'{}' is not a JSON object", where), "fix or delete the file");
  auto bad = [&](const std::string& key, const char* want) {
    return Error(kExitConfig, fmt::format("'{}': \"{}\" must be {}", where, key, want), "fix the value or delete the key");
  };
  auto want_int = [&](const std::string& key) {
    const auto& v = j[key];
    if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > 1000000) || v.get<int64_t>() <= 0 ||
        v.get<int64_t>() > 1000000)
      throw bad(key, "a positive integer");
    return v.get<int>();
  };
  auto want_num = [&](const std::string& key, bool zero_ok) {
    const auto& v = j[key];
    if (!v.is_number() || v.get<double>() < 0 || (!zero_ok && v.get<double>() == 0) || v.get<double>() > 1e6)
      throw bad(key, zero_ok ? "a number in 0..1e6" : "a number in (0, 1e6]");
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
      double v = want_num(key, true);
      if (!given.count("cfg")) o.cfg = v, applied.insert(key);
    } else if (key == "shift") {
      double v = want_num(key, false);
      if (!given.count("shift")) o.shift = v, applied.insert(key);
    } else if (key == "sampler") {
      const std::string v = want_str(key);
      Sampler sampler{};
      try {
        sampler = parse_sampler(v);
      } catch (const Error&) {
        throw bad(key, "unipc, dpm++ or euler");
      }
      if (!given.count("sampler")) o.sampler = sampler, applied.insert(key);
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
    } else if (key == "teacache") {
      o.teacache_coefficients = teacache_coefficients_from_json(it.value(), where);
    } else {
      throw Error(kExitConfig, fmt::format("'{}': unknown key \"{}\"", where, key),
                  "known keys: width, height, frames, fps, steps, cfg, shift, sampler, timesteps, loras, "
                  "negative_prompt, teacache");
    }
  }
  return applied;
}

}  // namespace

}  // namespace t2v
