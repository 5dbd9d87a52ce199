#include "app/pipeline.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "app/image_input.h"
#include "app/memory_estimate.h"
#include "app/noise_input.h"
#include "app/choices.h"
#include "app/device.h"
#include "core/error.h"
#include "core/finite.h"
#include "core/philox.h"
#include "core/safetensors.h"
#include "diffusion/lora.h"
#include "diffusion/wan_dit_weights.h"
#include "kernels/ops.h"
#include "scheduler/distill.h"
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
  return read_noise(r.noise_file, shape);
}

// A stage's output must be finite: NaN or Inf here means the weights (scanned at load)
// were fine but the computation overflowed, so the error names the stage (exit 70) and the
// render stops before anything is written (docs/bad_inputs.md #19).
void check_stage_output(const Tensor& t, const char* what) {
  if (const int64_t bad = first_non_finite_anywhere(t); bad >= 0)
    throw Error(kExitSoftware, fmt::format("NaN or Inf in {} (element {} of {})", what, bad, t.numel()),
                "the weights overflow in this dtype or are broken; try --dtype f32, or check the model files");
}

// With T2V_LOG=debug: the high-water marks of host memory (VmHWM) and, off the CPU, of
// device memory during a stage, each mark reset for the next stage. The memory
// estimate's tests compare these with app/memory_estimate.h's per-stage figures.
void log_stage_peak(Device dev, const char* stage) {
  if (!spdlog::should_log(spdlog::level::debug)) return;
  const double host = static_cast<double>(peak_memory_bytes(Device::CPU));
  const double device = dev == Device::CPU ? 0.0 : static_cast<double>(peak_memory_bytes(dev));
  spdlog::debug("measured peak of {}: host {:.6f} GB, device {:.6f} GB", stage, host / 1e9, device / 1e9);
  reset_peak_memory(Device::CPU);
  if (dev != Device::CPU) reset_peak_memory(dev);
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
  // The LoRAs the DiT is (to be) loaded with, checked by prepare_dit.
  bool loras_checked = false;
  std::vector<LoraSpec> lora_specs;
  bool lora_ignore_unknown = false;
  std::shared_ptr<const LoraDelta> lora;
};

Pipeline::Pipeline(ModelPaths paths, PipelineLoadOptions opts)
    : impl_(std::make_unique<Impl>(std::move(paths), opts)) {
  impl_->tok.emplace(impl_->loader.load_tokenizer());
}

Pipeline::~Pipeline() = default;

const ModelPaths& Pipeline::paths() const { return impl_->loader.paths(); }
const ModelConfigs& Pipeline::configs() const { return impl_->loader.configs(); }
const PipelineLoadOptions& Pipeline::load_options() const { return impl_->loader.options(); }

std::array<int64_t, 3> Pipeline::latent_grid(int width, int height, int frames) const {
  const ModelConfigs& c = impl_->loader.configs();
  const int sf = c.vae.spatial_factor(), tf = c.vae.temporal_factor();
  const int64_t ph = c.dit.patch_size[1], pw = c.dit.patch_size[2];
  if (width % (sf * pw) || height % (sf * ph))
    throw Error(kExitUsage, fmt::format("size {}x{} is not a multiple of {}", width, height, sf * pw));
  return {(frames - 1) / tf + 1, height / sf, width / sf};
}

StepCacheSettings Pipeline::resolve_cache(const StepCacheSettings& c) const {
  StepCacheSettings out = c;
  const WanDiTConfig& dit = impl_->loader.configs().dit;
  if (c.kind == StepCacheKind::kTeaCache && out.coefficients.empty()) {
    out.coefficients = teacache_published_coefficients(dit.preset_name);
    if (out.coefficients.empty())
      throw Error(kExitUsage,
                  fmt::format("--cache teacache: model {} has no TeaCache coefficients (published ones exist for the "
                              "Wan2.1 1.3B and 14B DiTs only)",
                              paths().name),
                  "calibrate them with `t2v calibrate-cache --model FOLDER --prompts FILE --write` (stored in its "
                  "t2v.json), or use --cache first-block");
  }
  if (c.kind == StepCacheKind::kFirstBlock && dit.num_layers < 2)
    throw Error(kExitUsage, fmt::format("--cache first-block: model {} has {} DiT block", paths().name, dit.num_layers),
                "first-block caching needs at least 2 blocks; use --cache teacache or none");
  return out;
}

