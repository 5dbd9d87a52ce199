// The text-to-video pipeline as four stages: encode_prompts (tokenize -> umT5) ->
// denoise (the DiT and a flow scheduler, CFG as one batch of 2) -> decode_frames
// (denormalise -> chunked VAE decode into a VideoSink) -> write_outputs (MP4 +
// previews). Image-to-video models add condition_on_images (CLIP features and the
// VAE-encoded first/last frame, docs/wan.md §5.1) before denoising. Stage timings go
// to the user and into the MP4 metadata.
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "app/denoise_observer.h"
#include "app/i2v_conditioning.h"
#include "app/model_loader.h"
#include "app/model_paths.h"
#include "app/progress.h"
#include "app/render_request.h"
#include "app/video_sink.h"
#include "core/tensor.h"
#include "diffusion/step_cache.h"

namespace t2v {

// Seconds per stage of one render; `load` is weights read on first use (not in the others).
struct StageTimes {
  double load_s = 0, encode_s = 0, denoise_s = 0, decode_s = 0, mux_s = 0;
  int dit_forwards = 0;  // transformer evaluations of one sample: 2 per CFG step, 1 with cfg 1
};

// What the denoising ran: DiT forwards per CFG branch (each branch of each step counts
// once), and the step cache's decisions.
struct DenoiseStats {
  int64_t dit_forwards = 0;          // forwards whose blocks ran
  int64_t dit_forwards_skipped = 0;  // forwards that reused a cached residual
  int steps_reused = 0;              // steps where every branch reused one
  std::vector<StepCacheRecord> records;
};

struct PipelineResult {
  std::string output;
  uint64_t seed = 0;
  int frames = 0;
  StageTimes times;
  DenoiseStats denoise;
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
  // `on_step` sees every denoising step (denoise_observer.h).
  PipelineResult render(const RenderRequest& r, Progress& progress, CancelFlag cancel = nullptr,
                        const StepObserver& on_step = {});

  // ---- the stages ----
  // Reads and checks the request's LoRAs against the DiT (Error 64/65/66, before any
  // weights load; render() calls it first) and drops a DiT loaded with other LoRAs.
  void prepare_dit(const RenderRequest& r);
  // Tokenizes both prompts (Error 65 under strict when one is cut at text_len), loads
  // umT5 on first use and encodes them; frees umT5 unless keep_text_encoder.
  // `cancel` is polled between its steps (tokenize, load, encode each prompt).
  EncodedPrompts encode_prompts(const RenderRequest& r, StageTimes& t, CancelFlag cancel = nullptr);
  // Checks that the model, the images and the options go together (Error 64: images for
  // a text-to-video model, none for an image-to-video one, a last image for a model without
  // first-last-frame weights, FLF2V at other than 81 frames, --boundary/--cfg-low without two
  // experts, --lora with two), reads the images with load_rgb_image (Error 65/66, every
  // model) and sets r.width x r.height to the video size (docs/wan.md §5.1, §8.4): Wan2.1
  // I2V/FLF2V and Wan2.2 I2V-A14B from the area budget at the image's aspect ratio, TI2V-5B
  // the best multiple-of-32 fit (Lanczos + centre crop); Wan2.1's I2V/FLF2V default negative
  // prompt when none is given. A no-op for text-only requests on text-to-video models.
  void prepare_images(RenderRequest& r);
  // Loads the encoders on first use (CLIP for Wan2.1 I2V/FLF2V; the VAE encoder) and builds
  // the conditioning (NaN/Inf in it is Error 70): Wan2.1 y and CLIP features, I2V-A14B y,
  // TI2V-5B the image's first-frame latent. `cancel` is polled after each load.
  I2VCondition condition_on_images(const RenderRequest& r, StageTimes& t, CancelFlag cancel = nullptr);
  // Loads the DiT on first use (with the request's LoRAs; Wan2.2 A14B: each expert when
  // its first step comes, one resident with r.low_memory) and runs r.steps sampler steps
  // (the distill sampler: one per r.timesteps entry) from the seed's (or the injected)
  // noise; one DiT forward per step with cfg 1, else one batch of 2; `cond`
  // (image-to-video) is fed to both guidance passes (TI2V: latent frame 0 replaced after
  // every step, its tokens at timestep 0). NaN/Inf is Error(70) after step 1 and at the
  // end. Returns the final latents [1, C, T, h, w] on the device. `on_step`, when set, sees
  // every step; r.cache selects the step cache (resolve_cache; a fresh cache per expert);
  // `stats` receives the forward counts.
  Tensor denoise(const RenderRequest& r, const EncodedPrompts& text, Progress& progress, CancelFlag cancel,
                 StageTimes& t, const I2VCondition* cond = nullptr, const StepObserver& on_step = {},
                 DenoiseStats* stats = nullptr);
  // Loads the VAE decoder on first use, denormalises `latents` and decodes them one
  // latent frame at a time into `sink` as RGB24 (and floats in [0, 1] when it wants them).
  void decode_frames(const RenderRequest& r, const Tensor& latents, VideoSink& sink, CancelFlag cancel,
                     StageTimes& t);
  // The frames dump, the timings in the settings tag, the MP4 renamed into place, the
  // previews; the closing log line and the "done" event.
  PipelineResult write_outputs(const RenderRequest& r, VideoSink& sink, nlohmann::json settings, StageTimes t,
                               const Progress& progress, const DenoiseStats& stats = {}) const;

  // The step cache settings this model runs `c` with: TeaCache takes c.coefficients
  // (t2v.json), else the DiT preset's published ones. Error(64) when TeaCache has none
  // for this model (run `t2v calibrate-cache`) or first-block meets a 1-block DiT.
  // Reads configs only: batch checks every item with it before rendering any.
  StepCacheSettings resolve_cache(const StepCacheSettings& c) const;

  // How many input images the model takes, {fewest, most}: {0, 0} text-to-video, {0, 1}
  // Wan2.2 TI2V-5B, {1, 1} image-to-video (--image), {2, 2} first-last-frame (--image,
  // --last-image).
  // Reads configs only.
  std::pair<int, int> input_images() const;

  const ModelPaths& paths() const;
  const ModelConfigs& configs() const;
  const PipelineLoadOptions& load_options() const;
  // Latent grid for a video: [T, h, w] (the DiT needs h, w even).
  std::array<int64_t, 3> latent_grid(int width, int height, int frames) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace t2v
