// Step caching on the default model (models/t2v-tiny) at 50 steps: the 64 held-out
// prompts of DefaultModelEval (same captions and seeds), rendered with every cache
// setting in turn by one loaded Pipeline. Per setting: DiT forwards run and skipped,
// render wall time (encode + denoise + decode + mux), and the semantic evaluator's
// accuracy. The tests judge each kind at its default threshold: at most half the
// forwards of the uncached render (2 per step with CFG, counted, not timed) and colour,
// shape and motion right in >= 85% of the videos. Speed is a benchmark, not a test:
//
//   T2V_CACHE_EVAL="none,teacache,first-block,teacache:0.05,..." build/tests/test_eval
//       --gtest_filter='StepCacheEval.*'   (one command line)
//
// renders the uncached reference too (name "none" first) and prints the table of
// docs/PERFORMANCE.md with the speed-up of each setting in the same run;
// T2V_EVAL_STRIDE=K renders every K-th prompt only (a quick look; the tests need all 64).
// Writes <build>/step_cache_eval.json.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/choices.h"
#include "app/model_defaults.h"
#include "app/model_paths.h"
#include "app/pipeline.h"
#include "app/progress.h"
#include "app/render_request.h"
#include "semantic_eval.h"
#include "video_io/mp4_reader.h"

