// Flow-matching samplers for the Wan DiT (docs/wan.md §4.2, §4.4, §4.5).
//
// The DiT predicts the velocity v = eps - x0 at noise level sigma, where
// x_sigma = (1 - sigma) * x0 + sigma * eps. A scheduler turns the velocity at
// step i into the sample at step i+1:
//
//   Schedule s = sched->set_timesteps(50, 5.0, ScheduleKind::kWan);
//   for (int i = 0; i < s.num_steps(); ++i) {
//     Tensor v = cfg(dit(x, s.timesteps[i], neg), dit(x, s.timesteps[i], pos), 5.0);
//     x = sched->step(v, i, x);
//   }
//
// Each step is a handful of ops::lincomb() calls (kernels/ops.h) whose
// coefficients come from the float32 sigmas, evaluated in double on the host;
// the tensors stay on their device (any backend with a lincomb entry).
// The multistep samplers keep the last converted outputs x0 = x - sigma * v as
// state, so steps must be taken in order 0, 1, ..., N-1 after set_timesteps.
// Steps are addressed by index. (Upstream finds the first step by looking its
// timestep up in the schedule and starts at index 1 when that timestep repeats,
// as it does for huge shifts; the goldens pin upstream to index order.)
#pragma once

#include <memory>

#include "core/tensor.h"
#include "scheduler/schedule.h"

namespace t2v {

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  Sampler sampler() const { return sampler_; }

  // Builds the schedule (make_schedule) and resets the multistep state.
  const Schedule& set_timesteps(int num_steps, double shift, ScheduleKind kind);
  const Schedule& schedule() const { return schedule_; }
  const std::vector<float>& sigmas() const { return schedule_.sigmas; }          // [N+1], last 0
  const std::vector<int64_t>& timesteps() const { return schedule_.timesteps; }  // [N]
  int num_steps() const { return schedule_.num_steps(); }

  // velocity, sample: F32, same shape (any). Returns the sample at sigmas[step_index + 1].
  // step_index must be the next step of the current schedule.
  Tensor step(const Tensor& velocity, int step_index, const Tensor& sample);

 protected:
  explicit Scheduler(Sampler s) : sampler_(s) {}
  virtual void reset() = 0;
  virtual Tensor step_impl(const Tensor& velocity, int i, const Tensor& sample) = 0;
  double sigma(int i) const { return schedule_.sigmas[i]; }  // float32 value, as double

 private:
  Sampler sampler_;
  Schedule schedule_;
  int next_step_ = -1;  // -1 until set_timesteps
};

std::unique_ptr<Scheduler> make_scheduler(Sampler sampler);

// Classifier-free guidance: v = v_uncond + scale * (v_cond - v_uncond).
// Throws Error(64) for a scale that is negative or not finite.
Tensor cfg(const Tensor& v_uncond, const Tensor& v_cond, double scale);

// ---- the samplers ----------------------------------------------------------------
// Log-SNR of a flow sigma: lambda = ln(1 - sigma) - ln(sigma); -inf at sigma = 1,
// +inf at sigma = 0. The step formulas below are written so that these limits
// give the upstream values without NaN (docs/wan.md §4.4 last paragraph, §4.5).
double flow_lambda(double sigma);

// UniPC, bh2, order 2, predict-x0, lower_order_final, warm-up (docs/wan.md §4.4).
// Step i: x0_i = x_i - sigma_i v_i; the corrector UniC (order of step i-1)
// refines x_i with x0_i; the predictor UniP (order min(2, N-i, i+1)) goes to
// sigma_{i+1}.
class UniPCScheduler final : public Scheduler {
 public:
  UniPCScheduler() : Scheduler(Sampler::kUniPC) {}

 private:
  void reset() override;
  Tensor step_impl(const Tensor& velocity, int i, const Tensor& sample) override;
  Tensor x0_[2];        // converted outputs of steps i-1 (x0_[0]) and i-2 (x0_[1])
  Tensor last_sample_;  // the (corrected) sample the previous predictor started from
  int last_order_ = 0;  // predictor order of the previous step
  int lower_order_nums_ = 0;
};

// DPM-Solver++ (data prediction), 2M midpoint, lower_order_final (docs/wan.md §4.5).
class DPMSolverScheduler final : public Scheduler {
 public:
  DPMSolverScheduler() : Scheduler(Sampler::kDPMSolver) {}

 private:
  void reset() override;
  Tensor step_impl(const Tensor& velocity, int i, const Tensor& sample) override;
  Tensor x0_prev_;  // converted output of step i-1
  int lower_order_nums_ = 0;
};

// Euler on the flow ODE: x_{i+1} = x_i + (sigma_{i+1} - sigma_i) * v_i.
class EulerScheduler final : public Scheduler {
 public:
  EulerScheduler() : Scheduler(Sampler::kEuler) {}

 private:
  void reset() override {}
  Tensor step_impl(const Tensor& velocity, int i, const Tensor& sample) override;
};

}  // namespace t2v
