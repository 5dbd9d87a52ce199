// What the pipeline needs to render one video, typed and complete: the settings
// that make the video, where it goes, and how progress is reported. Built from
// validated options (generate: the command line; batch: one list item).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/options.h"
#include "core/tensor.h"
#include "scheduler/schedule.h"
#include "video_io/frame_rate.h"

namespace t2v {

// Wan2.1's default negative prompt (docs/wan.md §4.1), used when none is given.
extern const char* const kWanDefaultNegativePrompt;
// The image-to-video models' defaults: Wan's with "镜头晃动，" (camera shake) in front,
// and for first-last-frame models also "镜头切换，" (cut) (wan/configs).
std::string wan_i2v_default_negative_prompt(bool first_last_frame);

struct RenderRequest {
  // ---- the video ----
  std::string prompt;
  std::optional<std::string> negative_prompt;  // Wan's default when absent
  int width = 832, height = 480;
  int frames = 81;  // 4k+1
  Rational fps{16, 1};
  int steps = 50;
  double cfg = 5.0;  // 1.0: the conditional prediction alone; A14B: on the high-noise expert's steps
  std::optional<double> cfg_low;   // A14B: on the low-noise expert's steps (default cfg)
  std::optional<double> boundary;  // A14B: overrides the model's boundary ratio
  bool low_memory = false;         // A14B: one expert resident at a time
  double shift = 5.0;
  Sampler sampler = Sampler::kUniPC;
  ScheduleKind schedule = ScheduleKind::kWan;
  std::vector<int> timesteps;  // the distill sampler's list (steps == its size)
  uint64_t seed = 0;
  std::string noise_file;  // start from this tensor (key "noise") instead of the seed's noise
  // Step caching (--cache); TeaCache's coefficients from t2v.json when it has them, else
  // empty and the pipeline takes the DiT preset's published ones.
  StepCacheSettings cache;
  // Image-to-video: the input image(s). Then width x height is the area budget the
  // pipeline turns into the output size (docs/wan.md §5.1).
  std::string image, last_image;
  // LoRAs merged into the DiT when it loads (a different list reloads it).
  std::vector<LoraSpec> loras;
  bool lora_ignore_unknown = false;

  // ---- outputs ----
  std::string output = "out.mp4";  // written through a temp file and renamed when complete
  bool overwrite = false;
  bool preview = false;  // also <output>.png (contact sheet) and <output>.gif
  bool preview_overwrite = false;  // replace existing previews even without `overwrite` (batch: they belong to the item)
  int crf = 18;
  bool timing_metadata = true;  // stage timings in the MP4's settings tag (they make files differ run to run)
  std::string frames_dump;      // when set: the decoded frames in [0, 1] as F32 [F, H, W, 3] safetensors

  // ---- reporting ----
  bool progress_bar = false;  // the step bar on stderr
  bool json = false;          // JSON events on stdout
  bool quiet = false;         // no progress lines on stderr

  // The negative prompt the text encoder sees.
  std::string negative_or_default() const;
};

// The request for options that passed validate_generate_options.
RenderRequest render_request(const GenerateOptions& o, uint64_t seed, const std::string& frames_dump = "");

// The settings stored as JSON in the MP4's `t2v` tag (everything needed to
// reproduce the video). `negative` is the negative prompt as it is to be stored.
// "timesteps" (distill) and "loras" ([{file, strength}]) only where they apply.
nlohmann::json generation_settings_json(const RenderRequest& r, const std::string& negative, Device device,
                                        const std::string& model);

}  // namespace t2v
