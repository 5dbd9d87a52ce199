#include "app/bench.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/device.h"
#include "app/engine.h"
#include "app/options.h"
#include "core/error.h"
#include "core/philox.h"
#include "core/weights.h"
#include "diffusion/step_cache.h"
#include "diffusion/wan_dit.h"
#include "diffusion/wan_dit_config.h"
#include "diffusion/wan_dit_weights.h"
#include "kernels/ops.h"
#include "text_encoder/umt5.h"
#include "vae/wan_vae.h"
#include "vae/wan_vae_config.h"

namespace t2v {

namespace {

using Clock = std::chrono::steady_clock;

constexpr double kGB = 1e9;

// FLOPs of a umT5 encoder forward over B sequences of L tokens: the q/k/v/o and gated
// FFN GEMMs (2·M·N·K each) and attention (QKᵀ and PV, 4·L²·inner per sequence).
double umt5_flops(const UMT5Config& c, int64_t B, int64_t L) {
  const double tok = static_cast<double>(B * L);
  const double per_layer = 2.0 * tok * c.d_model * c.inner_dim() * 4 + 4.0 * B * L * L * c.inner_dim() +
                           2.0 * tok * c.d_model * c.d_ff * 3;
  return per_layer * static_cast<double>(c.num_layers);
}

// CPU time of the whole process (all threads), seconds. On a shared machine the
// wall time depends on the other load; the CPU time much less.
double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// The step cache on the same inputs: a step it computes (the check and the residual it
// keeps, on top of the forward), a step it skips, and the check alone.
nlohmann::json bench_step_cache(const BenchOptions& o, const WanDiT& dit, const Tensor& x, const Tensor& ts,
                                const Tensor& ctx, double plain_s) {
  StepCacheSettings s = o.cache;
  if (s.kind == StepCacheKind::kTeaCache) s.coefficients = {1.0, 0.0};  // the cost does not depend on them
  auto time_steps = [&](StepCacheSettings st, int first_timed) {
    StepCache cache(st, 2);
    std::vector<double> t;
    for (int r = 0; r < first_timed + o.repeat; ++r) {
      const auto t0 = Clock::now();
      cache.forward(dit, x, ts, ctx, r).to(Device::CPU);  // synchronises
      if (r >= first_timed) t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    }
    return std::pair{median(t), cache.forwards_skipped()};
  };
  StepCacheSettings compute = s, skip = s;
  compute.threshold = -1;        // every distance is above: every step computed, every check made
  compute.retain_steps = 1;
  skip.threshold = 1e30;         // every step after the first reuses the residual
  skip.retain_steps = 1;
  const auto [computed_s, computed_skips] = time_steps(compute, 1);
  const auto [skipped_s, skipped_skips] = time_steps(skip, 1);
  T2V_ASSERT(computed_skips == 0 && skipped_skips == 2 * o.repeat, "bench cache: {} / {} skips", computed_skips,
             skipped_skips);
  // The check alone: the relative L1 change of the signal the kind decides on, both branches.
  const WanDiTEmbedded in = dit.embed(x, ts, ctx);
  const Tensor signal = s.kind == StepCacheKind::kTeaCache ? in.e0 : in.h;
  const Tensor other = ops::scale(signal, 1.01f);
  std::vector<double> ct;
  for (int r = 0; r < o.repeat + 1; ++r) {
    const auto t0 = Clock::now();
    for (int64_t b = 0; b < 2; ++b) relative_l1_rows(signal.narrow0(b, 1), other.narrow0(b, 1));
    if (r > 0) ct.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  const double check_s = median(ct);
  return {{"kind", cache_kind_name(s.kind)},
          {"computed_step_ms", computed_s * 1e3},
          {"skipped_step_ms", skipped_s * 1e3},
          {"check_ms", check_s * 1e3},
          {"computed_step_overhead_ms", (computed_s - plain_s) * 1e3},
          {"check_share_of_step", check_s / plain_s}};
}

}  // namespace

int run_bench(const BenchOptions& o) {
  std::vector<std::string> presets = WanDiTConfig::preset_names();
  presets.push_back("wan2.2-t2v-a14b");  // two experts of the 14B shape; one runs per step
  if (std::find(presets.begin(), presets.end(), o.model) == presets.end())
    throw Error(kExitUsage, fmt::format("--model '{}' is not a known preset", o.model),
                fmt::format("use one of: {}", fmt::join(presets, ", ")));
  const bool experts = o.model == "wan2.2-t2v-a14b" || o.model == "wan2.2-i2v-a14b";
  WanDiTConfig cfg = WanDiTConfig::preset(o.model == "wan2.2-t2v-a14b" ? "wan2.1-t2v-14b" : o.model);
  compute_dtype_for(o.dtype, o.device);  // a --dtype the device does not run is 64, --dry-run or not
  // TI2V-5B decodes with the Wan2.2 VAE (16x spatial, 48 channels); the rest with Wan2.1's.
  const bool ti2v = cfg.ti2v();
  const int64_t stride = ti2v ? 16 : 8, z = ti2v ? 48 : 16;
  int W = 0, H = 0;
  parse_size(o.size, &W, &H);
  if (W % (2 * stride) || H % (2 * stride) || W <= 0 || H <= 0)
    throw Error(kExitUsage, fmt::format("--size {} must be multiples of {}", o.size, 2 * stride));
  if (o.frames <= 0 || (o.frames - 1) % 4) throw Error(kExitUsage, fmt::format("--frames {} must be 4k+1", o.frames));
  if (o.steps < 1) throw Error(kExitUsage, "--steps must be >= 1");
  if (o.layers < 0 || o.layers > cfg.num_layers)
    throw Error(kExitUsage, fmt::format("--layers {} is outside 0..{}", o.layers, cfg.num_layers));
  const int64_t T = (o.frames - 1) / 4 + 1, h = H / stride, w = W / stride;
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
  j["latent"] = {z, T, h, w};
  if (experts) j["experts"] = "two of this shape, one per step: per-step cost as one, weights twice";
  j["tokens"] = tokens;
  j["image_tokens"] = wan_dit_image_tokens(cfg);  // image-to-video: CLIP tokens beside the 512 text rows
  j["dit_step_flops"] = full_flops;
  j["dit_step_floor_ms"] = floor_s * 1e3;
  j["video_floor_s"] = floor_s * o.steps;
  j["peak_tflops_assumed"] = o.peak_tflops;

  if (!o.json) {
    fmt::print("t2v bench: {} at {}x{}x{} ({} latent frames, {} tokens{})\n", o.model, W, H, o.frames, T, tokens,
               cfg.image_to_video() ? fmt::format(", {} image tokens", wan_dit_image_tokens(cfg)) : "");
    fmt::print("  DiT step with CFG (batch 2): {:.4g} FLOP; floor {:.1f} ms at {:.0f} TFLOP/s; {} steps >= {:.1f} s\n",
               full_flops, floor_s * 1e3, o.peak_tflops, o.steps, floor_s * o.steps);
  }
  if (o.dry_run) {
    if (o.json) fmt::print("{}\n", j.dump(2));
    return 0;
  }

  const Engine engine(EngineOptions{.device = o.device, .dtype = o.dtype});
  const Device dev = engine.device();
  const DType compute = engine.dtype();

  // ---- text encode ---------------------------------------------------------------------------
  // The prompt and the negative prompt, 128 tokens each (a long prompt; Wan encodes each at its
  // own length). Off CUDA (the CPU, the test device: host memory) the embedding table is cut to
  // 4096 rows: a gather costs the same from any table, and the real one is 4.2 GB in fp32.
  if (o.text_encoder) {
    UMT5Config tcfg = UMT5Config::preset("umt5-xxl");
    const int64_t te_layers = tcfg.num_layers;
    if (o.layers > 0) tcfg.num_layers = std::min<int64_t>(o.layers, tcfg.num_layers);
    if (dev != Device::CUDA) tcfg.vocab_size = 4096;
    reset_peak_memory(dev);
    RandomSource weights(5000, dev, compute);  // random weights (core/weights.h)
    UMT5Encoder te = UMT5Encoder::bind(WeightScope(weights), tcfg);
    const int64_t B = 2, L = 128;
    Tensor ids = Tensor::empty({B, L}, DType::I64);
    for (int64_t k = 0; k < B * L; ++k) ids.data<int64_t>()[k] = (k * 7919 + 13) % tcfg.vocab_size;
    std::vector<double> tt;
    for (int r = 0; r < o.repeat + 1; ++r) {
      auto t0 = Clock::now();
      te.forward(ids, Tensor()).to(Device::CPU);  // synchronises
      if (r > 0) tt.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    }
    const double te_s = median(tt), te_flops = umt5_flops(tcfg, B, L);
    j["text_encode"] = {{"layers_run", tcfg.num_layers}, {"tokens", B * L},     {"median_ms", te_s * 1e3},
                        {"flops", te_flops},             {"tflops", te_flops / te_s / 1e12},
                        {"peak_memory_gb", peak_memory_bytes(dev) / kGB}};
    if (tcfg.num_layers < te_layers)
      j["text_encode"]["projected_full_ms"] = te_s * 1e3 * static_cast<double>(te_layers) / tcfg.num_layers;
  }

  // ---- DiT step with CFG -------------------------------------------------------------------
  reset_peak_memory(dev);
  RandomSource dit_weights(1, dev, compute);
  WanDiT dit(run_cfg, WanDiTWeights::bind(WeightScope(dit_weights), run_cfg));
  Tensor x = randn_philox({2, cfg.in_dim, T, h, w}, 7).to(dev);
  Tensor ctx = ops::scale(randn_philox({2, cfg.text_len, cfg.text_dim}, 8), 0.1f).to(dev);
  Tensor ts = Tensor::from_floats({999.0f, 999.0f}, {2});
  // Image-to-video: CLIP features of the input image(s) (x already has the 36 channels).
  Tensor image_features;
  if (cfg.image_to_video())
    image_features = randn_philox({2, wan_dit_image_tokens(cfg), cfg.image_dim}, 10).to(dev);
  std::vector<double> times, cpu_times;
  for (int r = 0; r < o.repeat + 1; ++r) {  // first run is warm-up
    auto t0 = Clock::now();
    const double c0 = process_cpu_seconds();
    Tensor v = dit.forward(x, ts, ctx, image_features);
    v.to(Device::CPU);  // synchronises
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (r > 0) {
      times.push_back(s);
      cpu_times.push_back(process_cpu_seconds() - c0);
    }
    if (!o.json) fmt::print(stderr, "  dit run {}: {:.3f} s{}\n", r, s, r == 0 ? " (warm-up)" : "");
  }
  double dit_s = median(times);
  j["dit"] = {{"layers_run", run_cfg.num_layers}, {"median_ms", dit_s * 1e3}, {"flops", run_flops},
              {"tflops", run_flops / dit_s / 1e12}, {"device", device_option_name(dev)},
              {"median_cpu_ms", median(cpu_times) * 1e3},
              {"peak_memory_gb", peak_memory_bytes(dev) / kGB}};
  if (o.layers > 0) j["dit"]["projected_full_step_ms"] = dit_s * 1e3 * cfg.num_layers / run_cfg.num_layers;
  if (o.cache.kind != StepCacheKind::kNone) j["dit_cache"] = bench_step_cache(o, dit, x, ts, ctx, dit_s);

  // ---- VAE decode -----------------------------------------------------------------------------
  if (o.vae) {
    reset_peak_memory(dev);
    WanVAEConfig vcfg = WanVAEConfig::preset(ti2v ? "wan2.2-vae" : "wan2.1-vae");
    RandomSource vae_weights(1000, dev, engine.vae_dtype());
    WanVAEParts parts;
    parts.encoder = false;
    WanVAE vae = WanVAE::bind(WeightScope(vae_weights), vcfg, parts);
    Tensor mu = randn_philox({1, vcfg.z_dim, T, h, w}, 9).to(dev);
    auto t0 = Clock::now();
    const double c0 = process_cpu_seconds();
    int64_t frames_out = 0;
    vae.decode_stream(mu, [&](const Tensor& f) { frames_out += f.size(2); });
    double vs = std::chrono::duration<double>(Clock::now() - t0).count();
    j["vae_decode"] = {{"ms", vs * 1e3},
                       {"cpu_ms", (process_cpu_seconds() - c0) * 1e3},
                       {"frames", frames_out},
                       {"peak_memory_gb", peak_memory_bytes(dev) / kGB}};
  }
  const char* mem_kind = dev == Device::CPU ? "host RSS" : "device memory in use";
  double peak_gb = 0;
  for (const char* stage : {"text_encode", "dit", "vae_decode"})
    if (j.contains(stage)) peak_gb = std::max(peak_gb, j[stage]["peak_memory_gb"].get<double>());
  j["peak_memory_gb"] = peak_gb;
  j["peak_memory_kind"] = mem_kind;

  if (o.json) {
    fmt::print("{}\n", j.dump(2));
  } else {
    if (o.text_encoder) {
      const nlohmann::json& t = j["text_encode"];
      fmt::print("  text encode (umT5-XXL, {} of 24 blocks, 2 x 128 tokens): median {:.1f} ms, {:.3f} TFLOP/s{}; "
                 "peak {:.2f} GB\n",
                 t["layers_run"].get<int64_t>(), t["median_ms"].get<double>(), t["tflops"].get<double>(),
                 t.contains("projected_full_ms")
                     ? fmt::format(" (all blocks projected {:.1f} ms)", t["projected_full_ms"].get<double>())
                     : "",
                 t["peak_memory_gb"].get<double>());
    }
    fmt::print("  DiT step ({} of {} blocks, {}): median {:.1f} ms, {:.3f} TFLOP/s{}\n", run_cfg.num_layers,
               cfg.num_layers, device_option_name(dev), dit_s * 1e3, run_flops / dit_s / 1e12,
               o.layers > 0 ? fmt::format(" (full step projected {:.1f} s)", dit_s * cfg.num_layers / run_cfg.num_layers)
                            : "");
    if (o.vae)
      fmt::print("  VAE decode of {} latent frames: {:.1f} ms ({} frames); peak {:.2f} GB\n", T,
                 double(j["vae_decode"]["ms"]), int64_t(j["vae_decode"]["frames"]),
                 double(j["vae_decode"]["peak_memory_gb"]));
    if (j.contains("dit_cache")) {
      const nlohmann::json& c = j["dit_cache"];
      fmt::print("  step cache {}: computed step {:.1f} ms ({:+.1f} ms against the plain step), skipped step {:.1f} "
                 "ms; the check alone {:.3f} ms ({:.3f}% of a step)\n",
                 c["kind"].get<std::string>(), c["computed_step_ms"].get<double>(),
                 c["computed_step_overhead_ms"].get<double>(), c["skipped_step_ms"].get<double>(),
                 c["check_ms"].get<double>(), 100 * c["check_share_of_step"].get<double>());
    }
    fmt::print("  DiT step peak {:.2f} GB; peak over the stages ({}): {:.2f} GB\n", double(j["dit"]["peak_memory_gb"]),
               mem_kind, peak_gb);
  }
  return 0;
}

}  // namespace t2v
