#include "app/pipeline.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "app/image_input.h"
#include "core/error.h"
#include "core/philox.h"
#include "core/safetensors.h"
#include "kernels/ops.h"
#include "scheduler/scheduler.h"

namespace t2v {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

void say(const RenderRequest& r, const std::string& line) {
  if (!r.quiet && !r.json) fmt::print(stderr, "t2v: {}\n", line);
}

void stop_if_cancelled(CancelFlag cancel) {
  if (cancel && cancel->load()) throw Error(kExitTempFail, "interrupted", "run the same command again to resume");
}

// The noise the denoising starts from: injected (parity tests) or Philox from the seed.
Tensor initial_noise(const RenderRequest& r, const Shape& shape) {
  if (r.noise_file.empty()) return randn_philox(shape, r.seed);
  SafetensorsFile f(r.noise_file);
  const TensorInfo* ti = f.find("noise");
  if (!ti && f.tensors().size() == 1) ti = &f.tensors()[0];
  if (!ti)
    throw Error(kExitDataErr, fmt::format("{}: no tensor named 'noise'", r.noise_file),
                "save the starting latents under the key 'noise'");
  Tensor t = f.get(ti->name).to(DType::F32);
  if (t.numel() != shape.numel())
    throw Error(kExitDataErr,
                fmt::format("{}: noise has shape {}, this video needs {}", r.noise_file, t.shape().str(), shape.str()),
                "match --size and --frames to the noise tensor");
  return t.reshape(shape).clone();
}

bool all_finite(const Tensor& t) {
  std::vector<float> v = t.to_vector();
  for (float x : v)
    if (!std::isfinite(x)) return false;
  return true;
}

}  // namespace

struct Pipeline::Impl {
  explicit Impl(ModelPaths paths, PipelineLoadOptions opts) : loader(std::move(paths), opts) {}
  ModelLoader loader;
  std::optional<UMT5Tokenizer> tok;
  std::optional<UMT5Encoder> t5;  // each loaded on first use
  std::optional<WanDiT> dit;
  std::optional<WanVAE> vae;
  std::optional<ClipVisionEncoder> clip;  // image-to-video
  // The input images of the current image-to-video render ([3, h, w] in [-1, 1]).
  Tensor first_image, last_image;
};

Pipeline::Pipeline(ModelPaths paths, PipelineLoadOptions opts)
    : impl_(std::make_unique<Impl>(std::move(paths), opts)) {
  impl_->tok.emplace(impl_->loader.load_tokenizer());
}

Pipeline::~Pipeline() = default;

const ModelPaths& Pipeline::paths() const { return impl_->loader.paths(); }

std::array<int64_t, 3> Pipeline::latent_grid(int width, int height, int frames) const {
  const ModelConfigs& c = impl_->loader.configs();
  const int sf = c.vae.spatial_factor(), tf = c.vae.temporal_factor();
  const int64_t ph = c.dit.patch_size[1], pw = c.dit.patch_size[2];
  if (width % (sf * pw) || height % (sf * ph))
    throw Error(kExitUsage, fmt::format("size {}x{} is not a multiple of {}", width, height, sf * pw));
  return {(frames - 1) / tf + 1, height / sf, width / sf};
}

PipelineResult Pipeline::render(const RenderRequest& request, Progress& progress, CancelFlag cancel) {
  const ModelConfigs& c = impl_->loader.configs();
  RenderRequest r = request;
  prepare_images(r);                         // image-to-video: the output size comes from the image
  latent_grid(r.width, r.height, r.frames);  // a size the model cannot take fails before any work
  if (c.dit.preset_name == "wan2.1-t2v-1.3b" && static_cast<int64_t>(r.width) * r.height > 832 * 480 * 5 / 4)
    spdlog::warn("the 1.3B model was trained at 832x480; {}x{} may look worse", r.width, r.height);
  progress.event("start", {{"prompt", r.prompt}, {"seed", r.seed}, {"model", paths().name}, {"frames", r.frames},
                           {"size", fmt::format("{}x{}", r.width, r.height)}, {"steps", r.steps}, {"output", r.output}});
  StageTimes t;
  EncodedPrompts text = encode_prompts(r, t);
  stop_if_cancelled(cancel);
  std::optional<I2VCondition> cond;
  if (c.dit.image_to_video()) cond = condition_on_images(r, t);
  stop_if_cancelled(cancel);
  Tensor latents = denoise(r, text, progress, cancel, t, cond ? &*cond : nullptr);
  nlohmann::json settings =
      generation_settings_json(r, r.negative_or_default(), impl_->loader.options().device, paths().name);
  VideoSink sink(r, settings);
  decode_frames(r, latents, sink, cancel, t);
  return write_outputs(r, sink, std::move(settings), t, progress);
}