PipelineResult Pipeline::render(const RenderRequest& request, Progress& progress, CancelFlag cancel,
                                const StepObserver& on_step) {
  const ModelConfigs& c = impl_->loader.configs();
  RenderRequest r = request;
  prepare_images(r);  // image-to-video: the output size comes from the image
  // Before any weights load: a size the model cannot take, one that does not fit in memory
  // (docs/bad_inputs.md #74), and a --noise file that does not fit the video (#77). The
  // noise has the output's channels (image-to-video's DiT takes the conditioning besides).
  const auto [T, h, w] = latent_grid(r.width, r.height, r.frames);
  check_render_fits(c, impl_->loader.options(), r);
  if (!r.noise_file.empty()) read_noise(r.noise_file, Shape{1, c.dit.out_dim, T, h, w});
  resolve_cache(r.cache);  // and a cache the model cannot run
  if (c.dit.preset_name == "wan2.1-t2v-1.3b" && static_cast<int64_t>(r.width) * r.height > 832 * 480 * 5 / 4)
    spdlog::warn("the 1.3B model was trained at 832x480; {}x{} may look worse", r.width, r.height);
  progress.event("start", {{"prompt", r.prompt}, {"seed", r.seed}, {"model", paths().name}, {"frames", r.frames},
                           {"size", fmt::format("{}x{}", r.width, r.height)}, {"steps", r.steps}, {"output", r.output}});
  prepare_dit(r);  // LoRA files are checked before any weights load
  const Device dev = impl_->loader.options().device;
  log_stage_peak(dev, "the set-up");
  StageTimes t;
  EncodedPrompts text = encode_prompts(r, t, cancel);
  stop_if_cancelled(cancel);
  std::optional<I2VCondition> cond;
  if (c.dit.image_to_video()) cond = condition_on_images(r, t, cancel);
  stop_if_cancelled(cancel);
  log_stage_peak(dev, "encode");
  DenoiseStats stats;
  Tensor latents = denoise(r, text, progress, cancel, t, cond ? &*cond : nullptr, on_step, &stats);
  log_stage_peak(dev, "denoise");
  nlohmann::json settings = generation_settings_json(r, r.negative_or_default(), dev, paths().name);
  VideoSink sink(r, settings);
  decode_frames(r, latents, sink, cancel, t);
  PipelineResult result = write_outputs(r, sink, std::move(settings), t, progress, stats);
  log_stage_peak(dev, "decode");  // with the MP4's last frames encoded and written
  return result;
}

void Pipeline::prepare_dit(const RenderRequest& r) {
  Impl& m = *impl_;
  if (m.loras_checked && r.loras == m.lora_specs && r.lora_ignore_unknown == m.lora_ignore_unknown) return;
  std::shared_ptr<const LoraDelta> delta = load_loras(r.loras, m.loader.configs().dit, r.lora_ignore_unknown);
  m.dit.reset();  // loaded with other LoRAs (or none)
  m.lora = std::move(delta);
  m.lora_specs = r.loras;
  m.lora_ignore_unknown = r.lora_ignore_unknown;
  m.loras_checked = true;
  if (!m.lora) return;
  for (size_t i = 0; i < r.loras.size(); ++i) {
    const LoraFile& f = m.lora->files()[i];
    // One value, a few, or the range of many.
    auto values = [](const char* what, const auto& v) -> std::string {
      if (v.empty()) return "";
      if (v.size() > 3) return fmt::format(", {} {:g}..{:g}", what, double(v.front()), double(v.back()));
      std::string s;
      for (const auto& x : v) s += fmt::format("{}{:g}", s.empty() ? fmt::format(", {} ", what) : "/", double(x));
      return s;
    };
    const std::string ranks = values("rank", f.ranks()), alphas = values("alpha", f.alphas());
    say(r, fmt::format("LoRA {} at strength {:g}: {} names, {} modules{}{}{}", f.path, r.loras[i].strength,
                       lora_convention_name(f.convention), f.targets.size(), ranks, alphas,
                       f.skipped_keys.empty() ? "" : fmt::format(", {} zero norm deltas skipped", f.skipped_keys.size())));
    if (!f.unknown_keys.empty())
      spdlog::warn("LoRA {}: {} key(s) match no module of the DiT and are skipped (--lora-ignore-unknown), e.g. {}",
                   f.path, f.unknown_keys.size(), f.unknown_keys.front());
  }
  // Scaled fp8 weights cannot take a delta in fp8: they are dequantized, merged and kept
  // in the compute dtype.
  const TensorStore& store = m.loader.dit_store();
  const WanDiTLayout layout = detect_wan_dit_layout(store);
  // So are GGUF blocks: the touched matrices leave their quantized form, the rest keep it.
  int fp8 = 0, quantized = 0;
  for (const std::string& key : m.lora->keys()) {
    const std::string fk = wan_dit_file_key(layout, key);
    if (!store.contains(fk)) continue;
    const TensorInfo& info = store.info(fk);
    if (info.quant)
      ++quantized;
    else if (info.dtype == DType::F8_E4M3 || info.dtype == DType::F8_E5M2)
      ++fp8;
  }
  if (fp8 > 0)
    say(r, fmt::format("LoRA: {} fp8 weights of the DiT are dequantized, merged and kept in {} (not fp8)", fp8,
                       dtype_name(m.loader.options().dtype)));
  if (quantized > 0)
    say(r, fmt::format("LoRA: {} quantized GGUF weights of the DiT are dequantized, merged and kept in {}", quantized,
                       dtype_name(m.loader.options().dtype)));
}

