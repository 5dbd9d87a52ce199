// Step caching for the Wan DiT: between similar denoising steps the blocks' residual of
// an earlier step stands in for running them again.
//
// - TeaCache (ali-vilab/TeaCache, TeaCache4Wan2.1 with retention steps): per branch, the
//   relative L1 change of the blocks' modulation input e0 since the previous step,
//   rescaled by a polynomial fitted per model, is accumulated; while the sum stays under
//   the threshold the blocks are skipped and the last computed residual
//   (blocks' output - patch embedding) is added instead. The first `retain_steps` steps are
//   always computed; a computed step resets the sum.
// - First-block cache (diffusers FirstBlockCache): block 0 always runs; when the relative
//   L1 change of its residual against the one of the last computed step is at most the
//   threshold, the remaining blocks are skipped and their last residual (last block's
//   output - first block's output) is added to block 0's output.
//
// Each branch (batch row: cond, uncond) keeps its own state, as the references run the
// two CFG branches as separate forwards.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "diffusion/wan_dit.h"

namespace t2v {

enum class StepCacheKind { kNone, kTeaCache, kFirstBlock };

struct StepCacheSettings {
  StepCacheKind kind = StepCacheKind::kNone;
  double threshold = 0;
  // TeaCache's rescale polynomial, highest power first (numpy.poly1d order).
  std::vector<double> coefficients;
  int retain_steps = 5;  // TeaCache: steps computed at the start whatever the distance
  bool observe = false;  // record the distances of every step (calibration), any kind
};

// The thresholds used when the user names a kind without one (docs/PERFORMANCE.md).
double default_cache_threshold(StepCacheKind kind);
// TeaCache4Wan2.1's published coefficients (retention-step variant) for a DiT preset
// ("wan2.1-t2v-1.3b", "wan2.1-t2v-14b"); empty for any other model.
std::vector<double> teacache_published_coefficients(const std::string& preset_name);
// numpy.poly1d(coefficients)(x).
double eval_polynomial(const std::vector<double>& coefficients, double x);

// One branch's decision at one step.
struct StepCacheRecord {
  int step = 0, branch = 0;
  bool computed = true;
  double distance = -1;         // the relative L1 change the kind decides on (-1: none yet)
  double accumulated = 0;       // TeaCache: the rescaled sum compared with the threshold (0: retained step)
  double output_distance = -1;  // observe: relative L1 change of the DiT's output (-1: none yet)
};

class StepCache {
 public:
  // `branches`: the batch rows of every forward (2 with CFG, else 1).
  StepCache(StepCacheSettings settings, int branches);

  // The velocity [B, out_dim, T, H, W] for denoising step `step` (0, 1, ... in order):
  // the arguments of WanDiT::forward, B == branches.
  // `image_features` as WanDiT::forward takes them (image-to-video), else undefined.
  Tensor forward(const WanDiT& dit, const Tensor& x, const Tensor& timestep, const Tensor& context, int step,
                 const Tensor& image_features = {});

  int64_t forwards_run() const { return run_; }          // branch forwards whose blocks ran
  int64_t forwards_skipped() const { return skipped_; }  // branch forwards that reused a residual
  const std::vector<StepCacheRecord>& records() const { return records_; }
  const StepCacheSettings& settings() const { return s_; }

 private:
  struct Branch {
    Tensor previous_signal;  // TeaCache: e0 of the last step; first-block: block 0's residual of the last computed step
    Tensor residual;         // the residual that stands in for the skipped blocks
    Tensor previous_output;  // observe: the last output
    double accumulated = 0;
  };
  Tensor forward_teacache(const WanDiT& dit, const WanDiTEmbedded& in, int step);
  Tensor forward_first_block(const WanDiT& dit, const WanDiTEmbedded& in, int step);
  void observe_outputs(const Tensor& out, size_t first_record);

  StepCacheSettings s_;
  std::vector<Branch> branches_;
  std::vector<StepCacheRecord> records_;
  int64_t run_ = 0, skipped_ = 0;
};

// sum |a - b| / sum |b| over each batch row (dim 0) of two tensors of one shape, on their
// device; the mean ratio both references compute.
std::vector<double> relative_l1_rows(const Tensor& a, const Tensor& b);

}  // namespace t2v
