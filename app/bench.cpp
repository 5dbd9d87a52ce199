#include "app/bench.h"

#include <algorithm>
#include <chrono>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/device.h"
#include "app/options.h"
#include "core/error.h"
#include "core/philox.h"
#include "diffusion/wan_dit.h"
#include "diffusion/wan_dit_config.h"
#include "diffusion/wan_dit_weights.h"
#include "kernels/ops.h"
#include "vae/wan_vae.h"
#include "vae/wan_vae_config.h"

namespace t2v {

namespace {

using Clock = std::chrono::steady_clock;

// Peak resident memory of this process (CPU runs), from /proc/self/status.
double peak_rss_gb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) * 1024.0 / 1e9;
  return 0;
}

// Random weights: N(0, 1/fan_in) for matrices (keeps activations in range through
// many layers), ones for norm gains, small values for vectors. Indexed Philox, so
// every run and device sees the same numbers.
Tensor random_weight(const Shape& shape, uint64_t seed, DType dt, Device dev) {
  Tensor t = randn_philox(shape, seed);
  int64_t fan_in = shape.ndim() >= 2 ? shape.numel() / shape[0] : 1;
  float s = shape.ndim() >= 2 ? 1.0f / std::sqrt(static_cast<float>(fan_in)) : 0.02f;
  t = ops::scale(t, s);
  return t.to(dt).to(dev);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int run_bench(const BenchOptions& o) {
  std::optional<WanDiTConfig> preset = wan_dit_preset(o.model);
  if (!preset)
    throw Error(kExitUsage, fmt::format("--model '{}' is not a known preset", o.model),
                fmt::format("use one of: {}", fmt::join(wan_dit_preset_names(), ", ")));
  WanDiTConfig cfg = *preset;
  int W = 0, H = 0;
  parse_size(o.size, &W, &H);
  if (W % 16 || H % 16 || W <= 0 || H <= 0) throw Error(kExitUsage, fmt::format("--size {} must be multiples of 16", o.size));
  if (o.frames <= 0 || (o.frames - 1) % 4) throw Error(kExitUsage, fmt::format("--frames {} must be 4k+1", o.frames));
  if (o.steps < 1) throw Error(kExitUsage, "--steps must be >= 1");
  if (o.layers < 0 || o.layers > cfg.num_layers)
    throw Error(kExitUsage, fmt::format("--layers {} is outside 0..{}", o.layers, cfg.num_layers));
  const int64_t T = (o.frames - 1) / 4 + 1, h = H / 8, w = W / 8;
  const int64_t tokens = T * (h / 2) * (w / 2);

  WanDiTConfig run_cfg = cfg;
  if (o.layers > 0) run_cfg.num_layers = o.layers;
  const double full_flops = wan_dit_flops(cfg, T, h, w, 2).total();  // one CFG step = batch 2
  const double run_flops = wan_dit_flops(run_cfg, T, h, w, 2).total();
  const double floor_s = full_flops / (o.peak_tflops * 1e12);

  nlohmann::json j;
  j["model"] = o.model;
  j["size"] = o.size;
  j["frames"] = o.frames;
  j["latent"] = {16, T, h, w};
  j["tokens"] = tokens;
  j["dit_step_flops"] = full_flops;
  j["dit_step_floor_ms"] = floor_s * 1e3;
  j["video_floor_s"] = floor_s * o.steps;
  j["peak_tflops_assumed"] = o.peak_tflops;

  if (!o.json) {
    fmt::print("t2v bench: {} at {}x{}x{} ({} latent frames, {} tokens)\n", o.model, W, H, o.frames, T, tokens);
    fmt::print("  DiT step with CFG (batch 2): {:.4g} FLOP; floor {:.1f} ms at {:.0f} TFLOP/s; {} steps >= {:.1f} s\n",
               full_flops, floor_s * 1e3, o.peak_tflops, o.steps, floor_s * o.steps);
  }
  if (o.dry_run) {
    if (o.json) fmt::print("{}\n", j.dump(2));
    return 0;
  }

  Device dev = open_device(o.device);
  const DType compute = dev == Device::CUDA ? DType::BF16 : DType::F32;

  // ---- DiT step with CFG -------------------------------------------------------------------
  WanDiTWeights weights;
  uint64_t seed = 1;
  bind_wan_dit(weights, run_cfg, [&](const std::string&, const Shape& shape, WeightPrecision p) {
    return random_weight(shape, seed++ << 32, p == WeightPrecision::F32 ? DType::F32 : compute, dev);
  });
  WanDiT dit(run_cfg, std::move(weights));
  Tensor x = randn_philox({2, cfg.in_dim, T, h, w}, 7).to(dev);
  Tensor ctx = ops::scale(randn_philox({2, cfg.text_len, cfg.text_dim}, 8), 0.1f).to(dev);
  Tensor ts = Tensor::from_floats({999.0f, 999.0f}, {2});
  std::vector<double> times;
  for (int r = 0; r < o.repeat + 1; ++r) {  // first run is warm-up
    auto t0 = Clock::now();
    Tensor v = dit.forward(x, ts, ctx);
    v.to(Device::CPU);  // synchronises
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (r > 0) times.push_back(s);
    if (!o.json) fmt::print(stderr, "  dit run {}: {:.3f} s{}\n", r, s, r == 0 ? " (warm-up)" : "");
  }
  double dit_s = median(times);
  j["dit"] = {{"layers_run", run_cfg.num_layers}, {"median_ms", dit_s * 1e3}, {"flops", run_flops},
              {"tflops", run_flops / dit_s / 1e12}, {"device", o.device}};
  if (o.layers > 0) j["dit"]["projected_full_step_ms"] = dit_s * 1e3 * cfg.num_layers / run_cfg.num_layers;

  // ---- VAE decode -----------------------------------------------------------------------------
  if (o.vae) {
    WanVAEConfig vcfg = WanVAEConfig::preset("wan2.1-vae");
    uint64_t vseed = 1000;
    WanVAEParts parts;
    parts.encoder = false;
    WanVAE vae = WanVAE::bind(
        vcfg, [&](const VAEKey&, const Shape& shape) { return random_weight(shape, vseed++ << 32, DType::F32, dev); },
        parts);
    Tensor mu = randn_philox({1, vcfg.z_dim, T, h, w}, 9).to(dev);
    auto t0 = Clock::now();
    int64_t frames_out = 0;
    vae.decode_stream(mu, [&](const Tensor& f) { frames_out += f.size(2); });
    double vs = std::chrono::duration<double>(Clock::now() - t0).count();
    j["vae_decode"] = {{"ms", vs * 1e3}, {"frames", frames_out}};
  }
  j["peak_memory_gb"] = peak_rss_gb();

  if (o.json) {
    fmt::print("{}\n", j.dump(2));
  } else {
    fmt::print("  DiT step ({} of {} blocks, {}): median {:.1f} ms, {:.3f} TFLOP/s{}\n", run_cfg.num_layers,
               cfg.num_layers, o.device, dit_s * 1e3, run_flops / dit_s / 1e12,
               o.layers > 0 ? fmt::format(" (full step projected {:.1f} s)", dit_s * cfg.num_layers / run_cfg.num_layers)
                            : "");
    if (o.vae)
      fmt::print("  VAE decode of {} latent frames: {:.1f} ms ({} frames)\n", T, double(j["vae_decode"]["ms"]),
                 int64_t(j["vae_decode"]["frames"]));
    fmt::print("  peak memory (host RSS): {:.2f} GB\n", double(j["peak_memory_gb"]));
  }
  return 0;
}

}  // namespace t2v
