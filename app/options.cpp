#include "app/options.h"

#include <charconv>
#include <cmath>
#include <regex>

#include <fmt/format.h>

#include "core/error.h"
#include "core/unicode.h"
#include "core/utf8.h"
#include "scheduler/distill.h"
#include "video_io/mp4_writer.h"

namespace t2v {

void parse_size(const std::string& text, int* width, int* height) {
  static const std::regex re(R"(^\s*(\d{1,9})\s*[x*X]\s*(\d{1,9})\s*$)");
  std::smatch m;
  if (!std::regex_match(text, m, re))
    throw Error(kExitUsage, fmt::format("--size '{}' is not WIDTHxHEIGHT", text), "use e.g. --size 832x480");
  *width = std::stoi(m[1].str());
  *height = std::stoi(m[2].str());
}

uint64_t parse_seed(const std::string& text) {
  uint64_t v = 0;
  const char* b = text.data();
  const char* e = b + text.size();
  auto [p, ec] = std::from_chars(b, e, v);
  if (text.empty() || ec != std::errc() || p != e)
    throw Error(kExitUsage,
                fmt::format("--seed '{}' is not an integer in 0..18446744073709551615", text),
                "omit --seed for a random seed (it is printed and stored in the video)");
  return v;
}

double parse_finite(const std::string& option, const std::string& text) {
  double v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || p != text.data() + text.size() || !std::isfinite(v))
    throw Error(kExitUsage, fmt::format("{} '{}' is not a finite number", option, text));
  return v;
}

uint64_t parse_memory_size(const std::string& option, const std::string& text) {
  const std::string hint = "give bytes or a size such as 12G, 800M or 1.5GiB (K/M/G/T: powers of 1024; kB/MB/GB/TB: of 1000)";
  double v = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || !std::isfinite(v))
    throw Error(kExitUsage, fmt::format("{} '{}' is not a memory size", option, text), hint);
  const std::string unit(p, end);
  double scale = 0;
  for (const auto& [name, s] : std::initializer_list<std::pair<const char*, double>>{
           {"", 1.0},         {"B", 1.0},           {"K", 0x1p10},    {"KiB", 0x1p10},  {"kB", 1e3},
           {"KB", 1e3},       {"M", 0x1p20},        {"MiB", 0x1p20},  {"MB", 1e6},      {"G", 0x1p30},
           {"GiB", 0x1p30},   {"GB", 1e9},          {"T", 0x1p40},    {"TiB", 0x1p40},  {"TB", 1e12}})
    if (unit == name) scale = s;
  if (scale == 0) throw Error(kExitUsage, fmt::format("{} '{}': unknown unit '{}'", option, text, unit), hint);
  const double bytes = v * scale;
  // Below one MiB nothing loads at all: such a limit is a typo (a missing unit).
  if (!(bytes >= 0x1p20) || bytes >= 0x1p63)
    throw Error(kExitUsage, fmt::format("{} '{}' is {} bytes, outside 1 MiB .. 8 EiB", option, text, bytes), hint);
  return static_cast<uint64_t>(bytes);
}