namespace t2v::eval {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Tally {
  std::string setting;
  int n = 0, colour = 0, shape = 0, motion = 0;
  int64_t forwards = 0, skipped = 0;
  double wall_s = 0, denoise_s = 0;
  double pct(int k) const { return n ? 100.0 * k / n : 0.0; }
};

struct CacheEvalRun {
  std::string error;
  std::vector<Tally> tallies;  // in T2V_CACHE_EVAL order; "none" (when run) first
  int steps = 0;
};

std::vector<std::string> settings_to_run() {
  std::vector<std::string> out;
  const char* env = std::getenv("T2V_CACHE_EVAL");
  std::stringstream ss(env && *env ? env : "teacache,first-block");
  for (std::string s; std::getline(ss, s, ',');)
    if (!s.empty()) out.push_back(s);
  return out;
}

CacheEvalRun render_and_judge() {
  CacheEvalRun run;
  const std::string model = std::string(T2V_SOURCE_DIR) + "/models/t2v-tiny";
  if (!fs::exists(fs::path(model) / "model_index.json")) {
    run.error = "no default model at " + model + " (docs/default_model.md)";
    return run;
  }
  GenerateOptions base;
  base.model = model;
  apply_model_defaults(base, model, {"steps"});
  base.steps = 50;
  base.quiet = true;
  base.timing_metadata = false;
  base.overwrite = true;
  const std::vector<std::string> settings = settings_to_run();
  if (settings.empty() || std::find(settings.begin() + 1, settings.end(), "none") != settings.end()) {
    run.error = "T2V_CACHE_EVAL: name none (the uncached reference) first or not at all";
    return run;
  }
  run.steps = base.steps;
  std::vector<StepCacheSettings> caches;
  for (const std::string& s : settings) {
    caches.push_back(parse_cache(s, "T2V_CACHE_EVAL"));
    run.tallies.push_back({cache_option_text(caches.back())});
  }
  std::vector<std::pair<std::string, uint64_t>> items;  // DefaultModelEval's captions and seeds
  for (const World::Combo& c : world().held_out)
    for (const std::string& b : world().backgrounds)
      items.emplace_back(canonical_caption(c.colour, c.shape, c.motion, b), 1000 + items.size());
  if (const char* k = std::getenv("T2V_EVAL_STRIDE"); k && std::atoi(k) > 1) {
    std::vector<std::pair<std::string, uint64_t>> some;
    for (size_t i = 0; i < items.size(); i += static_cast<size_t>(std::atoi(k))) some.push_back(items[i]);
    items = some;
  }

  const fs::path dir = fs::temp_directory_path() / ("t2v-step-cache-eval-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  PipelineLoadOptions lo;
  lo.keep_text_encoder = true;
  Pipeline pipeline(resolve_model_paths(base), lo);
  Progress progress(false, false);
  nlohmann::json results = nlohmann::json::array();
  for (size_t i = 0; i < items.size(); ++i) {
    std::string line = fmt::format("[{:2}/{}] {:<56}", i + 1, items.size(), items[i].first);
    for (size_t k = 0; k < caches.size(); ++k) {
      GenerateOptions o = base;
      o.prompt = items[i].first;
      o.cache = caches[k];
      o.output = (dir / fmt::format("v{}_{}.mp4", i, k)).string();
      validate_generate_options(o);
      const auto t0 = Clock::now();
      const PipelineResult res = pipeline.render(render_request(o, items[i].second), progress);
      const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
      Mp4Reader reader;
      reader.open(o.output);
      const VideoInfo info = reader.info();
      const Verdict v = evaluate(reader.read_all_frames(), info.width, info.height, parse_prompt(o.prompt));
      fs::remove(o.output);
      Tally& t = run.tallies[k];
      ++t.n, t.colour += v.colour_ok, t.shape += v.shape_ok, t.motion += v.motion_ok;
      t.forwards += res.denoise.dit_forwards;
      t.skipped += res.denoise.dit_forwards_skipped;
      t.wall_s += wall;
      t.denoise_s += res.times.denoise_s;
      line += fmt::format(" | {} {}{}{} {}f {:.1f}s", t.setting, v.colour_ok ? 'c' : '-', v.shape_ok ? 's' : '-',
                          v.motion_ok ? 'm' : '-', res.denoise.dit_forwards, wall);
      results.push_back({{"prompt", o.prompt}, {"seed", items[i].second}, {"cache", t.setting},
                         {"dit_forwards", res.denoise.dit_forwards},
                         {"dit_forwards_skipped", res.denoise.dit_forwards_skipped}, {"wall_s", wall},
                         {"denoise_s", res.times.denoise_s},
                         {"correct", {{"colour", v.colour_ok}, {"shape", v.shape_ok}, {"motion", v.motion_ok}}},
                         {"detected", {{"colour", v.colour}, {"shape", v.shape}, {"motion", v.motion}}}});
    }
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  }
  fs::remove_all(dir);
  const Tally& ref = run.tallies[0];  // the speed-up column is relative to the first setting ("none" when run)
  std::printf("\n| cache | DiT forwards (of %d) | render wall | speed-up | denoise | colour | shape | motion |\n"
              "|---|---|---|---|---|---|---|---|\n",
              static_cast<int>(2 * base.steps));
  nlohmann::json summary = nlohmann::json::array();
  for (const Tally& t : run.tallies) {
    std::printf("| %s | %.1f | %.2f s | %.2fx | %.2f s | %.1f%% | %.1f%% | %.1f%% |\n", t.setting.c_str(),
                double(t.forwards) / t.n, t.wall_s / t.n, ref.wall_s / t.wall_s, t.denoise_s / t.n, t.pct(t.colour),
                t.pct(t.shape), t.pct(t.motion));
    summary.push_back({{"cache", t.setting}, {"videos", t.n}, {"mean_dit_forwards", double(t.forwards) / t.n},
                       {"mean_wall_s", t.wall_s / t.n}, {"mean_denoise_s", t.denoise_s / t.n},
                       {"speedup_wall", ref.wall_s / t.wall_s},
                       {"accuracy", {{"colour", t.pct(t.colour)}, {"shape", t.pct(t.shape)}, {"motion", t.pct(t.motion)}}}});
  }
  std::ofstream(std::string(T2V_BINARY_DIR) + "/step_cache_eval.json")
      << nlohmann::json{{"steps", base.steps}, {"summary", summary}, {"results", results}}.dump(1) << "\n";
  return run;
}

class StepCacheEval : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { run_ = new CacheEvalRun(render_and_judge()); }
  static void TearDownTestSuite() {
    delete run_;
    run_ = nullptr;
  }
  // The tally of `kind` at its default threshold.
  static const Tally* at_default(StepCacheKind kind) {
    StepCacheSettings s;
    s.kind = kind;
    s.threshold = default_cache_threshold(kind);
    for (const Tally& t : run_->tallies)
      if (t.setting == cache_option_text(s)) return &t;
    return nullptr;
  }
  static void check(StepCacheKind kind) {
    ASSERT_NE(run_, nullptr);
    ASSERT_TRUE(run_->error.empty()) << run_->error;
    const Tally* t = at_default(kind);
    ASSERT_NE(t, nullptr) << cache_kind_name(kind) << " at its default threshold was not run (T2V_CACHE_EVAL)";
    ASSERT_EQ(t->n, 64) << "the acceptance judges all 64 held-out prompts (T2V_EVAL_STRIDE is set)";
    // Uncached, CFG runs two forwards per step on every video.
    const int64_t uncached = int64_t{2} * run_->steps * t->n;
    EXPECT_LE(2 * t->forwards, uncached) << t->setting << ": " << t->forwards << " of " << uncached << " forwards";
    for (const auto& [name, k] : {std::pair{"colour", t->colour}, {"shape", t->shape}, {"motion", t->motion}})
      EXPECT_GE(k * 100, t->n * 85) << t->setting << ": " << name << " " << t->pct(k) << "%";
  }
  static CacheEvalRun* run_;
};

CacheEvalRun* StepCacheEval::run_ = nullptr;

TEST_F(StepCacheEval, TeaCacheAtItsDefaultHalvesTheWorkAndKeepsAccuracy) { check(StepCacheKind::kTeaCache); }

TEST_F(StepCacheEval, FirstBlockAtItsDefaultHalvesTheWorkAndKeepsAccuracy) { check(StepCacheKind::kFirstBlock); }

}  // namespace
}  // namespace t2v::eval
