#include "app/calibrate.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/engine.h"
#include "app/model_defaults.h"
#include "app/pipeline.h"
#include "app/progress.h"
#include "core/error.h"
#include "video_io/atomic_file.h"

namespace t2v {

namespace fs = std::filesystem;

std::vector<double> fit_polynomial(const std::vector<double>& x, const std::vector<double>& y, int degree) {
  const size_t n = x.size(), k = static_cast<size_t>(degree) + 1;
  if (std::set<double>(x.begin(), x.end()).size() < k)
    throw Error(kExitDataErr, fmt::format("{} distinct points cannot fix a polynomial of degree {}", n, degree),
                "use more prompts or more steps");
  // In t = x / s (s = max |x|), the normal equations are well conditioned enough for
  // long double at degree 4; the coefficients are scaled back to x afterwards.
  double s = 0;
  for (double v : x) s = std::max(s, std::fabs(v));
  std::vector<std::vector<long double>> a(k, std::vector<long double>(k + 1, 0));
  for (size_t i = 0; i < n; ++i) {
    std::vector<long double> pw(k, 1);
    for (size_t p = 1; p < k; ++p) pw[p] = pw[p - 1] * (x[i] / s);
    for (size_t r = 0; r < k; ++r) {
      for (size_t c = 0; c < k; ++c) a[r][c] += pw[r] * pw[c];
      a[r][k] += pw[r] * y[i];
    }
  }
  for (size_t c = 0; c < k; ++c) {  // Gauss-Jordan with partial pivoting
    size_t piv = c;
    for (size_t r = c + 1; r < k; ++r)
      if (std::fabs(a[r][c]) > std::fabs(a[piv][c])) piv = r;
    std::swap(a[c], a[piv]);
    for (size_t r = 0; r < k; ++r) {
      if (r == c) continue;
      const long double f = a[r][c] / a[c][c];
      for (size_t q = c; q <= k; ++q) a[r][q] -= f * a[c][q];
    }
  }
  std::vector<double> out(k);  // highest power first
  for (size_t p = 0; p < k; ++p)
    out[k - 1 - p] = static_cast<double>(a[p][k] / a[p][p] / std::pow(static_cast<long double>(s), p));
  return out;
}

namespace {

std::vector<std::string> read_prompts(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw Error(kExitNoInput, fmt::format("cannot read --prompts {}", path), "name a text file, one prompt a line");
  std::vector<std::string> out;
  std::string line;
  while (std::getline(f, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    out.push_back(line);
  }
  if (out.empty()) throw Error(kExitDataErr, fmt::format("--prompts {} has no prompts", path), "one prompt a line");
  return out;
}

// t2v.json with "teacache" set, written through a temp file and renamed (a symlink at
// the path is read through but replaced, never written through).
void store_coefficients(const std::string& folder, const nlohmann::ordered_json& teacache) {
  const std::string path = (fs::path(folder) / "t2v.json").string();
  nlohmann::ordered_json j = nlohmann::ordered_json::object();  // the file's key order is kept
  std::error_code ec;
  if (fs::exists(path, ec)) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    j = nlohmann::ordered_json::parse(ss.str(), nullptr, false);
    if (j.is_discarded() || !j.is_object())
      throw Error(kExitConfig, fmt::format("'{}' is not a JSON object", path), "fix or delete the file");
  }
  j["teacache"] = teacache;
  const std::string text = j.dump(2) + "\n";
  write_file_atomic(path, text.data(), text.size(), true);
}

}  // namespace

int run_calibrate_cache(CalibrateOptions& o) {
  GenerateOptions& g = o.gen;
  const std::vector<std::string> prompts = read_prompts(o.prompts);
  for (const std::string& w : validate_generate_options(g)) fmt::print(stderr, "t2v: warning: {}\n", w);
  Engine engine(engine_options(g));
  const ModelPaths& paths = engine.resolve_model(g);
  if (!paths.any()) throw Error(kExitNoInput, "no model to calibrate", "pass --model FOLDER");
  Pipeline& pipeline = engine.pipeline();
  RenderRequest r = render_request(g, o.seed);
  r.cache = StepCacheSettings{};
  r.cache.observe = true;
  r.quiet = true;
  const int retain = r.cache.retain_steps;
  std::vector<double> xs, ys;
  for (size_t k = 0; k < prompts.size(); ++k) {
    r.prompt = prompts[k];
    r.seed = o.seed + k;
    StageTimes t;
    Progress progress(false, false);
    const EncodedPrompts text = pipeline.encode_prompts(r, t);
    DenoiseStats stats;
    pipeline.denoise(r, text, progress, nullptr, t, nullptr, {}, &stats);
    // The steps TeaCache decides on: after the retained ones.
    for (const StepCacheRecord& rec : stats.records)
      if (rec.step >= retain && rec.distance >= 0 && rec.output_distance >= 0) {
        xs.push_back(rec.distance);
        ys.push_back(rec.output_distance);
      }
    fmt::print(stderr, "t2v: calibrate [{}/{}] {} steps in {:.1f} s: \"{}\"\n", k + 1, prompts.size(), r.steps,
               t.denoise_s, r.prompt);
  }
  const std::vector<double> c = fit_polynomial(xs, ys, 4);
  double se = 0, sy = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const double d = eval_polynomial(c, xs[i]) - ys[i];
    se += d * d;
    sy += ys[i];
  }
  const double rms = std::sqrt(se / static_cast<double>(xs.size()));
  const auto [xmin, xmax] = std::minmax_element(xs.begin(), xs.end());
  const std::string note =
      fmt::format("t2v calibrate-cache: {} prompts, {} steps, {}x{}x{}, cfg {}, shift {}, seed {}; {} points, "
                  "x in [{:.3g}, {:.3g}], mean y {:.4g}, rms residual {:.3g}",
                  prompts.size(), r.steps, r.width, r.height, r.frames, r.cfg, r.shift, o.seed, xs.size(), *xmin,
                  *xmax, sy / static_cast<double>(xs.size()), rms);
  const nlohmann::ordered_json teacache = {{"coefficients", c}, {"calibration", note}};
  fmt::print("{}\n", nlohmann::ordered_json{{"teacache", teacache}}.dump(2));
  if (o.write) {
    const std::string folder = model_defaults_folder(g);
    if (folder.empty()) throw Error(kExitUsage, "--write needs --model FOLDER", "name the model folder to write to");
    store_coefficients(folder, teacache);
    fmt::print(stderr, "t2v: stored the coefficients in {}\n", (fs::path(folder) / "t2v.json").string());
  }
  return 0;
}

}  // namespace t2v
