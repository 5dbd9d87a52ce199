#include "app/latent_preview.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "video_io/atomic_file.h"
#include "video_io/preview.h"

namespace t2v {

namespace fs = std::filesystem;

LatentRgbMap wan21_latent_rgb_map() {
  // ComfyUI comfy/latent_formats.py, class Wan21: latent_rgb_factors (rows: latent channels,
  // columns: R, G, B) and latent_rgb_factors_bias, for the normalised Wan2.1 VAE latents.
  LatentRgbMap m;
  m.factors = {
      {-0.1299, -0.1692, 0.2932}, {0.0671, 0.0406, 0.0442},   {0.3568, 0.2548, 0.1747},    {0.0372, 0.2344, 0.1420},
      {0.0313, 0.0189, -0.0328},  {0.0296, -0.0956, -0.0665}, {-0.3477, -0.4059, -0.2925}, {0.0166, 0.1902, 0.1975},
      {-0.0412, 0.0267, -0.1364}, {-0.1293, 0.0740, 0.1636},  {0.0680, 0.3019, 0.1128},    {0.0032, 0.0581, 0.0639},
      {-0.1251, 0.0927, 0.1699},  {0.0060, -0.0633, 0.0005},  {0.3477, 0.2275, 0.2950},    {0.1984, 0.0913, 0.1861}};
  m.bias = {-0.1835, -0.0868, -0.3360};
  m.source = "the Wan2.1 table of ComfyUI (comfy/latent_formats.py, Wan21)";
  return m;
}

LatentRgbMap read_latent_rgb_map(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(kExitConfig, fmt::format("cannot read '{}'", path), "check its permissions or delete it");
  std::stringstream ss;
  ss << f.rdbuf();
  const nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, false);
  auto bad = [&](const std::string& what) {
    return Error(kExitConfig, fmt::format("'{}': {}", path, what),
                 "write it with tools/fit_latent_rgb.py, or delete it to use the built-in Wan2.1 table");
  };
  if (j.is_discarded() || !j.is_object()) throw bad("not a JSON object");
  auto rgb = [&](const nlohmann::json& v, const std::string& key) {
    if (!v.is_array() || v.size() != 3) throw bad(fmt::format("\"{}\" must be [r, g, b]", key));
    std::array<double, 3> out{};
    for (size_t k = 0; k < 3; ++k) {
      if (!v[k].is_number() || !std::isfinite(v[k].get<double>()))
        throw bad(fmt::format("\"{}\"[{}] is not a finite number", key, k));
      out[k] = v[k].get<double>();
    }
    return out;
  };
  if (!j.contains("factors") || !j["factors"].is_array() || j["factors"].empty() || j["factors"].size() > 1024)
    throw bad("\"factors\" must be a list of [r, g, b], one per latent channel");
  LatentRgbMap m;
  for (size_t c = 0; c < j["factors"].size(); ++c)
    m.factors.push_back(rgb(j["factors"][c], fmt::format("factors[{}]", c)));
  if (j.contains("bias")) m.bias = rgb(j["bias"], "bias");
  m.source = path;
  return m;
}

LatentRgbMap find_latent_rgb_map(const std::string& model_folder, const std::string& vae_path) {
  std::error_code ec;
  std::vector<fs::path> folders;
  if (!model_folder.empty()) folders.emplace_back(model_folder);
  if (!vae_path.empty())
    folders.push_back(fs::is_directory(vae_path, ec) ? fs::path(vae_path) : fs::path(vae_path).parent_path());
  for (const fs::path& folder : folders) {
    const fs::path p = folder / "latent_rgb.json";
    if (fs::is_regular_file(p, ec)) return read_latent_rgb_map(p.string());
  }
  return wan21_latent_rgb_map();
}

std::vector<uint8_t> latent_frame_rgb(const float* sample, const float* velocity, double sigma, int C, int T, int h,
                                      int w, int t, const LatentRgbMap& map) {
  T2V_ASSERT(map.channels() == C && t >= 0 && t < T, "latent preview: map of {} channels, latents {}, frame {}/{}",
             map.channels(), C, t, T);
  const int64_t plane = int64_t{h} * w;
  std::vector<uint8_t> rgb(static_cast<size_t>(plane) * 3);
  for (int64_t p = 0; p < plane; ++p) {
    double acc[3] = {map.bias[0], map.bias[1], map.bias[2]};
    for (int c = 0; c < C; ++c) {
      const int64_t at = (int64_t{c} * T + t) * plane + p;
      const double x0 = double{sample[at]} - sigma * double{velocity[at]};
      for (int k = 0; k < 3; ++k) acc[k] += x0 * map.factors[c][k];
    }
    for (int k = 0; k < 3; ++k) {
      const double v = std::clamp(acc[k], -1.0, 1.0);
      rgb[static_cast<size_t>(p) * 3 + k] = static_cast<uint8_t>(std::lround((v + 1.0) * 127.5));
    }
  }
  return rgb;
}

LivePreview::LivePreview(LatentRgbMap map, std::string path, int every)
    : map_(std::move(map)), path_(std::move(path)), every_(std::max(1, every)) {}

std::optional<std::vector<uint8_t>> LivePreview::render_png(const DenoiseStep& s) {
  const Tensor& x = *s.sample;
  if (x.dim() != 5 || x.size(0) != 1) return std::nullopt;
  const int C = static_cast<int>(x.size(1)), T = static_cast<int>(x.size(2));
  const int h = static_cast<int>(x.size(3)), w = static_cast<int>(x.size(4));
  if (C != map_.channels()) {
    // Once per process: a server would say it for every job.
    static std::atomic<bool> said{false};
    if (!warned_ && !said.exchange(true))
      spdlog::warn(
          "live preview: the latent-to-RGB map ({}) has {} channels, this model's latents have {}; no "
          "previews (fit one with tools/fit_latent_rgb.py)",
          map_.source, map_.channels(), C);
    warned_ = true;
    return std::nullopt;
  }
  // Host copies: the observer only reads the loop's tensors.
  const Tensor xs = x.to(Device::CPU).to(DType::F32);
  const Tensor vs = s.velocity->to(Device::CPU).to(DType::F32);
  std::vector<std::vector<uint8_t>> frames;
  std::vector<RgbImage> views;
  for (int t : evenly_spaced_indices(T, 4))
    frames.push_back(latent_frame_rgb(xs.data<float>(), vs.data<float>(), s.sigma, C, T, h, w, t, map_));
  for (const auto& f : frames) views.push_back(RgbImage{f.data(), w, h, int64_t{w} * 3});
  const int long_side = std::clamp(std::max(h, w) * 8, 128, 256);
  const double side = long_side;
  const int tw = w >= h ? long_side : std::max(1, static_cast<int>(std::lround(side * w / h)));
  const int th = w >= h ? std::max(1, static_cast<int>(std::lround(side * h / w))) : long_side;
  return frame_strip_png(views, tw, th);
}

bool LivePreview::on_step(const DenoiseStep& s) {
  if (s.step % every_ != 0 && s.step != s.steps) return false;
  try {
    std::optional<std::vector<uint8_t>> png = render_png(s);
    if (!png) return false;
    write_file_atomic(path_, png->data(), png->size(), /*overwrite=*/true);
    last_step_ = s.step;
    return true;
  } catch (const std::exception& e) {
    if (!warned_) spdlog::warn("live preview {}: {}; the render goes on without it", path_, e.what());
    warned_ = true;
    return false;
  }
}

StepObserver LivePreview::observer() {
  return [this](const DenoiseStep& s) { on_step(s); };
}

}  // namespace t2v