EncodedPrompts Pipeline::encode_prompts(const RenderRequest& r, StageTimes& t) {
  Impl& m = *impl_;
  const WanDiTConfig& dit_cfg = m.loader.configs().dit;
  const auto t0 = Clock::now();
  TokenizedPrompt pos_ids = m.tok->encode(r.prompt, dit_cfg.text_len);
  TokenizedPrompt neg_ids = m.tok->encode(r.negative_or_default(), dit_cfg.text_len);
  for (const auto* tp : {&pos_ids, &neg_ids})
    if (tp->dropped > 0 && m.loader.options().strict)
      throw Error(kExitDataErr, fmt::format("prompt is {} tokens; {} were cut at the limit of {}", tp->text_tokens + 1,
                                            tp->dropped, dit_cfg.text_len),
                  "shorten the prompt (or drop --strict to accept the cut)");
  double load_s = 0;
  if (!m.t5) {
    const auto tl = Clock::now();
    m.t5.emplace(m.loader.load_text_encoder());
    load_s = seconds_since(tl);
  }
  EncodedPrompts e;
  e.positive = m.t5->encode_context(pos_ids.ids, dit_cfg.text_len);
  e.negative = m.t5->encode_context(neg_ids.ids, dit_cfg.text_len);
  e.positive_tokens = pos_ids.ids.size();
  e.negative_tokens = neg_ids.ids.size();
  if (!m.loader.options().keep_text_encoder) m.t5.reset();  // free its weights before the DiT loads
  t.load_s += load_s;
  t.encode_s = seconds_since(t0) - load_s;
  say(r, fmt::format("encoded prompt ({} tokens) and negative prompt ({} tokens) in {:.2f} s", e.positive_tokens,
                     e.negative_tokens, t.encode_s));
  return e;
}

void Pipeline::prepare_images(RenderRequest& r) {
  Impl& m = *impl_;
  const WanDiTConfig& dit = m.loader.configs().dit;
  if (!dit.image_to_video()) {
    if (!r.image.empty())
      throw Error(kExitUsage,
                  fmt::format("--image was given, but the transformer {} is a text-to-video model", paths().dit),
                  "drop --image, or pass an image-to-video model (Wan2.1 I2V-14B / FLF2V-14B)");
    return;
  }
  if (r.image.empty())
    throw Error(kExitUsage,
                fmt::format("the transformer {} is a Wan2.1 {} model: it needs an input image", paths().dit,
                            dit.model_type()),
                dit.first_last_frame() ? "pass --image FIRST.png --last-image LAST.png" : "pass --image FIRST.png");
  if (!r.last_image.empty() && !dit.first_last_frame())
    throw Error(kExitUsage,
                fmt::format("--last-image was given, but the transformer {} has no first-last-frame weights (it is "
                            "an {} model)",
                            paths().dit, dit.model_type()),
                "drop --last-image, or pass the FLF2V-14B transformer");
  if (dit.first_last_frame() && r.last_image.empty())
    throw Error(kExitUsage, "the first-last-frame model needs --last-image as well as --image",
                "pass the last frame with --last-image");
  // The reference builds the FLF2V mask for exactly 81 frames (wan/first_last_frame2video.py).
  if (dit.first_last_frame() && r.frames != 81)
    throw Error(kExitUsage,
                fmt::format("--frames {}: the first-last-frame model runs at exactly 81 frames (the reference "
                            "supports no other count)",
                            r.frames),
                "use --frames 81");
  const RgbImage first = load_rgb_image(r.image, "--image");
  m.first_image = rgb_image_to_tensor(first);
  m.last_image = Tensor();
  if (!r.last_image.empty()) {
    const RgbImage last = load_rgb_image(r.last_image, "--last-image");
    if (last.width != first.width || last.height != first.height)
      throw Error(kExitDataErr,
                  fmt::format("--last-image {} is {}x{}, --image {} is {}x{}: the two frames must have one size",
                              r.last_image, last.width, last.height, r.image, first.width, first.height),
                  "resize or crop the last frame to the first one's size");
    m.last_image = rgb_image_to_tensor(last);
  }
  // --size is the area budget; the video takes the image's aspect ratio (docs/wan.md §5.1).
  const ModelConfigs& c = m.loader.configs();
  const I2VSize size = i2v_output_size(static_cast<int64_t>(r.width) * r.height, first.width, first.height,
                                       c.vae.spatial_factor(), static_cast<int>(dit.patch_size[1]));
  say(r, fmt::format("{}: input {}x{}, video {}x{} (the area of --size {}x{} at the image's aspect ratio)",
                     dit.model_type(), first.width, first.height, size.width, size.height, r.width, r.height));
  r.width = size.width;
  r.height = size.height;
  if (!r.negative_prompt) r.negative_prompt = wan_i2v_default_negative_prompt(dit.first_last_frame());
}

