#include "app/generate.h"

#include <chrono>
#include <filesystem>
#include <random>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "app/model_paths.h"
#include "app/pipeline.h"
#include "app/progress.h"
#include "core/error.h"
#include "video_io/atomic_file.h"
#include "video_io/mp4_writer.h"
#include "video_io/test_pattern.h"

namespace t2v {

namespace fs = std::filesystem;

static uint64_t random_seed() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

// Output checks that must pass before any model is loaded (docs/bad_inputs.md #42-45).
static void prepare_output(const GenerateOptions& o) {
  fs::path out(o.output);
  std::string dir = out.has_parent_path() ? out.parent_path().string() : ".";
  check_output_writable(dir);
  check_free_space(dir, estimate_output_bytes(o.width, o.height, o.frames));
  int cleaned = clean_stale_temp_files(dir);
  if (cleaned > 0) spdlog::info("removed {} temp file(s) left by an interrupted run in {}", cleaned, dir);
  std::error_code ec;
  if (fs::exists(out, ec) && !o.overwrite)
    throw Error(kExitCantCreate, fmt::format("{} already exists", o.output), "pass --overwrite or choose another -o");
}

// Writes the synthetic test pattern through the real MP4 writer (--test-pattern), so the
// video toolchain can be checked end to end without a model.
static int write_test_pattern(const GenerateOptions& o, uint64_t seed) {
  fmt::print(stderr,
             "t2v: NOTE: --test-pattern writes a synthetic TEST PATTERN (a moving square), not a generated video\n");
  Mp4Options mo;
  mo.crf = o.crf;
  mo.overwrite = o.overwrite;
  mo.metadata["t2v"] = generation_settings_json(o, o.negative_prompt.value_or(""), seed, "test-pattern").dump();
  mo.metadata["comment"] = o.prompt;
  Mp4Writer w;
  w.open(o.output, o.width, o.height, o.fps, mo);
  for (int i = 0; i < o.frames; ++i) {
    std::vector<uint8_t> f = test_pattern_frame(o.width, o.height, i, o.frames);
    w.write_frame(f.data(), static_cast<int64_t>(o.width) * 3);
  }
  w.finish();
  fmt::print(stderr, "t2v: wrote {} ({} frames, {}x{}, {} fps, test pattern)\n", o.output, o.frames, o.width,
             o.height, format_fps(o.fps));
  return 0;
}

int run_generate(GenerateOptions& o, const std::string& frames_dump) {
  // Everything a user can get wrong is checked before any weights are read.
  for (const std::string& w : validate_generate_options(o)) spdlog::warn("{}", w);
  check_h264_encoder();
  ModelPaths paths;
  if (!o.test_pattern) paths = resolve_model_paths(o);
  prepare_output(o);
  if (!o.test_pattern && !paths.any())
    throw Error(kExitNoInput,
                "no model: the default model models/t2v-tiny was not found (T2V_DEFAULT_MODEL, the source tree, "
                "./models)",
                "pass --model FOLDER (a diffusers Wan2.1 folder or a folder of ComfyUI files), or --test-pattern to "
                "check the video toolchain alone");
  uint64_t seed = o.seed ? *o.seed : random_seed();
  if (!o.seed && !o.json) fmt::print(stderr, "t2v: seed {} (pass --seed {} to reproduce)\n", seed, seed);
  if (o.test_pattern) return write_test_pattern(o, seed);
  if (o.model.empty() && o.dit.empty() && o.t5.empty() && o.vae.empty() && !o.quiet && !o.json)
    fmt::print(stderr, "t2v: model {} (the default; --model selects another)\n", default_model_folder());
  Progress progress(o.progress_bar, o.json);
  run_pipeline(o, paths, seed, progress, frames_dump);
  return 0;
}

}  // namespace t2v
