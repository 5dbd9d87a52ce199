// The text-to-video pipeline: tokenize -> umT5 -> denoise with the DiT and a
// flow scheduler (CFG as one batch of 2) -> denormalise -> chunked VAE decode ->
// MP4 (+ previews). Stage timings go to the user and into the MP4 metadata.
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/model_paths.h"
#include "app/options.h"
#include "app/progress.h"
#include "core/tensor.h"

namespace t2v {

struct PipelineResult {
  std::string output;
  uint64_t seed = 0;
  double encode_s = 0, denoise_s = 0, decode_s = 0, mux_s = 0, load_s = 0;
  int frames = 0;
};

// Wan2.1's default negative prompt (docs/wan.md §4.1), used when none is given.
extern const char* const kWanDefaultNegativePrompt;

struct PipelineLoadOptions {
  Device device = Device::CPU;
  DType dtype = DType::F32;     // storage of the large GEMM weights: F32 (CPU), BF16 or F32 (CUDA)
  bool strict = false;          // unused weight keys and prompt truncation are errors
  bool keep_text_encoder = false;  // keep umT5 loaded between videos (batch); else freed before the DiT loads
};

// A loaded model: configs and tokenizer at construction, weights on first use,
// then kept for every further video (a batch loads each model once).
class Pipeline {
 public:
  // Reads configs and the tokenizer (cheap) and checks that the parts fit together.
  Pipeline(ModelPaths paths, PipelineLoadOptions opts);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Renders one video to o.output (atomically; previews with o.preview). `cancel`, when
  // set, is polled after every denoising step: the render stops there and throws
  // Error(75) without writing anything. `frames_dump`: see run_pipeline.
  PipelineResult render(const GenerateOptions& o, uint64_t seed, Progress& progress,
                        const std::string& frames_dump = "", const std::atomic<bool>* cancel = nullptr);

  const ModelPaths& paths() const { return paths_; }
  // Latent grid for a video: [T, h, w] (the DiT needs h, w even).
  std::array<int64_t, 3> latent_grid(int width, int height, int frames) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  ModelPaths paths_;
};

// The settings stored as JSON in the MP4's `t2v` tag (everything needed to
// reproduce the video).
nlohmann::json generation_settings_json(const GenerateOptions& o, const std::string& negative, uint64_t seed,
                                        const std::string& model);

// The weight dtype for --dtype on a device: auto -> F32 on CPU, BF16 on CUDA.
// Error(64) for combinations the backends do not run (bf16 on the CPU; fp8 until
// the fp8 GEMM path exists).
DType compute_dtype_for(const std::string& dtype, Device device);

// One video with a freshly loaded model (what `t2v generate` does). Writes
// o.output (and previews) atomically. When `frames_dump` is non-empty the decoded
// frames in [0, 1] before 8-bit rounding are saved there as F32 [F, H, W, 3]
// under the key "frames" (parity tests against diffusers).
PipelineResult run_pipeline(const GenerateOptions& o, const ModelPaths& paths, uint64_t seed, Progress& progress,
                            const std::string& frames_dump = "");

}  // namespace t2v
