// Sigma schedules, reproduced bit for bit from the upstream numpy/torch code
// (see schedule.h for the table of kinds). The arithmetic below keeps the
// upstream evaluation order and precision on purpose: float64 where numpy
// computes, float32 where torch computes on float32 tensors.
#include "scheduler/schedule.h"

#include <cmath>

#include "core/error.h"

namespace t2v {
namespace {

// numpy.linspace(start, stop, num): y_k = k * ((stop - start) / (num - 1)) + start,
// with the last element set to `stop` exactly; num = 1 gives [start].
std::vector<double> np_linspace(double start, double stop, int num) {
  std::vector<double> y(num);
  if (num == 1) {
    y[0] = start;
    return y;
  }
  const double step = (stop - start) / (num - 1);
  for (int k = 0; k < num; ++k) y[k] = static_cast<double>(k) * step + start;
  y[num - 1] = stop;
  return y;
}

// sigma' = shift * sigma / (1 + (shift - 1) * sigma), numpy order and float64.
double shift_sigma(double sigma, double shift) { return shift * sigma / (1 + (shift - 1) * sigma); }

// Official FlowUniPCMultistepScheduler(shift=1).set_timesteps(N, shift): the
// training table's sigma_max is float32(1 - 1/1000) (a float32 torch tensor read
// back with .item()), sigma_min = 0.
std::vector<double> wan_unipc_sigmas(int n, double shift) {
  const double sigma_max = static_cast<float>(1.0 - 1.0 / kNumTrainTimesteps);
  std::vector<double> s = np_linspace(sigma_max, 0.0, n + 1);
  s.pop_back();
  for (double& v : s) v = shift_sigma(v, shift);
  return s;
}

// Official get_sampling_sigmas(N, shift) = shift(linspace(1, 0, N+1)[:N]), fed to
// FlowDPMSolverMultistepScheduler(shift=1), whose own shift by 1 is an identity.
std::vector<double> wan_sampling_sigmas(int n, double shift) {
  std::vector<double> s = np_linspace(1.0, 0.0, n + 1);
  s.pop_back();
  for (double& v : s) v = shift_sigma(v, shift);
  return s;
}

// UniPCMultistepScheduler(use_flow_sigmas=True, flow_shift).set_timesteps(N).
std::vector<double> diffusers_unipc_sigmas(int n, double shift) {
  std::vector<double> s = np_linspace(1.0, 1.0 / kNumTrainTimesteps, n + 1);
  s.pop_back();
  for (double& v : s) v = shift_sigma(v, shift);
  // Upstream: keeps log(alpha) finite in the first UniP/UniC updates.
  constexpr double eps = 1e-6;
  if (std::fabs(s[0] - 1) < eps) s[0] -= eps;
  return s;
}

// DPMSolverMultistepScheduler(use_flow_sigmas=True, flow_shift).set_timesteps(N):
// alphas = linspace(1, 1/1000, N+1), sigmas = flip(shift(1 - alphas))[:-1].
std::vector<double> diffusers_dpm_sigmas(int n, double shift) {
  const std::vector<double> alphas = np_linspace(1.0, 1.0 / kNumTrainTimesteps, n + 1);
  std::vector<double> s(n);
  for (int k = 0; k < n; ++k) s[k] = shift_sigma(1.0 - alphas[n - k], shift);
  return s;
}

// FlowMatchEulerDiscreteScheduler(shift).set_timesteps(N). The constructor
// shifts a float32 table t/1000, t = 1000..1 (torch, float32 arithmetic), whose
// ends become sigma_max/sigma_min; set_timesteps spaces timesteps linearly
// between them in float64 and shifts again (upstream behaviour, kept).
void diffusers_euler(int n, double shift, std::vector<float>* sigmas, std::vector<int64_t>* timesteps) {
  const float shift_f = static_cast<float>(shift);
  const float shift_m1_f = static_cast<float>(shift - 1);
  auto table_shift = [&](float s) { return shift_f * s / (1.0f + shift_m1_f * s); };
  const double sigma_max = table_shift(1000.0f / 1000.0f);
  const double sigma_min = table_shift(1.0f / 1000.0f);
  const std::vector<double> t = np_linspace(sigma_max * kNumTrainTimesteps, sigma_min * kNumTrainTimesteps, n);
  sigmas->resize(n + 1);
  timesteps->resize(n);
  for (int k = 0; k < n; ++k) {
    const float s = static_cast<float>(shift_sigma(t[k] / kNumTrainTimesteps, shift));
    (*sigmas)[k] = s;
    // Upstream timesteps are float32 sigma * 1000; the DiT input is their truncation.
    (*timesteps)[k] = static_cast<int64_t>(s * static_cast<float>(kNumTrainTimesteps));
  }
  (*sigmas)[n] = 0.0f;
}

// The common tail of every numpy-built schedule: timesteps = int64(sigma * 1000)
// from the float64 sigmas, sigmas rounded to float32, final sigma 0.
void finish(const std::vector<double>& s, std::vector<float>* sigmas, std::vector<int64_t>* timesteps) {
  const size_t n = s.size();
  sigmas->resize(n + 1);
  timesteps->resize(n);
  for (size_t k = 0; k < n; ++k) {
    (*timesteps)[k] = static_cast<int64_t>(s[k] * kNumTrainTimesteps);
    (*sigmas)[k] = static_cast<float>(s[k]);
  }
  (*sigmas)[n] = 0.0f;
}

}  // namespace

Schedule make_schedule(Sampler sampler, ScheduleKind kind, int num_steps, double shift) {
  if (num_steps < 1 || num_steps > kNumTrainTimesteps)
    throw Error(kExitUsage, fmt::format("steps {} is out of range", num_steps),
                fmt::format("use between 1 and {} steps (Wan uses 50)", kNumTrainTimesteps));
  if (!std::isfinite(shift) || shift <= 0)
    throw Error(kExitUsage, fmt::format("shift {} is not a positive finite number", shift),
                "use a shift > 0 (Wan uses 5.0; 3.0 for 480p in diffusers, 8-12 for the 1.3B model)");

  if (sampler == Sampler::kDistill)
    throw Error(kExitUsage, "the distill sampler runs the timesteps of --timesteps, not a number of steps",
                "pass --timesteps, e.g. 1000,750,500,250");
  Schedule out;
  out.sampler = sampler;
  out.kind = kind;
  out.shift = shift;
  if (kind == ScheduleKind::kDiffusers && sampler == Sampler::kEuler) {
    diffusers_euler(num_steps, shift, &out.sigmas, &out.timesteps);
  } else if (kind == ScheduleKind::kDiffusers) {
    finish(sampler == Sampler::kUniPC ? diffusers_unipc_sigmas(num_steps, shift)
                                      : diffusers_dpm_sigmas(num_steps, shift),
           &out.sigmas, &out.timesteps);
  } else {
    finish(sampler == Sampler::kUniPC ? wan_unipc_sigmas(num_steps, shift) : wan_sampling_sigmas(num_steps, shift),
           &out.sigmas, &out.timesteps);
  }

  // The multistep solvers divide by log-SNR differences of neighbouring sigmas
  // and take ln(1 - sigma); a shift so extreme that float32 sigmas coincide or
  // exceed 1 would make them NaN. (Euler needs no logs: its diffusers table can
  // start a float32 rounding above 1 for shifts below 1, as upstream does.)
  const float sigma_cap = sampler == Sampler::kEuler ? 2.0f : 1.0f;
  for (int k = 0; k < num_steps; ++k) {
    const float a = out.sigmas[k], b = out.sigmas[k + 1];
    if (!(a > b) || a > sigma_cap)
      throw Error(kExitUsage,
                  fmt::format("shift {} with {} steps gives sigma {} at step {} followed by {}", shift, num_steps, a, k,
                              b),
                  "use a shift between 0.01 and 100");
  }
  return out;
}

Sampler sampler_from_name(std::string_view name) {
  if (name == "unipc") return Sampler::kUniPC;
  if (name == "dpm++" || name == "dpmpp") return Sampler::kDPMSolver;
  if (name == "euler") return Sampler::kEuler;
  if (name == "distill") return Sampler::kDistill;
  throw Error(kExitUsage, fmt::format("unknown sampler '{}'", name), "use unipc, dpm++, euler or distill");
}

const char* sampler_name(Sampler s) {
  switch (s) {
    case Sampler::kUniPC: return "unipc";
    case Sampler::kDPMSolver: return "dpm++";
    case Sampler::kEuler: return "euler";
    case Sampler::kDistill: return "distill";
  }
  return "?";
}

ScheduleKind schedule_kind_from_name(std::string_view name) {
  if (name == "wan") return ScheduleKind::kWan;
  if (name == "diffusers") return ScheduleKind::kDiffusers;
  throw Error(kExitUsage, fmt::format("unknown schedule '{}'", name), "use wan or diffusers");
}

const char* schedule_kind_name(ScheduleKind k) { return k == ScheduleKind::kWan ? "wan" : "diffusers"; }

}  // namespace t2v
