// Step caching end to end on the tiny random pipeline (tests/data/pipeline/tiny_wan):
// the skip decisions, distances and frames against the goldens of
// tools/golden/gen_step_cache_goldens.py (diffusers' FirstBlockCache hook; TeaCache4Wan2.1's
// decision logic), the calibration points and fit against numpy, and through the t2v
// program: the counts in the done event and the summary, calibrate-cache --write, bench
// --cache, and the bad inputs of docs/bad_inputs.md.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "app/calibrate.h"
#include "app/model_paths.h"
#include "app/pipeline.h"
#include "app/progress.h"
#include "app/render_request.h"
#include "cli_test_util.h"
#include "core/safetensors.h"

namespace t2v::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const std::string kTiny = std::string(T2V_TEST_DATA_DIR) + "/pipeline/tiny_wan";
const std::string kGolden = std::string(T2V_TEST_DATA_DIR) + "/step_cache";

const json& golden() {
  static const json g = [] {
    std::ifstream f(kGolden + "/golden.json");
    return json::parse(f);
  }();
  return g;
}

Pipeline& tiny_pipeline() {
  static Pipeline p = [] {
    GenerateOptions g;
    g.model = kTiny;
    PipelineLoadOptions lo;
    lo.keep_text_encoder = true;
    return Pipeline(resolve_model_paths(g), lo);
  }();
  return p;
}

// The golden's settings and noise, writing into `dir`.
RenderRequest golden_request(const TempDir& dir) {
  const json& g = golden();
  RenderRequest r;
  r.prompt = g["prompt"];
  r.negative_prompt = g["negative_prompt"].get<std::string>();
  r.width = g["width"];
  r.height = g["height"];
  r.frames = g["frames"];
  r.fps = Rational{16, 1};
  r.steps = g["steps"];
  r.cfg = g["cfg"];
  r.shift = g["shift"];
  r.schedule = ScheduleKind::kDiffusers;
  r.noise_file = kGolden + "/golden.safetensors";
  r.output = dir.file("out.mp4");
  r.frames_dump = dir.file("frames.safetensors");
  r.quiet = true;
  r.timing_metadata = false;
  return r;
}

// Renders with `cache` and compares every decision, distance and the frames to the golden.
void check_against_golden(StepCacheSettings cache, const char* kind, const char* frames_key) {
  const json& g = golden()[kind];
  TempDir dir;
  RenderRequest r = golden_request(dir);
  cache.threshold = g["threshold"];
  cache.retain_steps = golden()["retain_steps"];
  r.cache = cache;
  Progress progress(false, false);
  const PipelineResult res = tiny_pipeline().render(r, progress);
  const json& want = g["records"];
  const auto& got = res.denoise.records;
  ASSERT_EQ(got.size(), want.size());
  int skipped = 0;
  for (size_t k = 0; k < got.size(); ++k) {
    const json& w = want[k];
    SCOPED_TRACE(fmt::format("{} step {} branch {}", kind, int(w["step"]), int(w["branch"])));
    EXPECT_EQ(got[k].step, w["step"].get<int>());
    EXPECT_EQ(got[k].branch, w["branch"].get<int>()) << "cond: row 0 of the batch here, the even call there";
    EXPECT_EQ(got[k].computed, w["computed"].get<bool>());
    if (w["distance"].is_null()) {
      EXPECT_EQ(got[k].distance, -1.0);
    } else {
      EXPECT_NEAR(got[k].distance, w["distance"].get<double>(), 1e-4 * w["distance"].get<double>());
    }
    if (w.contains("accumulated")) {
      const double a = w["accumulated"];
      EXPECT_NEAR(got[k].accumulated, a, 1e-4 * std::fabs(a) + 1e-9);
    }
    skipped += got[k].computed ? 0 : 1;
  }
  EXPECT_GT(skipped, 0) << "the golden's threshold skips forwards";
  EXPECT_EQ(res.denoise.dit_forwards_skipped, skipped);
  EXPECT_EQ(res.denoise.dit_forwards + res.denoise.dit_forwards_skipped, 2 * r.steps);
  const std::vector<float> frames = SafetensorsFile(r.frames_dump).get("frames").to_vector();
  const std::vector<float> ref = SafetensorsFile(kGolden + "/golden.safetensors").get(frames_key).to_vector();
  ASSERT_EQ(frames.size(), ref.size());
  const double p = frame_psnr(frames, ref);
  std::printf("%s: %d of %zu forwards skipped, as in the reference; frames %.1f dB from the golden\n", kind, skipped,
              got.size(), p);
  EXPECT_GE(p, 100.0);
}

