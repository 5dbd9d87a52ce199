// The timestep sinusoid, the FLOP count, and (opt-in) CPU timings of the forward.
#include <time.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <random>

#include <gtest/gtest.h>

#include "diffusion/wan_dit.h"
#include "dit_test_util.h"
#include "kernels/ops.h"

namespace t2v {
namespace {

Tensor random_tensor(const Shape& s, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(s.numel()));
  for (auto& x : v) x = nd(rng);
  return Tensor::from_floats(v, s);
}

TEST(DitOps, TimestepSinusoidOrderAndPrecision) {
  const Tensor s64 = wan_timestep_sinusoid({0.0f, 999.0f}, 256, TimestepSinusoid::Float64);
  const Tensor s32 = wan_timestep_sinusoid({0.0f, 999.0f}, 256, TimestepSinusoid::Float32Diffusers);
  const auto a = s64.to_vector(), b = s32.to_vector();
  // t = 0: cos = 1 first half, sin = 0 second half ([cos, sin] order).
  for (int k = 0; k < 128; ++k) EXPECT_EQ(a[static_cast<size_t>(k)], 1.0f);
  for (int k = 128; k < 256; ++k) EXPECT_EQ(a[static_cast<size_t>(k)], 0.0f);
  // t = 999, k = 5: cos(999 * 10000^(-5/128)) in double.
  EXPECT_NEAR(a[256 + 5], std::cos(999.0 * std::pow(10000.0, -5.0 / 128.0)), 1e-7);
  EXPECT_NEAR(a[256 + 128 + 5], std::sin(999.0 * std::pow(10000.0, -5.0 / 128.0)), 1e-7);
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, static_cast<double>(std::fabs(a[i] - b[i])));
  std::printf("  max |float64 - fp32 (diffusers)| sinusoid at t=999: %.3e\n", worst);
  EXPECT_LT(worst, 1e-3);  // ~1 ulp of t·ω (999 · 2^-24 ≈ 6e-5) per element
}

TEST(DitFlops, RealSizes) {
  const WanDiTConfig c13 = WanDiTConfig::preset("wan2.1-t2v-1.3b"), c14 = WanDiTConfig::preset("wan2.1-t2v-14b");
  const WanDiTFlops f13 = wan_dit_flops_for_video(c13, 81, 480, 832);
  const WanDiTFlops f14 = wan_dit_flops_for_video(c14, 81, 720, 1280);
  for (const auto& [label, f] : {std::pair{"1.3B 832x480x81", f13}, std::pair{"14B 1280x720x81", f14}})
    std::printf("  %s: %.4e FLOPs/forward; self-attn SDPA %.3e, self-attn proj %.3e, cross-attn SDPA %.3e, "
                "cross-attn proj %.3e, FFN %.3e, patch+embeddings+head %.3e\n",
                label, f.total(), f.self_attn_sdpa, f.self_attn_proj, f.cross_attn_sdpa, f.cross_attn_proj, f.ffn,
                f.patch_embedding + f.embeddings + f.head);
  // N = 21*30*52 = 32760 tokens; hand count per block: 8·N·d² + 4·N·d² + 4·512·d² + 4·N·d·ffn + 4·N²·d + 4·N·512·d.
  const double N = 32760, d = 1536, ffn = 8960, L = 512;
  const double per_block = 12 * N * d * d + 4 * L * d * d + 4 * N * d * ffn + 4 * N * N * d + 4 * N * L * d;
  EXPECT_NEAR(f13.total() / (30 * per_block), 1.0, 2e-3);  // the rest: embeddings and head
  EXPECT_NEAR(f13.total() / 2.83e14, 1.0, 0.01);           // issue 8's figure
  // 14B at 720p: N = 21*45*80 = 75600.
  const double N14 = 75600, d14 = 5120;
  EXPECT_NEAR(f14.self_attn_sdpa, 40 * 4 * N14 * N14 * d14, 1e-6 * f14.self_attn_sdpa);
  // Batch of 2 (CFG) doubles everything.
  EXPECT_DOUBLE_EQ(wan_dit_flops_for_video(c13, 81, 480, 832, 2).total(), 2 * f13.total());
}

// CPU timings for docs/perf_dit.md; opt-in because the second config allocates
// ~0.5 GB and takes seconds:  T2V_DIT_PERF=1 test_diffusion --gtest_filter='DitPerf.*'
// Random weights (core/weights.h RandomSource): timing needs plausible magnitudes only.
WanDiTWeights random_weights(const WanDiTConfig& cfg, uint32_t seed) {
  RandomSource source(seed);
  return WanDiTWeights::bind(WeightScope(source), cfg);
}

struct Timing {
  double wall = 1e30;  // best of reps, seconds
  double cpu = 1e30;   // process CPU time (all threads) of that rep, seconds
};

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

Timing time_forward(const WanDiTConfig& cfg, const Shape& latent, int64_t context_rows, int reps) {
  const WanDiT model(cfg, random_weights(cfg, 7));
  const Tensor x = random_tensor(latent, 11);
  const Tensor t = Tensor::from_floats(std::vector<float>(static_cast<size_t>(latent[0]), 500.0f), Shape{latent[0]});
  const Tensor ctx = random_tensor(Shape{latent[0], context_rows, cfg.text_dim}, 12);
  model.forward(x, t, ctx);  // warm-up
  Timing best;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = process_cpu_seconds();
    model.forward(x, t, ctx);
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (wall < best.wall) best = {wall, process_cpu_seconds() - c0};
  }
  return best;
}

TEST(DitPerf, CpuForward) {
  if (!std::getenv("T2V_DIT_PERF")) GTEST_SKIP() << "set T2V_DIT_PERF=1 to time the CPU forward";
  WanDiTConfig tiny = WanDiTConfig::from_json(test::dit_data("tiny_dit/diffusers/config.json"));
  const Shape tiny_latent{1, 16, 3, 6, 10};
  const Timing t_tiny = time_forward(tiny, tiny_latent, 7, 20);
  std::printf("  tiny (dim 48, 2 layers), latent %s: wall %.2f ms, CPU %.2f ms per forward, %.3e FLOPs\n",
              tiny_latent.str().c_str(), t_tiny.wall * 1e3, t_tiny.cpu * 1e3, wan_dit_flops(tiny, 3, 6, 10).total());
  WanDiTConfig mid = WanDiTConfig::preset("wan2.1-t2v-1.3b");
  mid.num_layers = 2;
  mid.preset_name.clear();
  const Shape mid_latent{1, 16, 3, 16, 16};
  const Timing t_mid = time_forward(mid, mid_latent, 32, 3);
  const double f_mid = wan_dit_flops(mid, 3, 16, 16).total();
  std::printf("  1.3B dims, 2 layers, latent %s (192 tokens, 512 context rows): wall %.1f ms, CPU %.1f ms per "
              "forward, %.3e FLOPs, %.1f GFLOP/s (wall)\n",
              mid_latent.str().c_str(), t_mid.wall * 1e3, t_mid.cpu * 1e3, f_mid, f_mid / t_mid.wall * 1e-9);
}

}  // namespace
}  // namespace t2v
