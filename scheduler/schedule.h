// Flow-matching noise schedules: the sigmas a sampler walks from noise (sigma
// near 1) to data (sigma = 0), and the integer timesteps the DiT sees.
// docs/wan.md §4.3 (official Wan2.1 schedule) and §4.6 (diffusers flow sigmas).
//
// Every schedule is built in float64 exactly as numpy builds it upstream
// (linspace as k*step + start, the shift sigma' = s*sigma / (1 + (s-1)*sigma)),
// then timesteps = int64(sigma * 1000) (truncation) and sigmas are rounded to
// float32 with a final 0 appended. The result matches the upstream arrays bit
// for bit (tests/scheduler).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace t2v {

// The update rule. Upstream classes: FlowUniPCMultistepScheduler /
// UniPCMultistepScheduler (bh2, order 2), FlowDPMSolverMultistepScheduler /
// DPMSolverMultistepScheduler (dpmsolver++, 2M midpoint), FlowMatchEulerDiscreteScheduler;
// kDistill: LightX2V's WanStepDistillScheduler, whose schedule is a list of training
// timesteps rather than a step count (scheduler/distill.h; not built by make_schedule).
enum class Sampler { kUniPC, kDPMSolver, kEuler, kDistill };

// Which upstream builds the sigmas. Each upstream builds them a little
// differently per sampler; both kinds follow their upstream for every sampler:
//
//   kind       unipc (default)                 dpm++                          euler
//   kWan       linspace(f32(0.999), 0, N+1)    linspace(1, 0, N+1)[:N],       as dpm++ (the official
//              [:-1], shifted (FlowUniPC       shifted (get_sampling_sigmas)  code has no Euler; sigma
//              set_timesteps, §4.3)            (§4.5)                         starts at exactly 1)
//   kDiffusers linspace(1, 1/1000, N+1)[:-1],  1 - linspace(1, 1/1000, N+1)   FlowMatchEulerDiscrete-
//              shifted, sigma_0 = 1 nudged     reversed, shifted (use_flow_   Scheduler(shift): float32
//              to 1 - 1e-6 (use_flow_sigmas)   sigmas)                        table, shifted twice
enum class ScheduleKind { kWan, kDiffusers };

struct Schedule {
  Sampler sampler = Sampler::kUniPC;
  ScheduleKind kind = ScheduleKind::kWan;
  double shift = 1.0;
  std::vector<float> sigmas;       // [N+1], strictly decreasing, sigmas[N] = 0
  // [N], what the DiT is evaluated at: int64(sigma * 1000), truncated, from the
  // float64 sigmas (float32 ones for euler/diffusers, whose upstream hands the
  // DiT the float value; the integer DiT input truncates it the same way).
  std::vector<int64_t> timesteps;
  int num_steps() const { return static_cast<int>(timesteps.size()); }
};

constexpr int kNumTrainTimesteps = 1000;

// Builds the schedule of `num_steps` steps. Throws Error(64) naming the value
// for num_steps outside [1, 1000], a shift that is not a finite number > 0, a
// shift so extreme that two float32 sigmas coincide (the solvers divide by
// their log-SNR difference), or kDistill (make_distill_schedule builds that one).
Schedule make_schedule(Sampler sampler, ScheduleKind kind, int num_steps, double shift);

// Names as the CLI spells them: "unipc", "dpm++", "euler", "distill"; "wan", "diffusers".
// Unknown names throw Error(64) listing the accepted ones.
Sampler sampler_from_name(std::string_view name);
const char* sampler_name(Sampler s);
ScheduleKind schedule_kind_from_name(std::string_view name);
const char* schedule_kind_name(ScheduleKind k);

}  // namespace t2v