std::vector<std::string> sanitize_prompt(std::string& prompt, const std::string& what, bool allow_empty) {
  std::vector<std::string> warnings;
  // Checked first: everything after this (cleaning, tokenizing) is then bounded.
  if (prompt.size() > kMaxPromptBytes)
    throw Error(kExitDataErr,
                fmt::format("{} is {} bytes, above the limit of {} bytes", what, prompt.size(), kMaxPromptBytes),
                fmt::format("the text encoder reads only the first {} tokens (a few thousand bytes); shorten it",
                            UMT5Tokenizer::kTextLen));
  utf8_require_valid(prompt, what);
  std::u32string cps = utf8_decode(prompt);
  std::u32string kept;
  size_t stripped = 0;
  for (size_t i = 0; i < cps.size(); ++i) {
    char32_t c = cps[i];
    bool bidi = (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
    if (bidi) {
      ++stripped;
      continue;
    }
    if (c == '\t' || c == '\n' || c == '\r') {
      kept.push_back(' ');
      continue;
    }
    if (c < 0x20 || c == 0x7f)
      throw Error(kExitDataErr, fmt::format("{} contains control character U+{:04X} at character {}", what,
                                            static_cast<uint32_t>(c), i),
                  "remove control characters from the text");
    kept.push_back(c);
  }
  if (stripped)
    warnings.push_back(fmt::format("{}: removed {} bidirectional-override character(s)", what, stripped));
  prompt = utf8_encode(kept);
  // Spaces of any kind and zero-width characters show nothing: such a prompt is empty too.
  if (is_blank_text(prompt) && !allow_empty)
    throw Error(kExitDataErr, fmt::format("{} is empty", what),
                "write a description of the video, or pass --allow-empty-prompt");
  return warnings;
}

void check_offload_device(const GenerateOptions& o) {
  // docs/bad_inputs.md #103: on the CPU the weights are in host memory already.
  if (o.offload && o.device == Device::CPU)
    throw Error(kExitUsage,
                "--offload with --device cpu: the CPU computes from host memory, there is no device memory to save",
                "drop --offload, or use it with --device cuda (or test)");
}

std::vector<std::string> validate_generate_options(GenerateOptions& o) {
  auto usage = [](std::string msg, std::string hint = "") { return Error(kExitUsage, msg, hint); };
  check_offload_device(o);
  check_frame_size(o.width, o.height, kSizeMultiple);
  if (o.frames <= 0 || (o.frames - 1) % 4 != 0) {
    int lo = o.frames <= 1 ? 1 : (o.frames - 1) / 4 * 4 + 1;
    int hi = lo + 4;
    throw usage(fmt::format("frames must be 4k+1: use {} or {}", lo, hi),
                "the video autoencoder maps 1 + 4k frames to 1 + k latent frames");
  }
  // Memory bound: the DiT sees T*(H/16)*(W/16) tokens; beyond this the largest
  // activations no longer fit an 80 GB GPU even with flash attention.
  int64_t tokens = static_cast<int64_t>((o.frames - 1) / 4 + 1) * (o.height / 16) * (o.width / 16);
  constexpr int64_t kMaxTokens = kMaxTransformerTokens;
  if (tokens > kMaxTokens)
    throw usage(fmt::format("{} frames at {}x{} is {} transformer tokens, above the limit of {}", o.frames, o.width,
                            o.height, tokens, kMaxTokens),
                "use fewer frames or a smaller size (81 frames at 832x480 is 32,760 tokens)");
  if (o.sampler == Sampler::kDistill) {
    if (o.timesteps.empty())
      throw usage("--sampler distill needs --timesteps",
                  "give the distilled model's timesteps, e.g. --timesteps 1000,750,500,250 (4-step LoRAs)");
    check_distill_timesteps(o.timesteps);
    o.steps = static_cast<int>(o.timesteps.size());
  } else if (!o.timesteps.empty()) {
    throw usage(fmt::format("--timesteps {} is for --sampler distill, not {}", format_distill_timesteps(o.timesteps),
                            sampler_option_name(o.sampler)),
                "add --sampler distill, or give --steps instead");
  }
  if (o.steps < 1 || o.steps > 1000)
    throw usage(fmt::format("--steps {} is out of range", o.steps), "use 1..1000 (Wan uses 50)");
  if (!std::isfinite(o.cfg) || o.cfg < 0)
    throw usage(fmt::format("--cfg {} must be a finite number >= 0", o.cfg), "Wan uses 5.0; 1.0 disables guidance");
  if (o.cfg_low && (!std::isfinite(*o.cfg_low) || *o.cfg_low < 0))
    throw usage(fmt::format("--cfg-low {} must be a finite number >= 0", *o.cfg_low),
                "the low-noise expert's guidance scale; Wan2.2 T2V-A14B uses 3.0");
  if (o.boundary && !(*o.boundary > 0.0 && *o.boundary <= 1.0))
    throw usage(fmt::format("--boundary {} is outside (0, 1]", *o.boundary),
                "the high-noise expert runs while t >= boundary x 1000; Wan2.2 uses 0.875 (T2V) and 0.9 (I2V)");
  if (!std::isfinite(o.shift) || o.shift <= 0)
    throw usage(fmt::format("--shift {} must be a finite number > 0", o.shift), "Wan uses 5.0 (3.0 at 480p)");
  if (o.crf < 0 || o.crf > 51) throw usage(fmt::format("--crf {} is out of range", o.crf), "use 0..51 (18 default)");
  check_fps(o.fps);
  if (o.output.empty()) throw usage("-o/--output is empty", "name an .mp4 file");
  if (!o.last_image.empty() && o.image.empty())
    throw usage("--last-image needs --image (the first frame)", "pass both frames of a first-last-frame video");
  for (const LoraSpec& l : o.loras) check_lora_file_exists(l);
  std::vector<std::string> warnings = sanitize_prompt(o.prompt, "prompt", o.allow_empty_prompt);
  if (o.negative_prompt) {
    auto w = sanitize_prompt(*o.negative_prompt, "negative prompt", true);
    warnings.insert(warnings.end(), w.begin(), w.end());
  }
  if (o.width * o.height > 1280 * 720 * 2)
    warnings.push_back(fmt::format("{}x{} is far above the sizes Wan2.1 was trained on (832x480, 1280x720)",
                                   o.width, o.height));
  return warnings;
}

}  // namespace t2v
