// The step cache (diffusion/step_cache.h) on the tiny DiT of tests/data/diffusion/tiny_dit
// with fresh random inputs: the split forward is the forward bit for bit, a skipped step
// adds the residual of the computed one, branches decide on their own, and the
// relative L1 reduction matches a plain loop. The decisions against the references are
// tested on goldens in tests/app/step_cache_golden_test.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/philox.h"
#include "core/safetensors.h"
#include "diffusion/step_cache.h"
#include "diffusion/wan_dit.h"
#include "dit_test_util.h"
#include "kernels/ops.h"
#include "kernels/test_device/test_device.h"

namespace t2v::test {
namespace {

const WanDiT& tiny_dit() {
  static const WanDiT dit = [] {
    const WanDiTConfig cfg = WanDiTConfig::from_json(dit_data("tiny_dit/diffusers/config.json"));
    return WanDiT(cfg, load_wan_dit(TensorStore::open(dit_data("tiny_dit/diffusers")), cfg));
  }();
  return dit;
}

struct Inputs {
  Tensor x, t, ctx;
};

// B rows of latents [B, 16, 2, 4, 6], timesteps, and 7 context rows.
Inputs inputs(int64_t B, uint64_t seed, float ts) {
  const WanDiTConfig& c = tiny_dit().config();
  Inputs in;
  in.x = randn_philox(Shape{B, c.in_dim, 2, 4, 6}, seed);
  in.t = Tensor::from_floats(std::vector<float>(static_cast<size_t>(B), ts), Shape{B});
  in.ctx = ops::scale(randn_philox(Shape{B, 7, c.text_dim}, seed + 1), 0.5f);
  return in;
}

double plain_relative_l1(const Tensor& a, const Tensor& b) {
  const std::vector<float> va = a.to_vector(), vb = b.to_vector();
  double num = 0, den = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    num += std::fabs(static_cast<double>(va[i]) - vb[i]);
    den += std::fabs(static_cast<double>(vb[i]));
  }
  return num / den;
}

TEST(StepCache, SplitForwardIsTheForwardBitForBit) {
  const WanDiT& dit = tiny_dit();
  for (int64_t B : {1, 2}) {
    const Inputs in = inputs(B, 10 + static_cast<uint64_t>(B), 733.0f);
    const Tensor ref = dit.forward(in.x, in.t, in.ctx);
    const WanDiTEmbedded e = dit.embed(in.x, in.t, in.ctx);
    const Tensor h = dit.run_blocks(e, dit.run_blocks(e, e.h, 0, 1), 1, dit.config().num_layers);
    EXPECT_EQ(dit.head(e, h).to_vector(), ref.to_vector()) << "B " << B;
    // and without a cache, StepCache is the forward
    StepCache none(StepCacheSettings{}, static_cast<int>(B));
    EXPECT_EQ(none.forward(dit, in.x, in.t, in.ctx, 0).to_vector(), ref.to_vector());
    EXPECT_EQ(none.forwards_run(), B);
  }
}

TEST(StepCache, RowOfTheEmbeddingIsTheBatchEntryAlone) {
  const WanDiT& dit = tiny_dit();
  const Inputs in = inputs(2, 21, 500.0f);
  const WanDiTEmbedded e = dit.embed(in.x, in.t, in.ctx);
  const Tensor both = dit.head(e, dit.run_blocks(e, e.h, 0, 2));
  for (int64_t b = 0; b < 2; ++b) {
    const WanDiTEmbedded r = e.row(b);
    const Tensor one = dit.head(r, dit.run_blocks(r, r.h, 0, 2));
    const Diff d = diff(one, both.narrow0(b, 1).clone());
    EXPECT_LE(d.rel(), 1e-5) << "row " << b;
  }
}

TEST(StepCache, RelativeL1MatchesAPlainLoop) {
  for (const Shape& s : {Shape{1, 7}, Shape{2, 3, 5}, Shape{3, 17, 33}, Shape{2, 6, 1}}) {
    const Tensor a = randn_philox(s, 3), b = randn_philox(s, 4);
    const std::vector<double> got = relative_l1_rows(a, b);
    ASSERT_EQ(got.size(), static_cast<size_t>(s[0]));
    for (int64_t r = 0; r < s[0]; ++r) {
      const double want = plain_relative_l1(a.narrow0(r, 1).clone(), b.narrow0(r, 1).clone());
      EXPECT_NEAR(got[static_cast<size_t>(r)], want, 1e-5 * want) << s.str() << " row " << r;
    }
  }
}

TEST(StepCache, RelativeL1OnTheTestDeviceMatchesTheCpu) {
  ops::open_test_device();
  const Tensor a = randn_philox(Shape{2, 9, 31}, 5), b = randn_philox(Shape{2, 9, 31}, 6);
  const std::vector<double> cpu = relative_l1_rows(a, b);
  const std::vector<double> dev = relative_l1_rows(a.to(Device::Test), b.to(Device::Test));
  ASSERT_EQ(dev.size(), 2u);
  for (size_t r = 0; r < 2; ++r) EXPECT_DOUBLE_EQ(dev[r], cpu[r]);
}

TEST(StepCache, PolynomialIsNumpyPoly1dOrder) {
  std::mt19937 rng(7);
  std::normal_distribution<double> n;
  for (int k = 0; k < 20; ++k) {
    const std::vector<double> c = {n(rng), n(rng), n(rng), n(rng), n(rng)};
    const double x = n(rng);
    const double want = c[0] * x * x * x * x + c[1] * x * x * x + c[2] * x * x + c[3] * x + c[4];
    EXPECT_NEAR(eval_polynomial(c, x), want, 1e-12 * (1 + std::fabs(want)));
  }
}

// A skipped step reuses the residual: with the inputs of the computed step it gives that
// step's output (up to the rounding of h + (H - h)).
TEST(StepCache, SkippedStepAddsTheComputedResidual) {
  const WanDiT& dit = tiny_dit();
  for (StepCacheKind kind : {StepCacheKind::kTeaCache, StepCacheKind::kFirstBlock}) {
    StepCacheSettings s;
    s.kind = kind;
    s.threshold = 1e30;  // skip whenever allowed
    s.coefficients = {1.0, 0.0};
    s.retain_steps = 1;
    StepCache cache(s, 2);
    const Inputs in = inputs(2, 31, 800.0f);
    const Tensor first = cache.forward(dit, in.x, in.t, in.ctx, 0);
    EXPECT_EQ(first.to_vector(), dit.forward(in.x, in.t, in.ctx).to_vector()) << "step 0 is computed";
    const Tensor again = cache.forward(dit, in.x, in.t, in.ctx, 1);
    EXPECT_EQ(cache.forwards_run(), 2);
    EXPECT_EQ(cache.forwards_skipped(), 2);
    EXPECT_LE(diff(again, first).rel(), 1e-6);
    // other latents at another timestep: the skipped output is head(h_new + old residual)
    const Inputs other = inputs(2, 41, 700.0f);
    const Tensor skipped = cache.forward(dit, other.x, other.t, other.ctx, 2);
    const WanDiTEmbedded e_old = dit.embed(in.x, in.t, in.ctx), e = dit.embed(other.x, other.t, other.ctx);
    Tensor want;
    if (kind == StepCacheKind::kTeaCache) {
      const Tensor residual = ops::sub(dit.run_blocks(e_old, e_old.h, 0, 2), e_old.h);
      want = dit.head(e, ops::add(e.h, residual));
    } else {
      const Tensor h1_old = dit.run_blocks(e_old, e_old.h, 0, 1);
      const Tensor residual = ops::sub(dit.run_blocks(e_old, h1_old, 1, 2), h1_old);
      want = dit.head(e, ops::add(dit.run_blocks(e, e.h, 0, 1), residual));
    }
    EXPECT_LE(diff(skipped, want).rel(), 1e-6) << "kind " << static_cast<int>(kind);
    EXPECT_GT(diff(skipped, dit.forward(other.x, other.t, other.ctx)).rel(), 1e-3) << "a real approximation";
    const auto& rec = cache.records();
    ASSERT_EQ(rec.size(), 6u);
    EXPECT_TRUE(rec[0].computed && rec[1].computed);
    for (size_t k = 2; k < 6; ++k) EXPECT_FALSE(rec[k].computed) << k;
    EXPECT_EQ(rec[2].distance, 0.0) << "same inputs: no change";
    EXPECT_GT(rec[4].distance, 0.0);
  }
}

// Each branch keeps its own state: with one row's inputs unchanged and the other's changed,
// the first-block cache skips the first and computes the second (alone, as a batch of 1).
TEST(StepCache, BranchesDecideOnTheirOwn) {
  const WanDiT& dit = tiny_dit();
  StepCacheSettings s;
  s.kind = StepCacheKind::kFirstBlock;
  s.threshold = 0.01;
  StepCache cache(s, 2);
  const Inputs a = inputs(2, 51, 600.0f);
  const Tensor first = cache.forward(dit, a.x, a.t, a.ctx, 0);
  Inputs b = a;
  b.x = ops::concat({a.x.narrow0(0, 1), randn_philox(Shape{1, 16, 2, 4, 6}, 99)}, 0);
  const Tensor second = cache.forward(dit, b.x, b.t, b.ctx, 1);
  const auto& rec = cache.records();
  ASSERT_EQ(rec.size(), 4u);
  EXPECT_FALSE(rec[2].computed) << "unchanged branch 0: distance " << rec[2].distance;
  EXPECT_TRUE(rec[3].computed) << "changed branch 1: distance " << rec[3].distance;
  EXPECT_EQ(cache.forwards_run(), 3);
  EXPECT_EQ(cache.forwards_skipped(), 1);
  EXPECT_LE(diff(second.narrow0(0, 1).clone(), first.narrow0(0, 1).clone()).rel(), 1e-6);
  const Tensor alone = dit.forward(b.x.narrow0(1, 1).clone(), Tensor::from_floats({600.0f}, {1}), b.ctx.narrow0(1, 1).clone());
  EXPECT_LE(diff(second.narrow0(1, 1).clone(), alone).rel(), 1e-5);
}

// TeaCache: the first retain_steps steps are computed whatever the threshold, the sum of
// the rescaled distances decides after them, and a computed step resets it.
TEST(StepCache, TeaCacheAccumulatesTheRescaledDistance) {
  const WanDiT& dit = tiny_dit();
  StepCacheSettings s;
  s.kind = StepCacheKind::kTeaCache;
  s.coefficients = {2.0, 0.0};  // p(x) = 2x
  s.retain_steps = 2;
  const float ts[] = {999, 990, 980, 970, 960, 950, 940, 930};
  const Inputs in = inputs(1, 61, 0.0f);
  // the distances of e0 between these timesteps, from an uncached observing run
  StepCacheSettings obs;
  obs.observe = true;
  StepCache observer(obs, 1);
  for (int i = 0; i < 8; ++i) observer.forward(dit, in.x, Tensor::from_floats({ts[i]}, {1}), in.ctx, i);
  s.threshold = 3 * 2 * observer.records()[3].distance;  // about three steps' worth
  StepCache cache(s, 1);
  for (int i = 0; i < 8; ++i) cache.forward(dit, in.x, Tensor::from_floats({ts[i]}, {1}), in.ctx, i);
  double acc = 0;
  int skipped = 0;
  for (int i = 0; i < 8; ++i) {
    const StepCacheRecord& r = cache.records()[static_cast<size_t>(i)];
    if (i > 0) {
      EXPECT_NEAR(r.distance, observer.records()[static_cast<size_t>(i)].distance, 1e-12) << i;
    }
    bool computed = true;
    double decided_on = 0;
    if (i >= s.retain_steps) {
      acc += 2 * r.distance;
      decided_on = acc;
      computed = !(acc < s.threshold);
    }
    if (computed) acc = 0;
    skipped += computed ? 0 : 1;
    EXPECT_EQ(r.computed, computed) << "step " << i;
    EXPECT_NEAR(r.accumulated, decided_on, 1e-12) << "step " << i;
  }
  EXPECT_GE(skipped, 2);
  EXPECT_LE(skipped, 5);
  EXPECT_EQ(cache.forwards_skipped(), skipped);
}

}  // namespace
}  // namespace t2v::test
