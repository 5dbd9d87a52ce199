// Sigma schedules and timesteps against the upstream arrays (bit for bit), and
// the refusal of invalid parameters.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "golden.h"
#include "scheduler/schedule.h"
#include "scheduler/scheduler.h"

namespace t2v {
namespace {

class ScheduleGolden : public ::testing::TestWithParam<Sampler> {};

TEST_P(ScheduleGolden, SigmasAndTimestepsMatchUpstreamExactly) {
  const Sampler sampler = GetParam();
  SafetensorsFile f(test::golden_file(sampler));
  const auto cases = test::golden_cases(f);
  // 5 step counts x 2 schedule kinds, plus the Wan-only sigma_0 = 1 case.
  ASSERT_EQ(cases.size(), 11u) << f.path();
  int kinds_seen[2] = {0, 0};
  for (const auto& c : cases) {
    SCOPED_TRACE(fmt::format("{} {} steps={} shift={}", sampler_name(sampler), c.name, c.steps, c.shift));
    kinds_seen[static_cast<int>(c.kind)]++;
    const Schedule s = make_schedule(sampler, c.kind, c.steps, c.shift);
    const Tensor ref_sigmas = f.get(c.name + ".sigmas");
    const Tensor ref_timesteps = f.get(c.name + ".timesteps");
    ASSERT_EQ(ref_sigmas.dtype(), DType::F32);
    ASSERT_EQ(ref_timesteps.dtype(), DType::I64);
    ASSERT_EQ(ref_sigmas.numel(), c.steps + 1);
    ASSERT_EQ(ref_timesteps.numel(), c.steps);
    ASSERT_EQ(s.sigmas.size(), static_cast<size_t>(c.steps + 1));
    ASSERT_EQ(s.timesteps.size(), static_cast<size_t>(c.steps));
    const float* rs = ref_sigmas.data<float>();
    const int64_t* rt = ref_timesteps.data<int64_t>();
    for (int k = 0; k <= c.steps; ++k) {
      uint32_t a, b;
      std::memcpy(&a, &s.sigmas[k], 4);
      std::memcpy(&b, &rs[k], 4);
      EXPECT_EQ(a, b) << "sigma " << k << ": " << s.sigmas[k] << " vs upstream " << rs[k];
    }
    for (int k = 0; k < c.steps; ++k) EXPECT_EQ(s.timesteps[k], rt[k]) << "timestep " << k;
    EXPECT_EQ(s.sigmas.back(), 0.0f);
  }
  EXPECT_EQ(kinds_seen[0], 6);
  EXPECT_EQ(kinds_seen[1], 5);
}

INSTANTIATE_TEST_SUITE_P(AllSamplers, ScheduleGolden,
                         ::testing::Values(Sampler::kUniPC, Sampler::kDPMSolver, Sampler::kEuler),
                         test::sampler_param_name);

// Expects Error(64) whose message contains `needle`.
template <class F>
void expect_usage_error(F&& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one naming " << needle;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), kExitUsage) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(Schedule, RefusesInvalidParameters) {
  const double inf = std::numeric_limits<double>::infinity();
  for (Sampler sampler : {Sampler::kUniPC, Sampler::kDPMSolver, Sampler::kEuler}) {
    for (ScheduleKind kind : {ScheduleKind::kWan, ScheduleKind::kDiffusers}) {
      expect_usage_error([&] { make_schedule(sampler, kind, 0, 5.0); }, "steps 0");
      expect_usage_error([&] { make_schedule(sampler, kind, -3, 5.0); }, "steps -3");
      expect_usage_error([&] { make_schedule(sampler, kind, 1001, 5.0); }, "steps 1001");
      expect_usage_error([&] { make_schedule(sampler, kind, 50, 0.0); }, "shift 0");
      expect_usage_error([&] { make_schedule(sampler, kind, 50, -1.0); }, "shift -1");
      expect_usage_error([&] { make_schedule(sampler, kind, 50, std::nan("")); }, "shift nan");
      expect_usage_error([&] { make_schedule(sampler, kind, 50, inf); }, "shift inf");
      // So large that float32 sigmas near 1 coincide: refused rather than NaN later.
      expect_usage_error([&] { make_schedule(sampler, kind, 1000, 1e9); }, "shift 1000000000");
      // The scheduler object refuses the same way.
      auto sched = make_scheduler(sampler);
      expect_usage_error([&] { sched->set_timesteps(0, 5.0, kind); }, "steps 0");
    }
  }
  expect_usage_error([] { sampler_from_name("ddim"); }, "ddim");
  expect_usage_error([] { schedule_kind_from_name("karras"); }, "karras");
}

TEST(Schedule, ExtremeButValidSettingsAreStrictlyDecreasing) {
  for (Sampler sampler : {Sampler::kUniPC, Sampler::kDPMSolver, Sampler::kEuler}) {
    for (ScheduleKind kind : {ScheduleKind::kWan, ScheduleKind::kDiffusers}) {
      for (int steps : {1, 2, 1000}) {
        for (double shift : {0.01, 1.0, 100.0}) {
          SCOPED_TRACE(fmt::format("{} {} steps={} shift={}", sampler_name(sampler), schedule_kind_name(kind), steps,
                                   shift));
          const Schedule s = make_schedule(sampler, kind, steps, shift);
          ASSERT_EQ(s.num_steps(), steps);
          EXPECT_LE(s.sigmas[0], sampler == Sampler::kEuler ? 1.001f : 1.0f);
          EXPECT_EQ(s.sigmas[steps], 0.0f);
          for (int k = 0; k < steps; ++k) {
            EXPECT_GT(s.sigmas[k], s.sigmas[k + 1]);
            EXPECT_GE(s.timesteps[k], 0);
            EXPECT_LE(s.timesteps[k], 1000);
          }
        }
      }
    }
  }
}

TEST(Schedule, NamesRoundTrip) {
  for (Sampler s : {Sampler::kUniPC, Sampler::kDPMSolver, Sampler::kEuler})
    EXPECT_EQ(sampler_from_name(sampler_name(s)), s);
  for (ScheduleKind k : {ScheduleKind::kWan, ScheduleKind::kDiffusers})
    EXPECT_EQ(schedule_kind_from_name(schedule_kind_name(k)), k);
}

}  // namespace
}  // namespace t2v