TEST(StepCacheGolden, FirstBlockMatchesDiffusersFirstBlockCache) {
  StepCacheSettings c;
  c.kind = StepCacheKind::kFirstBlock;
  check_against_golden(c, "first_block", "frames_first_block");
}

TEST(StepCacheGolden, TeaCacheMatchesTheReferenceDecisions) {
  StepCacheSettings c;
  c.kind = StepCacheKind::kTeaCache;
  c.coefficients = golden()["teacache"]["coefficients"].get<std::vector<double>>();
  check_against_golden(c, "teacache", "frames_teacache");
}

// The calibration points (e0 and output changes per step and branch) as the reference
// measures them, and the least-squares fit as numpy.polyfit makes it.
TEST(StepCacheGolden, CalibrationPointsAndFitMatchNumpy) {
  TempDir dir;
  RenderRequest r = golden_request(dir);
  r.cache.observe = true;
  StageTimes t;
  Progress progress(false, false);
  const EncodedPrompts text = tiny_pipeline().encode_prompts(r, t);
  DenoiseStats stats;
  tiny_pipeline().denoise(r, text, progress, nullptr, t, nullptr, {}, &stats);
  const std::vector<double> px = golden()["calibration"]["x"].get<std::vector<double>>();
  const std::vector<double> py = golden()["calibration"]["y"].get<std::vector<double>>();
  const std::vector<int> steps = golden()["calibration"]["steps"].get<std::vector<int>>();
  std::vector<double> xs, ys;
  size_t k = 0;
  for (const StepCacheRecord& rec : stats.records) {
    if (rec.step < golden()["retain_steps"].get<int>()) continue;
    ASSERT_LT(k, steps.size());
    EXPECT_EQ(rec.step, steps[k]);
    EXPECT_NEAR(rec.distance, px[k], 1e-4 * px[k]) << "e0 change at step " << rec.step;
    EXPECT_NEAR(rec.output_distance, py[k], 1e-4 * py[k]) << "output change at step " << rec.step;
    xs.push_back(px[k]);
    ys.push_back(py[k]);
    ++k;
  }
  EXPECT_EQ(k, steps.size());
  const std::vector<double> c = fit_polynomial(xs, ys, 4);
  const std::vector<double> want = golden()["calibration"]["coefficients"].get<std::vector<double>>();
  ASSERT_EQ(c.size(), 5u);
  for (size_t i = 0; i < 5; ++i) EXPECT_NEAR(c[i], want[i], 1e-6 * std::fabs(want[i])) << "coefficient " << i;
}

TEST(StepCacheGolden, FitRecoversAKnownPolynomial) {
  const std::vector<double> p = {120.0, -35.0, 4.5, 0.3, -0.01};
  std::vector<double> x, y;
  for (int i = 0; i < 40; ++i) {
    x.push_back(0.004 * (i + 1) + 0.0001 * ((i * 7) % 5));
    y.push_back(eval_polynomial(p, x.back()));
  }
  const std::vector<double> c = fit_polynomial(x, y, 4);
  for (size_t i = 0; i < 5; ++i) EXPECT_NEAR(c[i], p[i], 1e-6 * std::fabs(p[i])) << i;
  EXPECT_THROW(fit_polynomial({0.1, 0.2, 0.2, 0.1}, {1, 2, 3, 4}, 4), Error);
}

// ---- through the program ----------------------------------------------------------------------

std::vector<std::string> gen_args(const TempDir& dir, const std::string& model, int steps) {
  return {"generate", "--model", model, "-p", "a red ball", "--size", "16x16", "--frames", "1",
          "--steps", std::to_string(steps), "--seed", "3", "-o", dir.file("a.mp4")};
}

json done_event(const std::string& out) {
  std::stringstream ss(out);
  for (std::string line; std::getline(ss, line);) {
    json j = json::parse(line, nullptr, false);
    if (j.is_object() && j.value("event", "") == "done") return j;
  }
  return json();
}

