// What the denoising loop shows an observer at every step (live previews, job progress),
// kept apart from the pipeline so the loop itself only calls it.
#pragma once

#include <functional>

#include "core/tensor.h"

namespace t2v {

// Step `step` (1-based) of `steps`: the sample the DiT was run on and the guided velocity it
// predicted, at noise level `sigma`. The model's estimate of the clean latents is
// sample - sigma * velocity (docs/wan.md §4.2). The tensors belong to the loop: an observer
// reads them (copying what it keeps) and never writes to them, so it cannot change the video.
struct DenoiseStep {
  int step = 0, steps = 0;
  double sigma = 0;
  const Tensor* sample = nullptr;    // [1, C, T, h, w], on the render device
  const Tensor* velocity = nullptr;  // [1, C, T, h, w], on the render device
};

// Called once per step, after the DiT and before the scheduler moves the sample on.
using StepObserver = std::function<void(const DenoiseStep&)>;

}  // namespace t2v
