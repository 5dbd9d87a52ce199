// The step-distilled sampler (see distill.h). The table and the shift reproduce
// torch's float32 arithmetic on purpose; the update is one lincomb.
#include "scheduler/distill.h"

#include <charconv>
#include <cmath>
#include <string_view>

#include <fmt/format.h>

#include "core/error.h"
#include "kernels/ops.h"
#include "scheduler/schedule.h"

namespace t2v {

namespace {

constexpr const char* kTimestepsHint =
    "give strictly decreasing integer training timesteps in 1..1000, e.g. --timesteps 1000,750,500,250 "
    "(the 4-step distilled LoRAs)";

}  // namespace

void check_distill_timesteps(const std::vector<int>& ts, const std::string& what) {
  if (ts.empty()) throw Error(kExitUsage, fmt::format("{} is empty", what), kTimestepsHint);
  for (size_t i = 0; i < ts.size(); ++i) {
    if (ts[i] < 1 || ts[i] > kNumTrainTimesteps)
      throw Error(kExitUsage,
                  fmt::format("{}: entry {} is {}, outside 1..{} (0 is the clean sample, which the sampler "
                              "reaches after the last step)",
                              what, i + 1, ts[i], kNumTrainTimesteps),
                  kTimestepsHint);
    if (i > 0 && ts[i] >= ts[i - 1])
      throw Error(kExitUsage,
                  fmt::format("{}: {} follows {}; the list must strictly decrease", what, ts[i], ts[i - 1]),
                  kTimestepsHint);
  }
}

std::vector<int> parse_distill_timesteps(const std::string& text) {
  std::vector<int> ts;
  const std::string_view all(text);
  size_t pos = 0;
  while (true) {
    const size_t comma = all.find(',', pos);
    std::string_view item = all.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    int v = 0;
    const auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || ec != std::errc() || p != item.data() + item.size())
      throw Error(kExitUsage, fmt::format("--timesteps '{}': '{}' is not an integer", text, item), kTimestepsHint);
    ts.push_back(v);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  check_distill_timesteps(ts, fmt::format("--timesteps '{}'", text));
  return ts;
}

std::string format_distill_timesteps(const std::vector<int>& ts) {
  std::string s;
  for (size_t i = 0; i < ts.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(ts[i]);
  }
  return s;
}

std::vector<float> distill_training_table() {
  // torch.linspace(start=1, end=0, steps=1001), float32: step = (end - start) / (steps - 1)
  // in float32; elements below steps/2 are fma(step, k, start), the others
  // fma(-step, steps - 1 - k, end), one rounding each.
  constexpr int kSteps = kNumTrainTimesteps + 1;
  const float start = 1.0f, end = 0.0f;
  const float step = (end - start) / static_cast<float>(kSteps - 1);
  std::vector<float> s(kSteps);
  for (int k = 0; k < kSteps; ++k)
    s[static_cast<size_t>(k)] = k < kSteps / 2 ? std::fma(step, static_cast<float>(k), start)
                                               : std::fma(-step, static_cast<float>(kSteps - 1 - k), end);
  s.pop_back();  // [:-1]
  return s;
}

DistillSchedule make_distill_schedule(const std::vector<int>& steps, double shift) {
  check_distill_timesteps(steps);
  if (!std::isfinite(shift) || shift <= 0)
    throw Error(kExitUsage, fmt::format("shift {} is not a positive finite number", shift),
                "use a shift > 0 (the distilled Wan LoRAs use 5.0)");
  static const std::vector<float> table = distill_training_table();
  DistillSchedule out;
  out.steps = steps;
  out.shift = shift;
  // float32 tensor ops with Python scalars: shift and shift - 1 (a float64
  // subtraction) are rounded to float32 first; no fused multiply-add here
  // (this library builds with -ffp-contract=off).
  const float shift_f = static_cast<float>(shift);
  const float shift_m1_f = static_cast<float>(shift - 1.0);
  for (int t : steps) {
    const float s = table[static_cast<size_t>(kNumTrainTimesteps - t)];
    const float num = shift_f * s;
    const float den = 1.0f + shift_m1_f * s;
    const float sigma = num / den;
    out.sigmas.push_back(sigma);
    out.timesteps.push_back(sigma * static_cast<float>(kNumTrainTimesteps));
  }
  out.sigmas.push_back(0.0f);
  return out;
}

DistillScheduler::DistillScheduler(const std::vector<int>& steps, double shift)
    : schedule_(make_distill_schedule(steps, shift)) {}

Tensor DistillScheduler::step(const Tensor& velocity, int i, const Tensor& sample) {
  T2V_ASSERT(i == next_step_ && i < num_steps(), "distill step {} out of order (expected {} of {})", i, next_step_,
             num_steps());
  T2V_ASSERT(velocity.dtype() == DType::F32 && sample.dtype() == DType::F32 && velocity.shape() == sample.shape() &&
                 velocity.device() == sample.device(),
             "distill step: velocity {} and sample {} must be F32 of one shape", velocity.str(), sample.str());
  // (x - sigma_i v) + sigma_{i+1} v, summed in double and rounded once (upstream
  // rounds each float32 product and sum: within a few ulp of this).
  const double s = schedule_.sigmas[static_cast<size_t>(i)], s_next = schedule_.sigmas[static_cast<size_t>(i) + 1];
  Tensor next = Tensor::empty(sample.shape(), DType::F32, sample.device());
  ops::lincomb(next, {{1.0, &sample}, {-s, &velocity}, {s_next, &velocity}});
  ++next_step_;
  return next;
}

}  // namespace t2v