TEST(StepCacheCli, DoneEventCountsForwardsAndSummarySaysStepsReused) {
  TempDir dir;
  std::vector<std::string> a = gen_args(dir, kTiny, 6);
  a.insert(a.end(), {"--json", "--cache", "first-block:1000"});  // everything after step 0 reused
  RunResult r = run_t2v(a);
  ASSERT_EQ(r.code, 0) << r.err;
  json done = done_event(r.out);
  ASSERT_TRUE(done.is_object()) << r.out;
  EXPECT_EQ(done["dit_forwards"], 2);
  EXPECT_EQ(done["dit_forwards_skipped"], 10);
  a = gen_args(dir, kTiny, 6);
  a.insert(a.end(), {"--overwrite", "--cache", "first-block:1000"});
  r = run_t2v(a);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("2 DiT forwards); cache first-block:1000 reused 5 of 6 steps (10 forwards skipped)"),
            std::string::npos)
      << r.err;
  a = gen_args(dir, kTiny, 3);
  a.insert(a.end(), {"--json", "--overwrite", "--cfg", "1"});  // uncached, one branch
  r = run_t2v(a);
  ASSERT_EQ(r.code, 0) << r.err;
  done = done_event(r.out);
  EXPECT_EQ(done["dit_forwards"], 3);
  EXPECT_EQ(done["dit_forwards_skipped"], 0);
}