EncodedPrompts Pipeline::encode_prompts(const RenderRequest& r, StageTimes& t, CancelFlag cancel) {
  Impl& m = *impl_;
  const WanDiTConfig& dit_cfg = m.loader.configs().dit;
  const auto t0 = Clock::now();
  stop_if_cancelled(cancel);
  TokenizedPrompt pos_ids = m.tok->encode(r.prompt, dit_cfg.text_len);
  stop_if_cancelled(cancel);
  TokenizedPrompt neg_ids = m.tok->encode(r.negative_or_default(), dit_cfg.text_len);
  stop_if_cancelled(cancel);
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
  stop_if_cancelled(cancel);
  EncodedPrompts e;
  e.positive = m.t5->encode_context(pos_ids.ids, dit_cfg.text_len);
  stop_if_cancelled(cancel);
  e.negative = m.t5->encode_context(neg_ids.ids, dit_cfg.text_len);
  check_stage_output(e.positive, "the text encoder's output (prompt)");
  check_stage_output(e.negative, "the text encoder's output (negative prompt)");
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
  const InputImage first = load_rgb_image(r.image, "--image");
  m.first_image = rgb_image_to_tensor(first);
  m.last_image = Tensor();
  if (!r.last_image.empty()) {
    const InputImage last = load_rgb_image(r.last_image, "--last-image");
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

I2VCondition Pipeline::condition_on_images(const RenderRequest& r, StageTimes& t, CancelFlag cancel) {
  Impl& m = *impl_;
  const ModelConfigs& c = m.loader.configs();
  const auto tl = Clock::now();
  if (!m.clip) m.clip.emplace(m.loader.load_image_encoder());
  stop_if_cancelled(cancel);
  if (!m.vae || !m.vae->parts.encoder) m.vae.emplace(m.loader.load_vae());
  stop_if_cancelled(cancel);
  const double load_s = seconds_since(tl);
  t.load_s += load_s;
  const auto t0 = Clock::now();
  I2VSize size;
  size.width = r.width, size.height = r.height;
  size.lat_w = r.width / c.vae.spatial_factor(), size.lat_h = r.height / c.vae.spatial_factor();
  I2VCondition cond = i2v_condition(*m.clip, *m.vae, m.first_image, m.last_image.defined() ? &m.last_image : nullptr,
                                    r.frames, size);
  check_stage_output(cond.features, "the image encoder's output (CLIP features)");
  check_stage_output(cond.y, "the VAE encoder's output (image latents)");
  const double s = seconds_since(t0);
  t.encode_s += s;
  say(r, fmt::format("encoded the input image{} (CLIP {} tokens, VAE {} frames) in {:.2f} s",
                     m.last_image.defined() ? "s" : "", cond.features.size(1), r.frames, s));
  return cond;
}

Tensor Pipeline::denoise(const RenderRequest& r, const EncodedPrompts& text, Progress& progress, CancelFlag cancel,
                         StageTimes& t, const I2VCondition* cond, const StepObserver& on_step,
                         DenoiseStats* stats) {
  Impl& m = *impl_;
  StepCache cache(resolve_cache(r.cache), r.cfg != 1.0 ? 2 : 1);
  const WanDiTConfig& dit_cfg = m.loader.configs().dit;
  const Device dev = m.loader.options().device;
  prepare_dit(r);
  if (!m.dit) {
    const auto tl = Clock::now();
    m.dit.emplace(m.loader.load_dit(m.lora));
    t.load_s += seconds_since(tl);
  }
  const WanDiT& dit = *m.dit;
  const auto [T, h, w] = latent_grid(r.width, r.height, r.frames);
  // Noise has the output's channels (16); image-to-video appends the conditioning.
  Tensor x = initial_noise(r, Shape{1, dit_cfg.out_dim, T, h, w}).to(dev);
  // The distilled sampler walks its timestep list; the others a schedule of r.steps.
  std::optional<DistillScheduler> distill;
  std::unique_ptr<Scheduler> sched;
  if (r.sampler == Sampler::kDistill) {
    distill.emplace(r.timesteps, r.shift);
    T2V_ASSERT(distill->num_steps() == r.steps, "distill: {} timesteps, {} steps", distill->num_steps(), r.steps);
  } else {
    sched = make_scheduler(r.sampler);
    sched->set_timesteps(r.steps, r.shift, r.schedule);
  }
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
    // distill: 1000 * sigma, not rounded; the others: the schedule's integer timestep.
    const float ts = distill ? distill->dit_timestep(i) : static_cast<float>(sched->timesteps()[i]);
    Tensor v;
    if (guided) {
      Tensor xx = ops::concat({x, x}, 0);  // cond and uncond as one batch of 2
      if (cond) xx = ops::concat({xx, y}, 1);  // [noise 16 | mask 4 | image latents 16]
      Tensor vv = cache.forward(dit, xx, Tensor::from_floats({ts, ts}, {2}), ctx, i, features);
      v = cfg(vv.narrow0(1, 1), vv.narrow0(0, 1), r.cfg);
    } else {
      v = cache.forward(dit, cond ? ops::concat({x, y}, 1) : x, Tensor::from_floats({ts}, {1}), ctx, i, features);
    }
    if (on_step) {
      const double sigma = distill ? distill->schedule().sigmas[i] : sched->sigmas()[i];
      on_step(DenoiseStep{i + 1, r.steps, sigma, &x, &v});
    }
    x = distill ? distill->step(v, i, x) : sched->step(v, i, x);
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
  DenoiseStats st;
  st.dit_forwards = cache.forwards_run();
  st.dit_forwards_skipped = cache.forwards_skipped();
  st.records = cache.records();
  t.dit_forwards = static_cast<int>(st.dit_forwards);  // the forwards that ran (a skipped one costs no blocks)
  const size_t branches = guided ? 2 : 1;
  for (size_t k = 0; k + branches <= st.records.size(); k += branches) {
    bool reused = true;
    for (size_t b = 0; b < branches; ++b) reused = reused && !st.records[k + b].computed;
    st.steps_reused += reused ? 1 : 0;
  }
  std::string reuse;
  if (r.cache.kind != StepCacheKind::kNone)
    reuse = fmt::format("; cache {} reused {} of {} steps ({} forwards skipped)", cache_option_text(r.cache),
                        st.steps_reused, r.steps, st.dit_forwards_skipped);
  say(r, fmt::format("denoised {} steps in {:.2f} s ({:.2f} s/step, {} DiT forwards){}", r.steps, t.denoise_s,
                     t.denoise_s / r.steps, t.dit_forwards, reuse));
  if (stats) *stats = std::move(st);
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
    check_stage_output(c, "the decoded frames (VAE output)");
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
                                       const Progress& progress, const DenoiseStats& stats) const {
  const auto t0 = Clock::now();
  const double video_s = sink.frames() / r.fps.value();
  const double compute_s = t.encode_s + t.denoise_s + t.decode_s;
  if (r.timing_metadata) {
    settings["timings_s"] = {{"load", t.load_s}, {"encode", t.encode_s}, {"denoise", t.denoise_s}, {"decode", t.decode_s}};
    settings["compute_s_per_video_s"] = compute_s / video_s;
  }
  sink.finish(r.timing_metadata ? &settings : nullptr);  // the dump, the previews, then the MP4
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
                          {"dit_forwards", t.dit_forwards},
                          {"dit_forwards_skipped", stats.dit_forwards_skipped},
                          {"compute_s_per_video_s", compute_s / video_s}});
  PipelineResult result;
  result.output = r.output;
  result.seed = r.seed;
  result.frames = sink.frames();
  result.times = t;
  result.denoise = stats;
  return result;
}

}  // namespace t2v
