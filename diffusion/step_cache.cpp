#include "diffusion/step_cache.h"

#include <cfloat>
#include <cmath>
#include <utility>

#include "core/error.h"
#include "kernels/ops.h"

namespace t2v {

namespace {

// Per-row sums of |d| for d [B, ...] F32, reduced on d's device to [B, M] and summed
// here in double. |d| = 2 max(d, 0) - d is exact in fp32.
std::vector<double> abs_sums_rows(const Tensor& d) {
  const int64_t B = d.size(0), last = d.size(d.dim() - 1);
  const int64_t M = d.numel() / (B * last);
  const Tensor rows = d.reshape(Shape{B, M, last});
  const Tensor abs = ops::sub(ops::scale(ops::clamp(rows, 0.0f, FLT_MAX), 2.0f), rows);
  const Tensor ones = Tensor::full(Shape{1, last}, 1.0f).to(d.device());
  const std::vector<float> partial = ops::linear(abs, ones).to(Device::CPU).to(DType::F32).to_vector();  // [B, M, 1]
  std::vector<double> sums(static_cast<size_t>(B), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t m = 0; m < M; ++m) sums[static_cast<size_t>(b)] += partial[static_cast<size_t>(b * M + m)];
  return sums;
}

// Rows b of the tensors, in order, as one batch.
Tensor gather_rows(const std::vector<Tensor>& rows) { return rows.size() == 1 ? rows[0] : ops::concat(rows, 0); }

}  // namespace

double default_cache_threshold(StepCacheKind kind) {
  switch (kind) {
    case StepCacheKind::kNone: return 0;
    case StepCacheKind::kTeaCache: return 0.1;
    case StepCacheKind::kFirstBlock: return 0.1;
  }
  return 0;
}

std::vector<double> teacache_published_coefficients(const std::string& preset_name) {
  // TeaCache4Wan2.1, use_ret_steps (modulated input e0).
  if (preset_name == "wan2.1-t2v-1.3b")
    return {-5.21862437e+04, 9.23041404e+03, -5.28275948e+02, 1.36987616e+01, -4.99875664e-02};
  if (preset_name == "wan2.1-t2v-14b")
    return {-3.03318725e+05, 4.90537029e+04, -2.65530556e+03, 5.87365115e+01, -3.15583525e-01};
  return {};
}

double eval_polynomial(const std::vector<double>& coefficients, double x) {
  double y = 0;
  for (double c : coefficients) y = y * x + c;  // Horner, highest power first
  return y;
}

std::vector<double> relative_l1_rows(const Tensor& a, const Tensor& b) {
  T2V_ASSERT(a.shape() == b.shape(), "relative L1 of {} and {}", a.str(), b.str());
  const std::vector<double> num = abs_sums_rows(ops::sub(a, b));
  const std::vector<double> den = abs_sums_rows(b);
  std::vector<double> out(num.size());
  for (size_t i = 0; i < num.size(); ++i) out[i] = num[i] / den[i];  // 0/0 is NaN: never below a threshold
  return out;
}

StepCache::StepCache(StepCacheSettings settings, int branches)
    : s_(std::move(settings)), branches_(static_cast<size_t>(branches)) {
  T2V_ASSERT(branches >= 1, "{} branches", branches);
  T2V_ASSERT(s_.kind != StepCacheKind::kTeaCache || s_.coefficients.size() >= 1, "TeaCache without coefficients");
  T2V_ASSERT(s_.retain_steps >= 1, "retain_steps {}", s_.retain_steps);
}

Tensor StepCache::forward(const WanDiT& dit, const Tensor& x, const Tensor& timestep, const Tensor& context, int step,
                          const Tensor& image_features) {
  T2V_ASSERT(x.size(0) == static_cast<int64_t>(branches_.size()), "{} rows for {} branches", x.size(0),
             branches_.size());
  const size_t first_record = records_.size();
  const WanDiTEmbedded in = dit.embed(x, timestep, context, image_features);
  Tensor out;
  switch (s_.kind) {
    case StepCacheKind::kNone:
      out = dit.head(in, dit.run_blocks(in, in.h, 0, dit.config().num_layers));
      for (size_t b = 0; b < branches_.size(); ++b) records_.push_back({step, static_cast<int>(b), true, -1, 0, -1});
      run_ += static_cast<int64_t>(branches_.size());
      if (s_.observe) {  // the modulation input's change, as TeaCache measures it
        for (size_t b = 0; b < branches_.size(); ++b) {
          Branch& br = branches_[b];
          const Tensor sig = in.e0.narrow0(static_cast<int64_t>(b), 1);
          if (br.previous_signal.defined()) records_[first_record + b].distance = relative_l1_rows(sig, br.previous_signal)[0];
          br.previous_signal = sig.clone();
        }
      }
      break;
    case StepCacheKind::kTeaCache: out = forward_teacache(dit, in, step); break;
    case StepCacheKind::kFirstBlock: out = forward_first_block(dit, in, step); break;
  }
  if (s_.observe) observe_outputs(out, first_record);
  return out;
}

Tensor StepCache::forward_teacache(const WanDiT& dit, const WanDiTEmbedded& in, int step) {
  const auto B = static_cast<int64_t>(branches_.size());
  std::vector<bool> compute(branches_.size(), true);
  for (int64_t b = 0; b < B; ++b) {
    Branch& br = branches_[static_cast<size_t>(b)];
    const Tensor sig = in.e0.narrow0(b, 1);  // [1, 6, dim]
    StepCacheRecord rec{step, static_cast<int>(b), true, -1, 0, -1};
    if (br.previous_signal.defined()) rec.distance = relative_l1_rows(sig, br.previous_signal)[0];
    if (step < s_.retain_steps || !br.residual.defined()) {
      br.accumulated = 0;
    } else {
      br.accumulated += eval_polynomial(s_.coefficients, rec.distance);
      rec.accumulated = br.accumulated;
      if (br.accumulated < s_.threshold) {
        compute[static_cast<size_t>(b)] = false;
      } else {
        br.accumulated = 0;
      }
    }
    rec.computed = compute[static_cast<size_t>(b)];
    records_.push_back(rec);
    br.previous_signal = sig.clone();
  }
  const int64_t L = dit.config().num_layers;
  std::vector<Tensor> rows;
  bool all = true;
  for (bool c : compute) all = all && c;
  if (all) {  // one batched pass, as without the cache
    const Tensor h = dit.run_blocks(in, in.h, 0, L);
    const Tensor residual = ops::sub(h, in.h);
    for (int64_t b = 0; b < B; ++b) branches_[static_cast<size_t>(b)].residual = residual.narrow0(b, 1).clone();
    run_ += B;
    return dit.head(in, h);
  }
  for (int64_t b = 0; b < B; ++b) {
    Branch& br = branches_[static_cast<size_t>(b)];
    const Tensor h0 = in.h.narrow0(b, 1);
    if (compute[static_cast<size_t>(b)]) {
      Tensor h = dit.run_blocks(in.row(b), h0, 0, L);
      br.residual = ops::sub(h, h0);
      rows.push_back(std::move(h));
      ++run_;
    } else {
      rows.push_back(ops::add(h0, br.residual));
      ++skipped_;
    }
  }
  return dit.head(in, gather_rows(rows));
}

Tensor StepCache::forward_first_block(const WanDiT& dit, const WanDiTEmbedded& in, int step) {
  const auto B = static_cast<int64_t>(branches_.size());
  const int64_t L = dit.config().num_layers;
  const Tensor h1 = dit.run_blocks(in, in.h, 0, 1);  // block 0 for every branch
  const Tensor r1 = ops::sub(h1, in.h);              // its residual [B, N, dim]
  std::vector<bool> compute(branches_.size(), true);
  for (int64_t b = 0; b < B; ++b) {
    Branch& br = branches_[static_cast<size_t>(b)];
    StepCacheRecord rec{step, static_cast<int>(b), true, -1, 0, -1};
    if (br.previous_signal.defined()) {
      rec.distance = relative_l1_rows(r1.narrow0(b, 1), br.previous_signal)[0];
      rec.computed = !(rec.distance <= s_.threshold);  // diffusers: compute when diff > threshold
    }
    compute[static_cast<size_t>(b)] = rec.computed;
    records_.push_back(rec);
  }
  bool all = true;
  for (bool c : compute) all = all && c;
  if (all) {
    const Tensor h = dit.run_blocks(in, h1, 1, L);
    const Tensor tail = ops::sub(h, h1);
    for (int64_t b = 0; b < B; ++b) {
      Branch& br = branches_[static_cast<size_t>(b)];
      br.previous_signal = r1.narrow0(b, 1).clone();
      br.residual = tail.narrow0(b, 1).clone();
    }
    run_ += B;
    return dit.head(in, h);
  }
  std::vector<Tensor> rows;
  for (int64_t b = 0; b < B; ++b) {
    Branch& br = branches_[static_cast<size_t>(b)];
    const Tensor h1b = h1.narrow0(b, 1);
    if (compute[static_cast<size_t>(b)]) {
      Tensor h = dit.run_blocks(in.row(b), h1b, 1, L);
      br.previous_signal = r1.narrow0(b, 1).clone();
      br.residual = ops::sub(h, h1b);
      rows.push_back(std::move(h));
      ++run_;
    } else {
      rows.push_back(ops::add(h1b, br.residual));
      ++skipped_;
    }
  }
  return dit.head(in, gather_rows(rows));
}

void StepCache::observe_outputs(const Tensor& out, size_t first_record) {
  for (size_t b = 0; b < branches_.size(); ++b) {
    Branch& br = branches_[b];
    const Tensor o = out.narrow0(static_cast<int64_t>(b), 1);
    if (br.previous_output.defined()) records_[first_record + b].output_distance = relative_l1_rows(o, br.previous_output)[0];
    br.previous_output = o.clone();
  }
}

}  // namespace t2v
