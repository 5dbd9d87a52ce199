#include "app/generate.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <random>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "app/engine.h"
#include "app/latent_preview.h"
#include "app/memory_estimate.h"
#include "app/model_defaults.h"
#include "app/model_paths.h"
#include "app/progress.h"
#include "app/render_request.h"
#include "app/video_sink.h"
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

// Output checks that must pass before any model is loaded (docs/bad_inputs.md #42-45, #71,
// #72): every file the run will write (the MP4, the previews, the frames dump) has a
// writable folder and a usable name, and is absent unless --overwrite; an existing link,
// device, FIFO or folder under one of the names is refused even with --overwrite.
static void prepare_output(const GenerateOptions& o, const std::string& frames_dump = "") {
  auto folder_of = [](const std::string& path) {
    fs::path p(path);
    return p.has_parent_path() ? p.parent_path().string() : std::string(".");
  };
  const std::string dir = folder_of(o.output);
  check_output_writable(dir);
  check_free_space(dir, estimate_output_bytes(o.width, o.height, o.frames));
  int cleaned = clean_stale_temp_files(dir);
  if (cleaned > 0) spdlog::info("removed {} temp file(s) left by an interrupted run in {}", cleaned, dir);
  check_output_target(o.output, o.overwrite);
  if (o.preview) {
    const std::string base = preview_base(o.output);
    check_output_target(base + ".png", o.overwrite);
    check_output_target(base + ".gif", o.overwrite);
  }
  if (!frames_dump.empty()) {
    check_output_writable(folder_of(frames_dump));
    check_output_target(frames_dump, o.overwrite);
    if (fs::path(frames_dump).lexically_normal() == fs::path(o.output).lexically_normal())
      throw Error(kExitUsage, fmt::format("--dump-frames {} is also the -o output", frames_dump),
                  "name another file");
  }
}

// Writes the synthetic test pattern through the real MP4 writer (--test-pattern), so the
// video toolchain can be checked end to end without a model.
static int write_test_pattern(const RenderRequest& r, Device device) {
  fmt::print(stderr,
             "t2v: NOTE: --test-pattern writes a synthetic TEST PATTERN (a moving square), not a generated video\n");
  Mp4Options mo;
  mo.crf = r.crf;
  mo.overwrite = r.overwrite;
  mo.metadata["t2v"] = generation_settings_json(r, r.negative_prompt.value_or(""), device, "test-pattern").dump();
  mo.metadata["comment"] = r.prompt;
  Mp4Writer w;
  w.open(r.output, r.width, r.height, r.fps, mo);
  for (int i = 0; i < r.frames; ++i) {
    std::vector<uint8_t> f = test_pattern_frame(r.width, r.height, i, r.frames);
    w.write_frame(f.data(), static_cast<int64_t>(r.width) * 3);
  }
  w.finish();
  fmt::print(stderr, "t2v: wrote {} ({} frames, {}x{}, {} fps, test pattern)\n", r.output, r.frames, r.width,
             r.height, format_fps(r.fps));
  return 0;
}

// --plan: the memory estimate of the render from the configs (no weights read), then
// the same refusal a render would meet (Error 64/69) when it does not fit.
static int print_plan(Engine& engine, const GenerateOptions& o) {
  Pipeline& pipeline = engine.pipeline();
  RenderRequest r = render_request(o, 0);
  pipeline.prepare_images(r);  // image-to-video: the size comes from the image
  pipeline.latent_grid(r.width, r.height, r.frames);  // a size the model cannot take
  const RenderPlan p = plan_render(pipeline.configs(), pipeline.load_options(), r);
  const std::string& name = pipeline.paths().name;
  if (o.json)
    fmt::print("{}\n", render_plan_json(p, r, name, engine.device()).dump());
  else
    fmt::print("{}", format_render_plan(p, r, name, engine.device()));
  std::fflush(stdout);
  check_render_fits(pipeline.configs(), pipeline.load_options(), r);
  return 0;
}

static uint64_t choose_seed(const GenerateOptions& o) {
  uint64_t seed = o.seed ? *o.seed : random_seed();
  if (!o.seed && !o.json) fmt::print(stderr, "t2v: seed {} (pass --seed {} to reproduce)\n", seed, seed);
  return seed;
}

int run_generate(GenerateOptions& o, const std::string& frames_dump, const LivePreviewOptions& live) {
  // Everything a user can get wrong is checked before any weights are read.
  for (const std::string& w : validate_generate_options(o)) spdlog::warn("{}", w);
  if (!live.path.empty() && live.every < 1)
    throw Error(kExitUsage, fmt::format("--live-preview-every {} must be at least 1", live.every));
  check_h264_encoder();
  if (o.test_pattern) {  // needs neither a device nor a model
    prepare_output(o);
    return write_test_pattern(render_request(o, choose_seed(o)), o.device);
  }
  // The device and the dtype before any model file: no GPU is one line, at once.
  Engine engine(engine_options(o));
  const ModelPaths& paths = engine.resolve_model(o);
  if (o.plan && paths.any()) return print_plan(engine, o);
  prepare_output(o, frames_dump);
  if (!paths.any())
    throw Error(kExitNoInput,
                "no model: the default model models/t2v-tiny was not found (T2V_DEFAULT_MODEL, the source tree, "
                "./models)",
                "pass --model FOLDER (a diffusers Wan2.1 folder or a folder of ComfyUI files), or --test-pattern to "
                "check the video toolchain alone");
  if (o.cache.kind != StepCacheKind::kNone) engine.pipeline().resolve_cache(render_request(o, 0).cache);
  const uint64_t seed = choose_seed(o);
  if (o.model.empty() && o.dit.empty() && o.t5.empty() && o.vae.empty() && !o.quiet && !o.json)
    fmt::print(stderr, "t2v: model {} (the default; --model selects another)\n", default_model_folder());
  Progress progress(o.progress_bar, o.json);
  std::optional<LivePreview> preview;
  if (!live.path.empty()) {
    fs::path p(live.path);
    check_output_writable(p.has_parent_path() ? p.parent_path().string() : ".");
    preview.emplace(find_latent_rgb_map(model_defaults_folder(o), paths.vae), live.path, live.every);
  }
  engine.pipeline().render(render_request(o, seed, frames_dump), progress, nullptr,
                           preview ? preview->observer() : StepObserver{});
  return 0;
}

}  // namespace t2v
