#include "app/serve_request.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <optional>
#include <random>
#include <utility>

#include <fmt/format.h>

#include "app/batch.h"
#include "app/choices.h"
#include "app/json_fields.h"
#include "core/error.h"
#include "core/json_strict.h"

namespace t2v {

using nlohmann::json;

std::string ApiError::type() const {
  switch (status) {
    case 401: return "authentication_error";
    case 429: return "rate_limit_error";
    case 500:
    case 503: return "server_error";
    default: return "invalid_request_error";
  }
}

json ApiError::body() const {
  return {{"error",
           {{"message", message},
            {"type", type()},
            {"param", param.empty() ? json(nullptr) : json(param)},
            {"code", code.empty() ? json(nullptr) : json(code)}}}};
}

const std::vector<std::string>& video_request_fields() {
  static const std::vector<std::string> kFields = {"prompt", "model", "size", "seconds", "frames",          "fps",
                                                   "seed",   "steps", "cfg",  "shift",   "negative_prompt", "sampler"};
  return kFields;
}

int frames_for_seconds(double seconds, double fps) {
  const double k = std::floor((seconds * fps - 1.0) / 4.0 + 0.5);
  return 4 * static_cast<int>(std::max(0.0, k)) + 1;
}

namespace {

ApiError invalid(const std::string& param, std::string message, const char* code = "invalid_value") {
  return ApiError{400, code, std::move(message), param};
}

// 53 bits: a seed the API reports is exact in every JSON reader (JavaScript's numbers included).
uint64_t random_seed() {
  std::random_device rd;
  return ((static_cast<uint64_t>(rd()) << 32) ^ rd()) & ((uint64_t{1} << 53) - 1);
}

Rational fps_field(const json& v) {
  return v.is_string() ? parse_fps(v.get<std::string>()) : parse_fps(fmt::format("{}", want_number(v, "fps")));
}

double seconds_field(const json& v) {
  const double s = v.is_string() ? parse_finite("\"seconds\"", v.get<std::string>()) : want_number(v, "seconds");
  if (!(s > 0) || s > 3600)
    throw FieldError{fmt::format("\"seconds\" must be more than 0 and at most 3600, not {}", s)};
  return s;
}

}  // namespace

JobSettings parse_video_request(const json& body, const GenerateOptions& defaults, const std::string& model_name,
                                std::vector<std::string>* warnings) {
  if (!body.is_object())
    throw invalid(
        "", fmt::format("the request body must be a JSON object like {{\"prompt\": \"...\"}}, not {}", json_type_name(body)),
        "invalid_type");
  const std::vector<std::string>& known = video_request_fields();
  for (auto it = body.begin(); it != body.end(); ++it)
    if (std::find(known.begin(), known.end(), it.key()) == known.end())
      throw invalid(it.key(), fmt::format("unknown field \"{}\" (known: {})", it.key(), fmt::join(known, ", ")),
                    "unknown_parameter");
  if (!body.contains("prompt")) throw invalid("prompt", "missing \"prompt\"", "missing_required_parameter");
  if (body.contains("seconds") && body.contains("frames"))
    throw invalid("seconds", "give either \"seconds\" or \"frames\", not both");

  // Each field's effect on the options, kept so a failed validation can be traced to its field.
  std::vector<std::pair<std::string, std::function<void(GenerateOptions&)>>> applied;
  std::optional<uint64_t> seed;
  std::optional<double> seconds;
  auto field = [&](const char* name, auto&& read) {
    if (!body.contains(name)) return;
    try {
      read(body.at(name));
    } catch (const FieldError& e) {
      throw invalid(name, e.message, "invalid_type");
    } catch (const Error& e) {
      throw invalid(name, fmt::format("\"{}\": {}", name, e.what()));
    }
  };
  field("prompt", [&](const json& v) {
    std::string p = want_string(v, "prompt");
    applied.emplace_back("prompt", [p](GenerateOptions& o) { o.prompt = p; });
  });
  field("negative_prompt", [&](const json& v) {
    std::string n = want_string(v, "negative_prompt");
    applied.emplace_back("negative_prompt", [n](GenerateOptions& o) { o.negative_prompt = n; });
  });
  field("model", [&](const json& v) {
    if (want_string(v, "model") != model_name)
      throw invalid(
          "model",
          fmt::format("model \"{}\" is not served here; this server serves \"{}\"", v.get<std::string>(), model_name),
          "model_not_found");
  });
  field("size", [&](const json& v) {
    int w = 0, h = 0;
    parse_size(want_string(v, "size"), &w, &h);
    applied.emplace_back("size", [w, h](GenerateOptions& o) {
      o.width = w;
      o.height = h;
    });
  });
  field("fps", [&](const json& v) {
    Rational r = fps_field(v);
    applied.emplace_back("fps", [r](GenerateOptions& o) { o.fps = r; });
  });
  field("frames", [&](const json& v) {
    int n = want_int(v, "frames");
    applied.emplace_back("frames", [n](GenerateOptions& o) { o.frames = n; });
  });
  field("seconds", [&](const json& v) { seconds = seconds_field(v); });
  field("steps", [&](const json& v) {
    int n = want_int(v, "steps");
    applied.emplace_back("steps", [n](GenerateOptions& o) { o.steps = n; });
  });
  field("cfg", [&](const json& v) {
    double x = want_number(v, "cfg");
    applied.emplace_back("cfg", [x](GenerateOptions& o) { o.cfg = x; });
  });
  field("shift", [&](const json& v) {
    double x = want_number(v, "shift");
    applied.emplace_back("shift", [x](GenerateOptions& o) { o.shift = x; });
  });
  field("sampler", [&](const json& v) {
    Sampler s = parse_sampler(want_string(v, "sampler"), "\"sampler\"");
    applied.emplace_back("sampler", [s](GenerateOptions& o) { o.sampler = s; });
  });
  field("seed", [&](const json& v) { seed = want_seed(v); });

  JobSettings out;
  out.options = defaults;
  for (auto& [name, apply] : applied) apply(out.options);
  if (seconds) {
    // The duration at the video's frame rate, as a frame count the VAE takes (4k+1).
    const double fps = out.options.fps.value();
    if (*seconds * fps > 100000) throw invalid("seconds", fmt::format("\"seconds\" {} is too long", *seconds));
    const int n = frames_for_seconds(*seconds, fps);
    out.options.frames = n;
    applied.emplace_back("seconds", [n](GenerateOptions& o) { o.frames = n; });
  }
  out.options.output = "video.mp4";
  out.options.allow_empty_prompt = false;
  try {
    std::vector<std::string> w = validate_generate_options(out.options);
    if (warnings) warnings->insert(warnings->end(), w.begin(), w.end());
  } catch (const Error& e) {
    // Which field: the first that fails on its own over the server's defaults; none when only
    // their combination does (e.g. a size that is fine but too large for that many frames).
    std::string param;
    for (auto& [name, apply] : applied) {
      GenerateOptions alone = defaults;
      alone.prompt = "a check of one field";  // the defaults carry no prompt
      alone.output = "video.mp4";
      apply(alone);
      try {
        validate_generate_options(alone);
      } catch (const Error&) {
        param = name;
        break;
      }
    }
    throw invalid(param, e.what());
  }
  out.seed = seed ? *seed : random_seed();
  return out;
}

json form_fields_json(const std::vector<std::pair<std::string, std::string>>& fields) {
  json j = json::object();
  for (const auto& [name, text] : fields) {
    const bool numeric = name == "frames" || name == "steps" || name == "cfg" || name == "shift";
    json v = numeric ? json::parse(text, nullptr, false) : json();
    j[name] = numeric && v.is_number() ? v : json(text);
  }
  return j;
}

json job_settings_json(const JobSettings& s, const std::string& model_name) {
  BatchItem item;
  item.opts = s.options;
  item.seed = s.seed;
  return item_settings(item, model_name);
}

JobSettings job_settings_from_json(const json& j, const GenerateOptions& defaults) {
  JobSettings s;
  s.options = defaults;
  GenerateOptions& o = s.options;
  const char* key = "";
  try {
    if (!j.is_object()) throw FieldError{"not a JSON object"};
    auto at = [&](const char* k) -> const json& {
      key = k;
      if (!j.contains(k)) throw FieldError{fmt::format("missing \"{}\"", k)};
      return j.at(k);
    };
    o.prompt = want_string(at("prompt"), "prompt");
    const json& neg = at("negative_prompt");
    o.negative_prompt = neg.is_null() ? std::nullopt : std::optional<std::string>(want_string(neg, "negative_prompt"));
    s.seed = want_seed(at("seed"));
    parse_size(want_string(at("size"), "size"), &o.width, &o.height);
    o.frames = want_int(at("frames"), "frames");
    o.steps = want_int(at("steps"), "steps");
    o.cfg = want_number(at("cfg"), "cfg");
    o.shift = want_number(at("shift"), "shift");
    o.sampler = parse_sampler(want_string(at("sampler"), "sampler"), "\"sampler\"");
    o.schedule = parse_schedule(want_string(at("schedule"), "schedule"), "\"schedule\"");
    o.fps = parse_fps(want_string(at("fps"), "fps"));
    o.output = "video.mp4";
    validate_generate_options(o);
  } catch (const FieldError& e) {
    throw Error(kExitDataErr, fmt::format("stored settings: {} (key \"{}\")", e.message, key));
  } catch (const Error& e) {
    throw Error(kExitDataErr, fmt::format("stored settings: {} (key \"{}\")", e.what(), key));
  }
  return s;
}

}  // namespace t2v
