#include "app/render_request.h"

#include <fmt/format.h>

#include "app/choices.h"

namespace t2v {

const char* const kWanDefaultNegativePrompt =
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，丑陋的，"
    "残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，"
    "三条腿，背景人很多，倒着走";

std::string wan_i2v_default_negative_prompt(bool first_last_frame) {
  return std::string(first_last_frame ? "镜头切换，" : "") + "镜头晃动，" + kWanDefaultNegativePrompt;
}

std::string RenderRequest::negative_or_default() const {
  return negative_prompt ? *negative_prompt : std::string(kWanDefaultNegativePrompt);
}

RenderRequest render_request(const GenerateOptions& o, uint64_t seed, const std::string& frames_dump) {
  RenderRequest r;
  r.prompt = o.prompt;
  r.negative_prompt = o.negative_prompt;
  r.width = o.width;
  r.height = o.height;
  r.frames = o.frames;
  r.fps = o.fps;
  r.steps = o.steps;
  r.cfg = o.cfg;
  r.cfg_low = o.cfg_low;
  r.boundary = o.boundary;
  r.image = o.image;
  r.low_memory = o.low_memory;
  r.shift = o.shift;
  r.sampler = o.sampler;
  r.schedule = o.schedule;
  r.timesteps = o.timesteps;
  r.seed = seed;
  r.noise_file = o.noise_file;
  r.cache = o.cache;
  if (r.cache.kind == StepCacheKind::kTeaCache) r.cache.coefficients = o.teacache_coefficients;
  r.image = o.image;
  r.last_image = o.last_image;
  r.loras = o.loras;
  r.lora_ignore_unknown = o.lora_ignore_unknown;
  r.output = o.output;
  r.overwrite = o.overwrite;
  r.preview = o.preview;
  r.crf = o.crf;
  r.timing_metadata = o.timing_metadata;
  r.frames_dump = frames_dump;
  r.progress_bar = o.progress_bar;
  r.json = o.json;
  r.quiet = o.quiet;
  return r;
}

nlohmann::json generation_settings_json(const RenderRequest& r, const std::string& negative, Device device,
                                        const std::string& model) {
  nlohmann::json j = {{"prompt", r.prompt},
                      {"negative_prompt", negative},
                      {"seed", r.seed},
                      {"steps", r.steps},
                      {"cfg", r.cfg},
                      {"shift", r.shift},
                      {"sampler", sampler_option_name(r.sampler)},
                      {"schedule", schedule_option_name(r.schedule)},
                      {"size", fmt::format("{}x{}", r.width, r.height)},
                      {"frames", r.frames},
                      {"fps", format_fps(r.fps)},
                      {"model", model},
                      {"device", device_option_name(device)},
                      {"version", T2V_VERSION}};
  if (!r.image.empty()) j["image"] = r.image;
  if (!r.last_image.empty()) j["last_image"] = r.last_image;
  if (r.sampler == Sampler::kDistill) j["timesteps"] = r.timesteps;
  for (const LoraSpec& l : r.loras) j["loras"].push_back({{"file", l.file}, {"strength", l.strength}});
  if (r.cfg_low) j["cfg_low"] = *r.cfg_low;
  if (r.boundary) j["boundary"] = *r.boundary;
  if (r.cache.kind != StepCacheKind::kNone) j["cache"] = cache_option_text(r.cache);  // absent: no caching
  return j;
}

}  // namespace t2v