I2VCondition Pipeline::condition_on_images(const RenderRequest& r, StageTimes& t) {
  Impl& m = *impl_;
  const ModelConfigs& c = m.loader.configs();
  const auto tl = Clock::now();
  if (!m.clip) m.clip.emplace(m.loader.load_image_encoder());
  if (!m.vae || !m.vae->parts.encoder) m.vae.emplace(m.loader.load_vae());
  const double load_s = seconds_since(tl);
  t.load_s += load_s;
  const auto t0 = Clock::now();
  I2VSize size;
  size.width = r.width, size.height = r.height;
  size.lat_w = r.width / c.vae.spatial_factor(), size.lat_h = r.height / c.vae.spatial_factor();
  I2VCondition cond = i2v_condition(*m.clip, *m.vae, m.first_image, m.last_image.defined() ? &m.last_image : nullptr,
                                    r.frames, size);
  const double s = seconds_since(t0);
  t.encode_s += s;
  say(r, fmt::format("encoded the input image{} (CLIP {} tokens, VAE {} frames) in {:.2f} s",
                     m.last_image.defined() ? "s" : "", cond.features.size(1), r.frames, s));
  return cond;
}

Tensor Pipeline::denoise(const RenderRequest& r, const EncodedPrompts& text, Progress& progress, CancelFlag cancel,
                         StageTimes& t, const I2VCondition* cond) {
  Impl& m = *impl_;
  const WanDiTConfig& dit_cfg = m.loader.configs().dit;
  const Device dev = m.loader.options().device;
  if (!m.dit) {
    const auto tl = Clock::now();
    m.dit.emplace(m.loader.load_dit());
    t.load_s += seconds_since(tl);
  }
  const WanDiT& dit = *m.dit;
  const auto [T, h, w] = latent_grid(r.width, r.height, r.frames);
  // Noise has the output's channels (16); image-to-video appends the conditioning.
  Tensor x = initial_noise(r, Shape{1, dit_cfg.out_dim, T, h, w}).to(dev);
  std::unique_ptr<Scheduler> sched = make_scheduler(r.sampler);
  sched->set_timesteps(r.steps, r.shift, r.schedule);
  const bool guided = r.cfg != 1.0;  // cfg 1 is the conditional prediction alone
  // Only the rows up to the longer prompt: the DiT stands in for the zero rows after them
  // (the same result, without attending to hundreds of padding rows).
  const auto L = static_cast<int64_t>(std::max(text.positive_tokens, guided ? text.negative_tokens : size_t{1}));
  const int64_t D = dit_cfg.text_dim;
  auto rows = [&](const Tensor& c) { return ops::slice(c, 0, 0, L).reshape({1, L, D}); };
  Tensor ctx = guided ? ops::concat({rows(text.positive), rows(text.negative)}, 0) : rows(text.positive);
  ctx = ctx.to(dev);
  // Image-to-video: the same conditioning and CLIP features in both guidance passes.
  Tensor y, features;
  if (cond) {
    y = guided ? ops::concat({cond->y, cond->y}, 0) : cond->y;
    features = guided ? ops::concat({cond->features, cond->features}, 0) : cond->features;
    y = y.to(dev);
    features = features.to(dev);
  }

  const auto t0 = Clock::now();
  progress.start_steps(r.steps);
  for (int i = 0; i < r.steps; ++i) {
    const float ts = static_cast<float>(sched->timesteps()[i]);
    Tensor v;
    if (guided) {
      Tensor xx = ops::concat({x, x}, 0);  // cond and uncond as one batch of 2
      if (cond) xx = ops::concat({xx, y}, 1);  // [noise 16 | mask 4 | image latents 16]
      Tensor vv = dit.forward(xx, Tensor::from_floats({ts, ts}, {2}), ctx, features);
      v = cfg(vv.narrow0(1, 1), vv.narrow0(0, 1), r.cfg);
    } else {
      v = dit.forward(cond ? ops::concat({x, y}, 1) : x, Tensor::from_floats({ts}, {1}), ctx, features);
    }
    x = sched->step(v, i, x);
    if (i == 0 && !all_finite(x))
      throw Error(kExitSoftware, "NaN or Inf in the latents after step 1",
                  "the weights may hold NaN/Inf or overflow in this dtype; try --dtype f32");
    progress.step_done(i + 1);
    stop_if_cancelled(cancel);
  }
  progress.finish_steps();
  t.denoise_s = seconds_since(t0);
  if (!all_finite(x))
    throw Error(kExitSoftware, fmt::format("NaN or Inf in the latents after {} steps", r.steps),
                "try fewer steps, another sampler, or --dtype f32");
  say(r, fmt::format("denoised {} steps in {:.2f} s ({:.2f} s/step)", r.steps, t.denoise_s, t.denoise_s / r.steps));
  return x;
}

