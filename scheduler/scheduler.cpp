// Scheduler base (schedule + step order), CFG, and the Euler sampler.
#include "scheduler/scheduler.h"

#include <cmath>

#include "core/error.h"
#include "kernels/ops.h"

namespace t2v {

const Schedule& Scheduler::set_timesteps(int num_steps, double shift, ScheduleKind kind) {
  schedule_ = make_schedule(sampler_, kind, num_steps, shift);
  next_step_ = 0;
  reset();
  return schedule_;
}

Tensor Scheduler::step(const Tensor& velocity, int step_index, const Tensor& sample) {
  T2V_ASSERT(next_step_ >= 0, "scheduler step before set_timesteps");
  T2V_ASSERT(step_index == next_step_ && step_index < num_steps(), "scheduler step {} out of order (expected {} of {})",
             step_index, next_step_, num_steps());
  T2V_ASSERT(velocity.dtype() == DType::F32 && sample.dtype() == DType::F32 && velocity.shape() == sample.shape() &&
                 velocity.device() == sample.device(),
             "scheduler step: velocity {} and sample {} must be F32 of one shape", velocity.str(), sample.str());
  Tensor next = step_impl(velocity, step_index, sample);
  ++next_step_;
  return next;
}

std::unique_ptr<Scheduler> make_scheduler(Sampler sampler) {
  switch (sampler) {
    case Sampler::kUniPC: return std::make_unique<UniPCScheduler>();
    case Sampler::kDPMSolver: return std::make_unique<DPMSolverScheduler>();
    case Sampler::kEuler: return std::make_unique<EulerScheduler>();
    case Sampler::kDistill: break;  // a timestep list, not a step count: DistillScheduler (scheduler/distill.h)
  }
  T2V_ASSERT(false, "unknown sampler {}", static_cast<int>(sampler));
  return nullptr;
}

Tensor cfg(const Tensor& v_uncond, const Tensor& v_cond, double scale) {
  if (!std::isfinite(scale) || scale < 0)
    throw Error(kExitUsage, fmt::format("cfg scale {} is not a finite number >= 0", scale),
                "use a guidance scale such as 5.0 (Wan's default)");
  T2V_ASSERT(v_uncond.shape() == v_cond.shape(), "cfg: {} vs {}", v_uncond.str(), v_cond.str());
  Tensor v = Tensor::empty(v_cond.shape(), DType::F32, v_cond.device());
  // v_u + g * (v_c - v_u) = (1 - g) * v_u + g * v_c
  ops::lincomb(v, {{1.0 - scale, &v_uncond}, {scale, &v_cond}});
  return v;
}

double flow_lambda(double sigma) { return std::log(1.0 - sigma) - std::log(sigma); }

Tensor EulerScheduler::step_impl(const Tensor& velocity, int i, const Tensor& sample) {
  // FlowMatchEulerDiscreteScheduler computes dt = sigma_next - sigma in float32.
  const float dt = schedule().sigmas[i + 1] - schedule().sigmas[i];
  Tensor next = Tensor::empty(sample.shape(), DType::F32, sample.device());
  ops::lincomb(next, {{1.0, &sample}, {static_cast<double>(dt), &velocity}});
  return next;
}

}  // namespace t2v
