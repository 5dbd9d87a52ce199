// Sampler trajectories against diffusers' schedulers on a synthetic model, CFG,
// the sigma = 0 final step, lincomb, and whole runs on the test device.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>

#include "core/error.h"
#include "golden.h"
#include "kernels/ops.h"
#include "kernels/test_device/test_device.h"
#include "scheduler/scheduler.h"

namespace t2v {
namespace {

// The goldens' model: v = tanh(x) * sigma + 0.1 * x, float32.
Tensor synthetic_velocity(const Tensor& x, float sigma) {
  Tensor v = Tensor::empty(x.shape(), DType::F32);
  const float* px = x.data<float>();
  float* pv = v.data<float>();
  for (int64_t j = 0; j < x.numel(); ++j) pv[j] = std::tanh(px[j]) * sigma + 0.1f * px[j];
  return v;
}

// ||a - b|| / ||b||
double rel_error(const float* a, const float* b, int64_t n) {
  double num = 0, den = 0;
  for (int64_t j = 0; j < n; ++j) {
    const double d = static_cast<double>(a[j]) - b[j];
    num += d * d;
    den += static_cast<double>(b[j]) * b[j];
  }
  return std::sqrt(num) / std::sqrt(den);
}

Tensor random_tensor(const Shape& shape, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(shape.numel()));
  for (float& x : v) x = nd(rng);
  return Tensor::from_floats(v, shape);
}

class SamplerGolden : public ::testing::TestWithParam<Sampler> {};

TEST_P(SamplerGolden, EverySampleMatchesDiffusers) {
  const Sampler sampler = GetParam();
  SafetensorsFile f(test::golden_file(sampler));
  const auto cases = test::golden_cases(f);
  ASSERT_EQ(cases.size(), 11u);
  // The samples agree to 5.4e-7 at worst (dpm++, wan schedule; float32 rounding of
  // upstream's coefficient arithmetic), and a 10% error in one UniC coefficient
  // shows up as ~1.6e-5. 2e-6 is already under 5x the measured error; kept.
  constexpr double kTol = 2e-6;
  double worst[2] = {0, 0};
  int compared[2] = {0, 0};
  for (const auto& c : cases) {
    SCOPED_TRACE(fmt::format("{} {} steps={} shift={}", sampler_name(sampler), c.name, c.steps, c.shift));
    const Tensor ref = f.get(c.name + ".samples");  // [N+1, 16, 2, 2, 3]
    ASSERT_EQ(ref.size(0), c.steps + 1);
    const Shape shape({ref.size(1), ref.size(2), ref.size(3), ref.size(4)});
    const int64_t n = shape.numel();

    auto sched = make_scheduler(sampler);
    const Schedule& s = sched->set_timesteps(c.steps, c.shift, c.kind);
    Tensor x = ref.narrow0(0, 1).reshape(shape).clone();
    double case_worst = 0;
    for (int i = 0; i < c.steps; ++i) {
      const Tensor v = synthetic_velocity(x, s.sigmas[i]);
      x = sched->step(v, i, x);
      const Tensor want = ref.narrow0(i + 1, 1);
      const double err = rel_error(x.data<float>(), want.data<float>(), n);
      ASSERT_LE(err, kTol) << "after step " << i;
      case_worst = std::max(case_worst, err);
      compared[static_cast<int>(c.kind)]++;
    }
    worst[static_cast<int>(c.kind)] = std::max(worst[static_cast<int>(c.kind)], case_worst);
  }
  EXPECT_EQ(compared[0], 1 + 2 + 10 + 25 + 50 + 12);
  EXPECT_EQ(compared[1], 1 + 2 + 10 + 25 + 50);
  std::printf("[ scheduler ] %-5s max rel error vs diffusers: wan schedule %.3g, diffusers schedule %.3g (%d steps)\n",
              sampler_name(sampler), worst[0], worst[1], compared[0] + compared[1]);
  RecordProperty("max_rel_error_wan", std::to_string(worst[0]));
  RecordProperty("max_rel_error_diffusers", std::to_string(worst[1]));
}

INSTANTIATE_TEST_SUITE_P(AllSamplers, SamplerGolden,
                         ::testing::Values(Sampler::kUniPC, Sampler::kDPMSolver, Sampler::kEuler),
                         test::sampler_param_name);

TEST(Cfg, CombinesUncondAndCond) {
  const Shape shape({3, 5, 7});
  const Tensor vu = random_tensor(shape, 1), vc = random_tensor(shape, 2);
  for (double g : {0.0, 1.0, 5.0, 6.5}) {
    const Tensor v = cfg(vu, vc, g);
    ASSERT_EQ(v.shape(), shape);
    const float* pu = vu.data<float>();
    const float* pc = vc.data<float>();
    const float* pv = v.data<float>();
    for (int64_t j = 0; j < v.numel(); ++j) {
      const double want = pu[j] + g * (static_cast<double>(pc[j]) - pu[j]);
      EXPECT_NEAR(pv[j], want, 1e-6 * (1 + std::fabs(want))) << "g=" << g << " j=" << j;
    }
    // g = 0 is the unconditional output, g = 1 the conditional one, exactly.
    if (g == 0.0 || g == 1.0) {
      const float* exact = g == 0.0 ? pu : pc;
      for (int64_t j = 0; j < v.numel(); ++j) EXPECT_EQ(pv[j], exact[j]);
    }
  }
}

TEST(Cfg, RefusesBadScales) {
  const Tensor a = random_tensor(Shape({4}), 3);
  for (double g : {-1.0, std::nan(""), std::numeric_limits<double>::infinity()}) {
    try {
      cfg(a, a, g);
      ADD_FAILURE() << "cfg " << g << " accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), kExitUsage);
      EXPECT_NE(std::string(e.what()).find("cfg scale"), std::string::npos) << e.what();
    }
  }
}

// The last step goes to sigma = 0 (lambda = +inf): every sampler must land on
// x0 = x - sigma * v, finite, for schedules that start at sigma = 1 exactly
// (lambda = -inf) as well.
TEST(Samplers, FinalSigmaZeroStepIsFiniteAndEqualsX0) {
  const Shape shape({16, 1, 3, 4});
  for (Sampler sampler : {Sampler::kUniPC, Sampler::kDPMSolver, Sampler::kEuler}) {
    for (ScheduleKind kind : {ScheduleKind::kWan, ScheduleKind::kDiffusers}) {
      for (int steps : {1, 2, 3, 20}) {
        for (double shift : {1.0, 5.0, 100.0}) {
          SCOPED_TRACE(fmt::format("{} {} steps={} shift={}", sampler_name(sampler), schedule_kind_name(kind), steps,
                                   shift));
          auto sched = make_scheduler(sampler);
          const Schedule& s = sched->set_timesteps(steps, shift, kind);
          Tensor x = random_tensor(shape, 7);
          for (int i = 0; i < steps; ++i) {
            const Tensor v = synthetic_velocity(x, s.sigmas[i]);
            const Tensor next = sched->step(v, i, x);
            for (float e : next.to_vector()) ASSERT_TRUE(std::isfinite(e)) << "step " << i;
            if (i == steps - 1 && sampler != Sampler::kEuler) {
              // UniPC and DPM++ land on x0 of the step's input sample (UniPC converts
              // the uncorrected sample, and the corrected one gets weight 0).
              const auto px = x.to_vector(), pv = v.to_vector(), pn = next.to_vector();
              for (size_t j = 0; j < pn.size(); ++j)
                EXPECT_NEAR(pn[j], px[j] - s.sigmas[i] * pv[j], 1e-6 * (1 + std::fabs(pn[j])));
            }
            x = next;
          }
        }
      }
    }
  }
}

// A schedule starting at sigma = 1.0 exactly (lambda = -inf): always so for the
// Wan dpm++/euler schedule, and for the Wan UniPC one once a huge shift rounds
// sigma_0 to 1 in float32 (the goldens' wan.n12 case checks the values against
// upstream). Every first step is then an Euler step.
TEST(Samplers, StartAtSigmaOneIsFinite) {
  const Shape shape({16, 1, 3, 4});
  for (Sampler sampler : {Sampler::kUniPC, Sampler::kDPMSolver, Sampler::kEuler}) {
    SCOPED_TRACE(sampler_name(sampler));
    auto sched = make_scheduler(sampler);
    const Schedule& s = sched->set_timesteps(10, 1e5, ScheduleKind::kWan);
    ASSERT_EQ(s.sigmas[0], 1.0f);
    Tensor x = random_tensor(shape, 9);
    const Tensor x_start = x;
    for (int i = 0; i < 10; ++i) {
      const Tensor v = synthetic_velocity(x, s.sigmas[i]);
      const Tensor next = sched->step(v, i, x);
      for (float e : next.to_vector()) ASSERT_TRUE(std::isfinite(e)) << "step " << i;
      if (i == 0) {
        // From sigma = 1 every sampler's first step is Euler: x + (sigma_1 - 1) * v.
        const auto px = x.to_vector(), pv = v.to_vector(), pn = next.to_vector();
        for (size_t j = 0; j < pn.size(); ++j)
          EXPECT_NEAR(pn[j], px[j] + (static_cast<double>(s.sigmas[1]) - 1.0) * pv[j], 1e-6);
      }
      x = next;
    }
  }
}

TEST(Samplers, StepsMustComeInOrder) {
  auto sched = make_scheduler(Sampler::kUniPC);
  const Tensor x = random_tensor(Shape({8}), 4);
  EXPECT_THROW(sched->step(x, 0, x), Error);  // before set_timesteps
  sched->set_timesteps(4, 5.0, ScheduleKind::kWan);
  EXPECT_THROW(sched->step(x, 1, x), Error);
  const Tensor y = sched->step(x, 0, x);
  EXPECT_THROW(sched->step(x, 0, x), Error);
  EXPECT_NO_THROW(sched->step(x, 1, y));
  // set_timesteps resets the multistep state: the same run twice gives the same samples.
  auto run = [&] {
    sched->set_timesteps(4, 5.0, ScheduleKind::kWan);
    Tensor z = x;
    for (int i = 0; i < 4; ++i) z = sched->step(synthetic_velocity(z, sched->sigmas()[i]), i, z);
    return z.to_vector();
  };
  EXPECT_EQ(run(), run());
}

// Every sampler run on test-device tensors (the device code path: the latents
// and the multistep state stay on the device, each step is ops::lincomb on it)
// equals the CPU run bit for bit, step by step, CFG included.
TEST(Samplers, TestDeviceStepsEqualCpuStepsBitExactly) {
  ops::open_test_device();
  const Shape shape({16, 2, 5, 7});
  for (Sampler sampler : {Sampler::kUniPC, Sampler::kDPMSolver, Sampler::kEuler}) {
    for (ScheduleKind kind : {ScheduleKind::kWan, ScheduleKind::kDiffusers}) {
      SCOPED_TRACE(fmt::format("{} {}", sampler_name(sampler), schedule_kind_name(kind)));
      auto cpu = make_scheduler(sampler), dev = make_scheduler(sampler);
      const Schedule& s = cpu->set_timesteps(8, 5.0, kind);
      dev->set_timesteps(8, 5.0, kind);
      Tensor x = random_tensor(shape, 21);
      Tensor xd = x.to(Device::Test);
      for (int i = 0; i < 8; ++i) {
        // Two "model outputs" computed on the host, combined by CFG on each device.
        const Tensor vu = synthetic_velocity(x, s.sigmas[i]), vc = synthetic_velocity(x, 0.5f * s.sigmas[i]);
        const Tensor v = cfg(vu, vc, 5.0);
        const Tensor vd = cfg(vu.to(Device::Test), vc.to(Device::Test), 5.0);
        ASSERT_EQ(vd.device(), Device::Test);
        x = cpu->step(v, i, x);
        xd = dev->step(vd, i, xd);
        ASSERT_EQ(xd.device(), Device::Test);
        const Tensor back = xd.to(Device::CPU);
        ASSERT_EQ(std::memcmp(back.raw(), x.raw(), x.nbytes()), 0) << "step " << i << " differs";
        ASSERT_EQ(std::memcmp(vd.to(Device::CPU).raw(), v.raw(), v.nbytes()), 0) << "cfg at step " << i << " differs";
      }
    }
  }
}

TEST(Lincomb, WeightedSumAliasingAndZeroTerms) {
  const Shape shape({5, 3});
  Tensor a = random_tensor(shape, 10), b = random_tensor(shape, 11);
  const auto pa = a.to_vector(), pb = b.to_vector();
  Tensor out = Tensor::empty(shape, DType::F32);
  ops::lincomb(out, {{2.0, &a}, {-0.5, &b}});
  for (size_t j = 0; j < pa.size(); ++j)
    EXPECT_FLOAT_EQ(out.item(static_cast<int64_t>(j)), static_cast<float>(2.0 * pa[j] - 0.5 * pb[j]));
  // In place: a = 1*a + 3*b.
  ops::lincomb(a, {{1.0, &a}, {3.0, &b}});
  for (size_t j = 0; j < pa.size(); ++j)
    EXPECT_FLOAT_EQ(a.item(static_cast<int64_t>(j)), static_cast<float>(pa[j] + 3.0 * pb[j]));
  // A zero coefficient drops its term, even an inf one (the sigma = 0 step).
  Tensor bad = Tensor::full(shape, std::numeric_limits<float>::infinity());
  ops::lincomb(out, {{0.0, &bad}, {1.0, &b}});
  for (size_t j = 0; j < pb.size(); ++j) EXPECT_EQ(out.item(static_cast<int64_t>(j)), pb[j]);
}

TEST(Lincomb, LargeTensorsMatchElementLoop) {
  // Large enough for the threaded loop.
  const Shape shape({16, 3, 60, 104});
  const Tensor a = random_tensor(shape, 12), b = random_tensor(shape, 13), c = random_tensor(shape, 14);
  Tensor out = Tensor::empty(shape, DType::F32);
  ops::lincomb(out, {{0.25, &a}, {-1.5, &b}, {1e-3, &c}});
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  const float* pc = c.data<float>();
  const float* po = out.data<float>();
  int64_t mismatches = 0;
  for (int64_t j = 0; j < out.numel(); ++j)
    mismatches += po[j] != static_cast<float>(0.25 * pa[j] + -1.5 * static_cast<double>(pb[j]) + 1e-3 * pc[j]);
  EXPECT_EQ(mismatches, 0);
}

}  // namespace
}  // namespace t2v
