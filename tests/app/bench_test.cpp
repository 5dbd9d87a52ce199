// `t2v bench`: the FLOP counts it divides by, the stages it reports, its option checks.
// (Its timings are measurements, not tested.)
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli_test_util.h"

namespace t2v::test {
namespace {

using nlohmann::json;

TEST(Bench, DryRunCountsTheWan13BStepFromTheConfig) {
  RunResult r = run_t2v({"bench", "--dry-run", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["tokens"], 21 * 30 * 52);
  // Per block, batch 2, N = 32760 tokens, D = 1536, 12 heads of 128, FFN 8960, 512 context rows:
  // self q/k/v/o 4·2ND², attention 4N²D, cross q/o 2·2ND² + k/v over the context 2·2·512·D²,
  // cross attention 4·N·512·D, FFN 2·2ND·F; plus patch embedding, text and time embeddings
  // and the head, which are small. One block:
  const double N = 32760, D = 1536, F = 8960, C = 512;
  const double block = 2 * (4 * 2 * N * D * D + 4 * N * N * D + 2 * 2 * N * D * D + 2 * 2 * C * D * D +
                            4 * N * C * D + 2 * 2 * N * D * F);
  const double total = j["dit_step_flops"].get<double>();
  EXPECT_GT(total, 30 * block);
  EXPECT_LT(total, 30 * block * 1.01) << "more than 1% outside the blocks";
  EXPECT_NEAR(j["dit_step_floor_ms"].get<double>(), total / 798e12 * 1e3, 1e-6);
}

// Wan2.2 TI2V-5B at its default 1280x704x121: the Wan2.2 VAE's 16x grid and 48 channels,
// the 5B widths (docs/PERFORMANCE.md quotes this count).
TEST(Bench, DryRunCountsTheTi2v5BStep) {
  RunResult r = run_t2v({"bench", "--dry-run", "--json", "--model", "wan2.2-ti2v-5b", "--size", "1280x704", "--frames",
                         "121"});
  ASSERT_EQ(r.code, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["latent"], json::array({48, 31, 44, 80}));
  EXPECT_EQ(j["tokens"], 31 * 22 * 40);
  const double N = 31 * 22 * 40, D = 3072, F = 14336, C = 512;
  const double block = 2 * (4 * 2 * N * D * D + 4 * N * N * D + 2 * 2 * N * D * D + 2 * 2 * C * D * D +
                            4 * N * C * D + 2 * 2 * N * D * F);
  const double total = j["dit_step_flops"].get<double>();
  EXPECT_GT(total, 30 * block);
  EXPECT_LT(total, 30 * block * 1.01) << "more than 1% outside the blocks";
  // Multiples of 32 (16x VAE, 2x2 patches) for TI2V.
  r = run_t2v({"bench", "--dry-run", "--model", "wan2.2-ti2v-5b", "--size", "1280x720"});
  EXPECT_EQ(r.code, 64) << r.err;
}

TEST(Bench, ReportsEveryStageWithItsFlopsAndPeakMemory) {
  RunResult r = run_t2v({"bench", "--json", "--layers", "1", "--size", "32x32", "--frames", "1", "--repeat", "1",
                         "--no-vae"});
  ASSERT_EQ(r.code, 0) << r.err;
  json j = json::parse(r.out);
  const json& te = j["text_encode"];
  EXPECT_EQ(te["layers_run"], 1);
  // One umT5-XXL block over 2 x 128 tokens: q/k/v/o, attention, gated FFN (3 GEMMs).
  const double T = 256, D = 4096, F = 10240;
  EXPECT_DOUBLE_EQ(te["flops"].get<double>(), 2 * T * D * D * 4 + 4 * 2 * 128.0 * 128 * D + 2 * T * D * F * 3);
  EXPECT_NEAR(te["tflops"].get<double>(), te["flops"].get<double>() / (te["median_ms"].get<double>() * 1e-3) / 1e12,
              1e-9);
  EXPECT_NEAR(te["projected_full_ms"].get<double>(), te["median_ms"].get<double>() * 24, 1e-6);
  const json& dit = j["dit"];
  EXPECT_EQ(dit["layers_run"], 1);
  EXPECT_GT(dit["median_ms"].get<double>(), 0);
  EXPECT_FALSE(j.contains("vae_decode"));
  for (const json* s : {&te, &dit}) EXPECT_GT((*s)["peak_memory_gb"].get<double>(), 0.01);
  EXPECT_EQ(j["peak_memory_kind"], "host RSS");
}

TEST(Bench, BadOptionsAreUsageErrors) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"bench", "--dry-run", "--model", "wan9"},
        {"bench", "--dry-run", "--size", "100x100"},
        {"bench", "--dry-run", "--frames", "80"},
        {"bench", "--dry-run", "--layers", "31"},
        {"bench", "--dry-run", "--steps", "0"}}) {
    RunResult r = run_t2v(args);
    EXPECT_EQ(r.code, 64) << args[3] << " " << args[4] << ": " << r.err;
  }
}

}  // namespace
}  // namespace t2v::test