void Pipeline::decode_frames(const RenderRequest& r, const Tensor& latents, VideoSink& sink, CancelFlag cancel,
                             StageTimes& t) {
  Impl& m = *impl_;
  if (!m.vae) {
    const auto tl = Clock::now();
    m.vae.emplace(m.loader.load_vae_decoder());
    t.load_s += seconds_since(tl);
  }
  const auto t0 = Clock::now();
  const double mux_before = sink.mux_s();
  Tensor mu = wan_vae_denormalize_latents(latents, m.loader.configs().vae);
  const int64_t plane = static_cast<int64_t>(sink.height()) * sink.width();
  std::vector<uint8_t> frame(static_cast<size_t>(plane) * 3);
  std::vector<float> unit(sink.wants_unit_frames() ? frame.size() : 0);
  m.vae->decode_stream(mu, [&](const Tensor& chunk) {
    // chunk [1, 3, f, H, W] in [-1, 1] -> RGB24 frames. Round to nearest (the reference truncates;
    // rounding halves the quantisation error and removes its bias).
    Tensor c = chunk.to(Device::CPU).to(DType::F32);
    const float* p = c.data<float>();
    const int64_t f = c.size(2);
    for (int64_t k = 0; k < f; ++k) {
      for (int64_t yx = 0; yx < plane; ++yx) {
        for (int ch = 0; ch < 3; ++ch) {
          const float v = p[(ch * f + k) * plane + yx];
          const float u = std::clamp((v + 1.0f) * 0.5f, 0.0f, 1.0f);
          const size_t at = static_cast<size_t>(yx) * 3 + ch;
          if (!unit.empty()) unit[at] = u;
          frame[at] = static_cast<uint8_t>(std::lround(u * 255.0f));
        }
      }
      sink.add_frame(frame.data(), unit.empty() ? nullptr : unit.data());
    }
    stop_if_cancelled(cancel);  // the sink's writer drops its temp file
  });
  t.decode_s = seconds_since(t0) - (sink.mux_s() - mux_before);
  T2V_ASSERT(sink.frames() == r.frames, "decoded {} frames, expected {}", sink.frames(), r.frames);
  say(r, fmt::format("decoded {} frames in {:.2f} s", sink.frames(), t.decode_s));
}

PipelineResult Pipeline::write_outputs(const RenderRequest& r, VideoSink& sink, nlohmann::json settings, StageTimes t,
                                       const Progress& progress) const {
  if (sink.wants_unit_frames()) sink.save_frames_dump();
  const auto t0 = Clock::now();
  const double video_s = sink.frames() / r.fps.value();
  const double compute_s = t.encode_s + t.denoise_s + t.decode_s;
  if (r.timing_metadata) {
    settings["timings_s"] = {{"load", t.load_s}, {"encode", t.encode_s}, {"denoise", t.denoise_s}, {"decode", t.decode_s}};
    settings["compute_s_per_video_s"] = compute_s / video_s;
  }
  sink.finish(r.timing_metadata ? &settings : nullptr);
  if (r.preview) sink.write_previews();
  t.mux_s = sink.mux_s() + seconds_since(t0);
  const Device dev = impl_->loader.options().device;
  say(r, fmt::format("wrote {} ({} frames, {}x{}, {} fps) — encode {:.2f} s, denoise {:.2f} s, decode {:.2f} s, "
                     "mux {:.2f} s; {:.1f} {}-seconds per second of video",
                     r.output, sink.frames(), r.width, r.height, format_fps(r.fps), t.encode_s, t.denoise_s,
                     t.decode_s, t.mux_s, compute_s / video_s, dev == Device::CUDA ? "GPU" : "CPU"));
  progress.event("done", {{"output", r.output},
                          {"seed", r.seed},
                          {"frames", sink.frames()},
                          {"timings_s",
                           {{"load", t.load_s},
                            {"encode", t.encode_s},
                            {"denoise", t.denoise_s},
                            {"decode", t.decode_s},
                            {"mux", t.mux_s}}},
                          {"compute_s_per_video_s", compute_s / video_s}});
  PipelineResult result;
  result.output = r.output;
  result.seed = r.seed;
  result.frames = sink.frames();
  result.times = t;
  return result;
}

}  // namespace t2v
