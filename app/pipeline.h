// The text-to-video pipeline: tokenize -> umT5 -> denoise with the DiT and a
// flow scheduler (CFG as one batch of 2) -> denormalise -> chunked VAE decode ->
// MP4 (+ previews). Stage timings go to the user and into the MP4 metadata.
#pragma once

#include <string>
#include <vector>

#include "app/model_paths.h"
#include "app/options.h"
#include "app/progress.h"

namespace t2v {

struct PipelineResult {
  std::string output;
  uint64_t seed = 0;
  double encode_s = 0, denoise_s = 0, decode_s = 0, mux_s = 0, load_s = 0;
  int frames = 0;
};

// Wan2.1's default negative prompt (WAN_SPEC §4.1), used when none is given.
extern const char* const kWanDefaultNegativePrompt;

// Runs the whole pipeline. Options must be validated; paths resolved. Writes
// o.output (and previews) atomically. Extra: when `frames_dump` is non-empty the
// decoded frames in [0, 1] before 8-bit rounding are saved there as F32
// [F, H, W, 3] under the key "frames" (parity tests against diffusers).
PipelineResult run_pipeline(const GenerateOptions& o, const ModelPaths& paths, uint64_t seed, Progress& progress,
                            const std::string& frames_dump = "");

}  // namespace t2v
