// The text-to-video pipeline as four stages: encode_prompts (tokenize -> umT5) ->
// denoise (the DiT and a flow scheduler, CFG as one batch of 2) -> decode_frames
// (denormalise -> chunked VAE decode into a VideoSink) -> write_outputs (MP4 +
// previews). Stage timings go to the user and into the MP4 metadata.
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <string>

#include "app/model_loader.h"
#include "app/model_paths.h"
#include "app/progress.h"
#include "app/render_request.h"
#include "app/video_sink.h"
#include "core/tensor.h"

namespace t2v {

// Seconds per stage of one render; `load` is weights read on first use (not in the others).
struct StageTimes {
  double load_s = 0, encode_s = 0, denoise_s = 0, decode_s = 0, mux_s = 0;
  int dit_forwards = 0;  // transformer evaluations of one sample: 2 per CFG step, 1 with cfg 1
};

struct PipelineResult {
  std::string output;
  uint64_t seed = 0;
  int frames = 0;
  StageTimes times;
};

// The prompt and the negative prompt as the DiT reads them: [text_len, D] F32 each,
// the encoder's rows followed by exact zeros.
struct EncodedPrompts {
  Tensor positive, negative;
  size_t positive_tokens = 0, negative_tokens = 0;  // ids fed to umT5 (text tokens + EOS)
};

// Polled after every denoising step and decoded chunk: when set, the render stops
// there and throws Error(75) without writing anything.
using CancelFlag = const std::atomic<bool>*;

// A loaded model: configs and tokenizer at construction, weights on first use,
// then kept for every further video (a batch loads each model once).
class Pipeline {
 public:
  // Reads configs and the tokenizer (cheap) and checks that the parts fit together.
  Pipeline(ModelPaths paths, PipelineLoadOptions opts);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Renders one video to r.output (atomically; previews with r.preview): the four stages.
  PipelineResult render(const RenderRequest& r, Progress& progress, CancelFlag cancel = nullptr);

  // Checks the request against the model (an image for an image-to-video model and only
  // then, expert options only with two experts: Error 64) and, with --image, reads and
  // prepares the image (Error 66/65) and returns the request at the video size the image
  // gives (docs/wan.md §8.4), printing it. denoise() expects a planned request.
  RenderRequest plan(const RenderRequest& r);

  // ---- the stages ----
  // Reads and checks the request's LoRAs against the DiT (Error 64/65/66, before any
  // weights load; render() calls it first) and drops a DiT loaded with other LoRAs.
  void prepare_dit(const RenderRequest& r);
  // Tokenizes both prompts (Error 65 under strict when one is cut at text_len), loads
  // umT5 on first use and encodes them; frees umT5 unless keep_text_encoder.
  EncodedPrompts encode_prompts(const RenderRequest& r, StageTimes& t);
  // Loads the DiT on first use (with the request's LoRAs; Wan2.2 A14B: each expert when
  // its first step comes, one resident with r.low_memory) and runs r.steps sampler steps
  // (the distill sampler: one per r.timesteps entry) from the seed's (or the injected)
  // noise, with the image's conditioning for image-to-video; one DiT forward per step with
  // cfg 1, else one batch of 2. NaN/Inf is Error(70) after step 1 and at the end. Returns
  // the final latents [1, C, T, h, w] on the device.
  Tensor denoise(const RenderRequest& r, const EncodedPrompts& text, Progress& progress, CancelFlag cancel,
                 StageTimes& t);
  // Loads the VAE decoder on first use, denormalises `latents` and decodes them one
  // latent frame at a time into `sink` as RGB24 (and floats in [0, 1] when it wants them).
  void decode_frames(const RenderRequest& r, const Tensor& latents, VideoSink& sink, CancelFlag cancel,
                     StageTimes& t);
  // The frames dump, the timings in the settings tag, the MP4 renamed into place, the
  // previews; the closing log line and the "done" event.
  PipelineResult write_outputs(const RenderRequest& r, VideoSink& sink, nlohmann::json settings, StageTimes t,
                               const Progress& progress) const;

  const ModelPaths& paths() const;
  // Latent grid for a video: [T, h, w] (the DiT needs h, w even).
  std::array<int64_t, 3> latent_grid(int width, int height, int frames) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace t2v
