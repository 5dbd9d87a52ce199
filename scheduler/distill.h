// Step-distilled sampling: the short fixed timestep lists (1000,750,500,250) that
// the 4-step distilled Wan models and LoRAs (LightX2V's step + CFG distillation,
// the Lightning LoRAs) were trained for, run without CFG. It follows LightX2V's
// WanStepDistillScheduler (lightx2v/models/schedulers/wan/step_distill/scheduler.py):
//
//   s      = float32 torch.linspace(1, 0, 1001)[:-1]               (the training table)
//   s'     = shift * s / (1 + (shift - 1) * s)                      (float32 tensor ops)
//   sigma_i = s'[1000 - t_i],  the DiT sees 1000 * sigma_i          (a float, not rounded)
//   x     <- (x - sigma_i * v) + sigma_{i+1} * v,   sigma_N = 0     (the last step lands on x0)
//
// For 1000,750,500,250 at shift 5 the DiT timesteps are 1000, 937.5, 833.33..., 625.
// The sampling starts from the noise as given (sigma_0 = 1 for t_0 = 1000).
#pragma once

#include <string>
#include <vector>

#include "core/tensor.h"

namespace t2v {

// "1000,750,500,250" (commas, optional spaces) -> {1000, 750, 500, 250}.
// Error(64) naming the list unless check_distill_timesteps accepts it.
std::vector<int> parse_distill_timesteps(const std::string& text);
// Every entry an integer in 1..1000 (training timesteps: 1000 is pure noise), the
// list non-empty and strictly decreasing. Error(64) naming `what` and the entry.
void check_distill_timesteps(const std::vector<int>& timesteps, const std::string& what = "--timesteps");
// "1000,750,500,250": the list as the CLI and the metadata spell it.
std::string format_distill_timesteps(const std::vector<int>& timesteps);

// torch.linspace(1, 0, 1001) in float32 as torch's CPU kernel computes it: each
// half from its own end with one fused multiply-add per element (checked bit for
// bit against torch 2.x, tests/scheduler).
std::vector<float> distill_training_table();

struct DistillSchedule {
  std::vector<int> steps;        // the list as given
  double shift = 5.0;
  std::vector<float> sigmas;     // [N+1]; sigmas[N] = 0
  std::vector<float> timesteps;  // [N] float32 1000 * sigma_i: the DiT input
  int num_steps() const { return static_cast<int>(steps.size()); }
};

// Error(64) for a bad list (check_distill_timesteps) or a shift that is not a
// finite number > 0.
DistillSchedule make_distill_schedule(const std::vector<int>& steps, double shift);

class DistillScheduler {
 public:
  DistillScheduler(const std::vector<int>& steps, double shift);
  const DistillSchedule& schedule() const { return schedule_; }
  int num_steps() const { return schedule_.num_steps(); }
  // The DiT's timestep for step i (1000 * sigma_i, not rounded).
  float dit_timestep(int i) const { return schedule_.timesteps[static_cast<size_t>(i)]; }

  // velocity, sample: F32 of one shape on one device. Returns the sample at
  // sigmas[i + 1]; steps must come in order 0, 1, ..., N-1.
  Tensor step(const Tensor& velocity, int step_index, const Tensor& sample);

 private:
  DistillSchedule schedule_;
  int next_step_ = 0;
};

}  // namespace t2v