TEST(StepCacheCli, CalibrateWritesCoefficientsThatTeaCacheThenUses) {
  TempDir dir;
  fs::copy(kTiny, dir.file("m"), fs::copy_options::recursive);
  std::ofstream(dir.file("m/t2v.json")) << R"({"width": 16, "height": 16, "frames": 1, "steps": 9})";
  write_text(dir.file("prompts.txt"), "# two prompts\na red ball\n\na blue box moving up\n");
  RunResult r = run_t2v({"calibrate-cache", "--model", dir.file("m"), "--prompts", dir.file("prompts.txt"), "--steps",
                         "10", "--write"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::ifstream f(dir.file("m/t2v.json"));
  const nlohmann::ordered_json j = nlohmann::ordered_json::parse(f);
  ASSERT_TRUE(j.contains("teacache")) << j.dump();
  EXPECT_EQ(j["teacache"]["coefficients"].size(), 5u);
  EXPECT_NE(j["teacache"]["calibration"].get<std::string>().find("2 prompts, 10 steps"), std::string::npos);
  EXPECT_EQ(j.begin().key(), "width") << "the file's keys keep their order";
  EXPECT_EQ(j["steps"], 9);
  RunResult g = run_t2v({"generate", "--model", dir.file("m"), "-p", "a red ball", "--seed", "1", "--json", "--cache",
                         "teacache:0.5", "-o", dir.file("t.mp4")});
  ASSERT_EQ(g.code, 0) << g.err;
  const json done = done_event(g.out);
  EXPECT_EQ(done["dit_forwards"].get<int>() + done["dit_forwards_skipped"].get<int>(), 18);
  EXPECT_GE(done["dit_forwards"].get<int>(), 10) << "the 5 retained steps of both branches";
}

TEST(StepCacheCli, BenchTimesTheCachedSteps) {
  for (const char* kind : {"teacache", "first-block"}) {
    RunResult r = run_t2v({"bench", "--json", "--layers", "2", "--size", "16x16", "--frames", "1", "--repeat", "1",
                           "--no-vae", "--no-text-encoder", "--cache", kind});
    ASSERT_EQ(r.code, 0) << r.err;
    const json j = json::parse(r.out);
    ASSERT_TRUE(j.contains("dit_cache")) << r.out;
    const json& c = j["dit_cache"];
    EXPECT_EQ(c["kind"], kind);
    for (const char* k : {"computed_step_ms", "skipped_step_ms", "check_ms"}) EXPECT_GT(c[k].get<double>(), 0) << k;
    EXPECT_LT(c["check_share_of_step"].get<double>(), 1.0);
  }
}

// docs/bad_inputs.md: one line, exit 64 (78 for a bad t2v.json), nothing rendered.
TEST(StepCacheCli, BadCacheOptionsAreOneLineUsageErrors) {
  for (const char* bad : {"bogus", "teacache:-0.1", "teacache:nan", "first-block:inf", "first-block:", "none:0.1",
                          "teacache:0.1x", "TeaCache"}) {
    TempDir dir;
    std::vector<std::string> a = gen_args(dir, kTiny, 2);
    a.insert(a.end(), {"--cache", bad});
    RunResult r = run_t2v(a);
    EXPECT_EQ(r.code, 64) << bad << ": " << r.err;
    EXPECT_NE(r.err.find("--cache"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_FALSE(fs::exists(dir.file("a.mp4")));
  }
  RunResult b = run_t2v({"bench", "--dry-run", "--cache", "sometimes"});
  EXPECT_EQ(b.code, 64) << b.err;
}

TEST(StepCacheCli, TeaCacheWithoutCoefficientsIsAUsageErrorBeforeRendering) {
  TempDir dir;
  std::vector<std::string> a = gen_args(dir, kTiny, 2);
  a.insert(a.end(), {"--cache", "teacache"});
  RunResult r = run_t2v(a);
  EXPECT_EQ(r.code, 64) << r.err;
  EXPECT_NE(r.err.find("no TeaCache coefficients"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("calibrate-cache"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_FALSE(fs::exists(dir.file("a.mp4")));
  // batch: checked for every item before the first renders
  write_text(dir.file("list.jsonl"), "{\"prompt\": \"a red ball\"}\n{\"prompt\": \"a blue box\", \"cache\": \"teacache\"}\n");
  RunResult br = run_t2v(batch_args(dir.file("list.jsonl"), dir.file("out"), {"--model", kTiny}));
  EXPECT_EQ(br.code, 64) << br.err;
  EXPECT_NE(br.err.find("list.jsonl:2"), std::string::npos) << br.err;
  EXPECT_FALSE(fs::exists(dir.file("out/1.mp4"))) << "nothing rendered";
}

TEST(StepCacheCli, BatchCacheOptionAndItemField) {
  TempDir dir;
  write_text(dir.file("bad.jsonl"), "{\"prompt\": \"a red ball\", \"cache\": \"sometimes\"}\n");
  RunResult r = run_t2v(batch_args(dir.file("bad.jsonl"), dir.file("o1"), {"--model", kTiny}));
  EXPECT_EQ(r.code, 65) << r.err;  // an invalid line of the list, as for every other field
  EXPECT_NE(r.err.find("\"cache\" 'sometimes' is unknown"), std::string::npos) << r.err;
  RunResult o = run_t2v(batch_args(dir.file("bad.jsonl"), dir.file("o2"), {"--model", kTiny, "--cache", "x:1"}));
  EXPECT_EQ(o.code, 64) << o.err;
  write_text(dir.file("ok.jsonl"), "{\"prompt\": \"a red ball\", \"id\": \"a\", \"cache\": \"first-block:1000\"}\n"
                                   "{\"prompt\": \"a red ball\", \"id\": \"b\"}\n");
  RunResult g = run_t2v(batch_args(dir.file("ok.jsonl"), dir.file("o3"), {"--model", kTiny, "--steps", "3"}));
  ASSERT_EQ(g.code, 0) << g.err;
  const std::vector<json> m = manifest_lines(dir.file("o3"));
  ASSERT_EQ(m.size(), 2u);
  for (const json& rec : m) {
    SCOPED_TRACE(rec.dump());
    if (rec["id"] == "a") {
      EXPECT_EQ(rec["settings"]["cache"], "first-block:1000");
    } else {
      EXPECT_FALSE(rec["settings"].contains("cache"));
    }
  }
}

TEST(StepCacheCli, MalformedTeaCacheEntryInT2vJsonIsAConfigError) {
  for (const char* bad :
       {R"({"teacache": [1, 2, 3, 4, 5]})", R"({"teacache": {"coefficients": [1, 2]}})",
        R"({"teacache": {"coefficients": [1, 2, 3, 4, "5"]}})", R"({"teacache": {"coefficients": [1, 2, 3, 4, 5], "x": 1}})",
        R"({"teacache": {}})"}) {
    TempDir dir;
    fs::copy(kTiny, dir.file("m"), fs::copy_options::recursive);
    std::ofstream(dir.file("m/t2v.json")) << bad;
    RunResult r = run_t2v({"generate", "--model", dir.file("m"), "-p", "a red ball", "--cache", "teacache", "-o",
                           dir.file("c.mp4")});
    EXPECT_EQ(r.code, 78) << bad << "\n" << r.err;
    EXPECT_NE(r.err.find("t2v.json"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_FALSE(fs::exists(dir.file("c.mp4")));
  }
}

}  // namespace
}  // namespace t2v::test
