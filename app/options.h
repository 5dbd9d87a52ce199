// Generation settings as the user gives them, and their validation. Every check
// here runs before any model file is opened, so a typo costs milliseconds, not a
// model load (docs/bad_inputs.md #25-35). The named choices arrive already
// parsed (app/choices.h); what one video needs goes to the pipeline as a
// RenderRequest (app/render_request.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "app/choices.h"
#include "diffusion/lora.h"
#include "text_encoder/tokenizer.h"
#include "video_io/frame_rate.h"

namespace t2v {

struct GenerateOptions {
  std::string prompt;
  std::optional<std::string> negative_prompt;  // Wan's default when absent
  // Model location: a diffusers folder or a folder of Comfy files; per-part overrides
  // (clip: the CLIP image encoder of Wan2.1 image-to-video models).
  std::string model, dit, t5, vae, tokenizer, clip;
  std::string dit_low;  // Wan2.2 A14B: the low-noise expert (--dit is then the high-noise one)
  // Image-to-video: the first frame (and, for first-last-frame models, the last one).
  // With an image, --size is an area budget: the video takes the image's size or aspect
  // ratio (Wan2.1 I2V/FLF2V, Wan2.2 TI2V-5B and I2V-A14B).
  std::string image, last_image;
  int width = 832, height = 480;
  int frames = 81;
  Rational fps{16, 1};
  int steps = 50;
  double cfg = 5.0;
  std::optional<double> cfg_low;   // A14B: guidance on the low-noise expert's steps (default: cfg)
  std::optional<double> boundary;  // A14B: switch ratio, 0 < R <= 1 (default: the model's)
  bool low_memory = false;         // A14B: keep one expert resident (also chosen by available memory)
  double shift = 5.0;
  Sampler sampler = Sampler::kUniPC;
  ScheduleKind schedule = ScheduleKind::kWan;  // --schedule reference (diffusers: kDiffusers)
  std::vector<int> timesteps;  // --timesteps of the distill sampler (training timesteps, decreasing)
  std::vector<LoraSpec> loras;  // merged into the DiT at load, in this order
  bool lora_ignore_unknown = false;
  std::optional<uint64_t> seed;  // random when absent (printed and stored)
  Device device = Device::CPU;
  DTypeChoice dtype = DTypeChoice::kAuto;
  StepCacheSettings cache;  // --cache (coefficients stay empty here)
  // TeaCache's rescale polynomial from the model folder's t2v.json ("teacache"), empty
  // when it has none (the published ones of the 1.3B and 14B presets apply then).
  std::vector<double> teacache_coefficients;
  std::string output = "out.mp4";
  bool preview = false;
  std::string noise_file;
  bool json = false;
  bool quiet = false;
  bool progress_bar = false;  // draw the step bar (stderr is a terminal, no NO_COLOR, no --quiet)
  bool overwrite = false;
  bool allow_empty_prompt = false;
  bool strict = false;
  bool timing_metadata = true;  // store stage timings in the MP4 (they make files differ run to run)
  bool test_pattern = false;    // write the synthetic test pattern instead of generating (no model needed)
  int crf = 18;
  bool plan = false;        // --plan: print the memory plan (configs and headers only) and stop
  uint64_t max_memory = 0;  // --max-memory in bytes; 0: the memory available
  bool offload = false;     // --offload: stream the DiT's blocks to the device (not on the CPU)
};

// Prompts longer than UMT5Tokenizer::kMaxPromptBytes are refused (Error 65) before
// anything else looks at them (docs/bad_inputs.md #70).
constexpr size_t kMaxPromptBytes = UMT5Tokenizer::kMaxPromptBytes;

// The most transformer tokens a video may need: beyond this the largest activations no
// longer fit an 80 GB GPU even with flash attention. Checked here with Wan2.1's 16x
// compression, and again against the loaded model's own (app/memory_estimate.h).
constexpr int64_t kMaxTransformerTokens = 400'000;

// --size takes multiples of this: the VAE divides by 8 and the DiT patches 2x2 latents.
constexpr int kSizeMultiple = 16;

// Parsers for option values; each throws Error(64) naming the option and value.
void parse_size(const std::string& text, int* width, int* height);    // "832x480" or "832*480"
uint64_t parse_seed(const std::string& text);                         // 0 .. 2^64-1, decimal
double parse_finite(const std::string& option, const std::string& text);
// --max-memory: bytes, or a number with K, M, G, T (also KiB..TiB: powers of 1024) or
// kB, MB, GB, TB (powers of 1000), e.g. 12G, 800M, 1.5GiB; more than 0 and below 2^63.
uint64_t parse_memory_size(const std::string& option, const std::string& text);

// Error(64) for --offload on the CPU (docs/bad_inputs.md #103).
void check_offload_device(const GenerateOptions& o);

// Checks every setting (sizes multiple of 16, frames 4k+1, steps, cfg, shift, fps,
// crf, output, the distill timesteps, the LoRA files' existence) and the prompt
// text (UTF-8, empty, control characters: bidi overrides are stripped with a
// warning, other control characters refused). May rewrite `o.prompt`/`o.negative_prompt`
// when stripping; sets o.steps to the number of timesteps for the distill sampler.
// Throws Error(64) for bad parameters, Error(65) for bad prompt text, Error(66) for a
// missing LoRA file. Returns warnings to show the user.
std::vector<std::string> validate_generate_options(GenerateOptions& o);

// Cleans a prompt for the checks above; returns warnings to print.
std::vector<std::string> sanitize_prompt(std::string& prompt, const std::string& what, bool allow_empty);

}  // namespace t2v
