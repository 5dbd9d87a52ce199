#include "app/pipeline.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "app/image_input.h"
#include "app/choices.h"
#include "app/image_resize.h"
#include "app/memory_estimate.h"
#include "app/noise_input.h"
#include "app/choices.h"
#include "app/device.h"
#include "app/wan22_sampling.h"
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
  std::optional<WanDiT> dit;      // the only transformer, or Wan2.2 A14B's high-noise expert
  std::optional<WanDiT> dit_low;  // Wan2.2 A14B's low-noise expert
  std::optional<WanVAE> vae;
  std::optional<ClipVisionEncoder> clip;  // Wan2.1 image-to-video
  // The input images of the current image-to-video render ([3, h, w] in [-1, 1]; TI2V-5B:
  // the first one already resized and cropped to the video size).
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

std::pair<int, int> Pipeline::input_images() const {
  const ModelConfigs& c = impl_->loader.configs();
  switch (model_kind(c)) {
    case WanModelKind::T2V: return {0, 0};
    case WanModelKind::TI2V: return {0, 1};  // text-to-video without one, image-to-video with one
    default: {
      const int n = c.dit.first_last_frame() ? 2 : 1;
      return {n, n};
    }
  }
}

std::array<int64_t, 3> Pipeline::latent_grid(int width, int height, int frames) const {
  const ModelConfigs& c = impl_->loader.configs();
  const int sf = c.vae.spatial_factor(), tf = c.vae.temporal_factor();
  const int64_t ph = c.dit.patch_size[1], pw = c.dit.patch_size[2];
  if (width % (sf * pw) || height % (sf * ph))
    throw Error(kExitUsage, fmt::format("size {}x{} is not a multiple of {} ({})", width, height, sf * pw, paths().name),
                sf * pw == 32 ? "Wan2.2 TI2V-5B takes multiples of 32, e.g. --size 1280x704"
                              : fmt::format("use multiples of {}", sf * pw));
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
  if (!r.image.empty()) cond = condition_on_images(r, t, cancel);  // prepare_images checked the model takes it
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
  const ModelConfigs& c = m.loader.configs();
  const WanDiTConfig& dit = c.dit;
  const WanModelKind kind = model_kind(c);
  if ((r.boundary || r.cfg_low) && !c.dit_low)
    throw Error(kExitUsage,
                fmt::format("{} needs the two experts of a Wan2.2 A14B model; {} has one transformer",
                            r.boundary ? "--boundary" : "--cfg-low", paths().name),
                "pass the low-noise expert with --dit-low, or drop the option");
  if (!r.loras.empty() && c.dit_low)
    throw Error(kExitUsage,
                fmt::format("--lora with the two experts of {}: a LoRA is merged into one transformer", paths().name),
                "run Wan2.2 A14B without --lora (LoRAs apply to single-transformer models)");
  if (kind == WanModelKind::T2V) {
    if (!r.image.empty())
      throw Error(kExitUsage,
                  fmt::format("--image was given, but the transformer {} is a text-to-video model", paths().dit),
                  "drop --image, or pass an image-to-video model (Wan2.1 I2V-14B / FLF2V-14B, Wan2.2 TI2V-5B / "
                  "I2V-A14B)");
    return;
  }
  // TI2V-5B is text-to-video without an image, image-to-video with one (docs/wan.md §8.2).
  if (kind == WanModelKind::TI2V && r.image.empty()) {
    if (!r.last_image.empty())
      throw Error(kExitUsage, "--last-image needs --image (the first frame)", "pass both frames, or neither");
    return;
  }
  if (r.image.empty())
    throw Error(kExitUsage,
                fmt::format("the transformer {} is a {} model: it needs an input image", paths().dit,
                            kind == WanModelKind::I2VA14B ? std::string("Wan2.2 I2V-A14B")
                                                          : fmt::format("Wan2.1 {}", dit.model_type())),
                dit.first_last_frame() ? "pass --image FIRST.png --last-image LAST.png" : "pass --image FIRST.png");
  if (!r.last_image.empty() && !dit.first_last_frame())
    throw Error(kExitUsage,
                fmt::format("--last-image was given, but the transformer {} has no first-last-frame weights (it is "
                            "{} model)",
                            paths().dit, kind == WanModelKind::Wan21I2V ? "an " + dit.model_type()
                                                                        : std::string("a ") + model_kind_name(kind)),
                "drop --last-image, or pass the Wan2.1 FLF2V-14B transformer");
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
  m.last_image = Tensor();
  if (kind == WanModelKind::TI2V) {
    // Lanczos to cover the size, centre crop (docs/wan.md §8.4).
    const PreparedImage p = prepare_ti2v_image(first, r.width, r.height);
    m.first_image = rgb_image_to_tensor(p.image);
    if (p.width != r.width || p.height != r.height)
      say(r, fmt::format("TI2V: input {}x{}, video {}x{} (the best fit for the area of --size {}x{})", first.width,
                         first.height, p.width, p.height, r.width, r.height));
    else
      say(r, fmt::format("TI2V: input {}x{}, video {}x{}", first.width, first.height, p.width, p.height));
    r.width = p.width;
    r.height = p.height;
    return;
  }
  m.first_image = rgb_image_to_tensor(first);
  if (!r.last_image.empty()) {
    const InputImage last = load_rgb_image(r.last_image, "--last-image");
    if (last.width != first.width || last.height != first.height)
      throw Error(kExitDataErr,
                  fmt::format("--last-image {} is {}x{}, --image {} is {}x{}: the two frames must have one size",
                              r.last_image, last.width, last.height, r.image, first.width, first.height),
                  "resize or crop the last frame to the first one's size");
    m.last_image = rgb_image_to_tensor(last);
  }
  // --size is the area budget; the video takes the image's aspect ratio (docs/wan.md §5.1;
  // Wan2.2 I2V-A14B sizes it the same way).
  const I2VSize size = i2v_output_size(static_cast<int64_t>(r.width) * r.height, first.width, first.height,
                                       c.vae.spatial_factor(), static_cast<int>(dit.patch_size[1]));
  const std::string name = kind == WanModelKind::I2VA14B ? "I2V-A14B" : dit.model_type();
  say(r, fmt::format("{}: input {}x{}, video {}x{} (the area of --size {}x{} at the image's aspect ratio)", name,
                     first.width, first.height, size.width, size.height, r.width, r.height));
  r.width = size.width;
  r.height = size.height;
  // Wan2.1's I2V/FLF2V configs prefix their negative prompt; Wan2.2's keep the shared one.
  if (!r.negative_prompt && kind == WanModelKind::Wan21I2V)
    r.negative_prompt = wan_i2v_default_negative_prompt(dit.first_last_frame());
}

I2VCondition Pipeline::condition_on_images(const RenderRequest& r, StageTimes& t, CancelFlag cancel) {
  Impl& m = *impl_;
  const ModelConfigs& c = m.loader.configs();
  const WanModelKind kind = model_kind(c);
  const auto tl = Clock::now();
  if (kind == WanModelKind::Wan21I2V && !m.clip) m.clip.emplace(m.loader.load_image_encoder());
  stop_if_cancelled(cancel);
  if (!m.vae || !m.vae->parts.encoder) m.vae.emplace(m.loader.load_vae());
  stop_if_cancelled(cancel);
  const double load_s = seconds_since(tl);
  t.load_s += load_s;
  const auto t0 = Clock::now();
  I2VCondition cond;
  if (kind == WanModelKind::TI2V) {
    // The image's normalised latent: latent frame 0 throughout (docs/wan.md §8.2).
    const Tensor pixels = m.first_image.reshape(Shape{1, 3, 1, r.height, r.width});
    Tensor first = wan_vae_normalize_latents(m.vae->encode(m.vae->to_compute(pixels)).mean, c.vae);
    if (first.dtype() != DType::F32) first = ops::cast(first, DType::F32);
    check_stage_output(first, "the VAE encoder's output (image latent)");
    cond.first_latent = std::move(first);
    const double s = seconds_since(t0);
    t.encode_s += s;
    say(r, fmt::format("encoded the input image (VAE) in {:.2f} s", s));
    return cond;
  }
  I2VSize size;
  size.width = r.width, size.height = r.height;
  size.lat_w = r.width / c.vae.spatial_factor(), size.lat_h = r.height / c.vae.spatial_factor();
  const Tensor* last = m.last_image.defined() ? &m.last_image : nullptr;
  if (kind == WanModelKind::Wan21I2V) {
    cond = i2v_condition(*m.clip, *m.vae, m.first_image, last, r.frames, size);
    check_stage_output(cond.features, "the image encoder's output (CLIP features)");
  } else {
    cond.y = i2v_image_latents(*m.vae, m.first_image, last, r.frames, size);  // I2V-A14B: no CLIP
  }
  check_stage_output(cond.y, "the VAE encoder's output (image latents)");
  const double s = seconds_since(t0);
  t.encode_s += s;
  if (cond.features.defined())
    say(r, fmt::format("encoded the input image{} (CLIP {} tokens, VAE {} frames) in {:.2f} s", last ? "s" : "",
                       cond.features.size(1), r.frames, s));
  else
    say(r, fmt::format("encoded the input image (VAE {} frames) in {:.2f} s", r.frames, s));
  return cond;
}

Tensor Pipeline::denoise(const RenderRequest& r, const EncodedPrompts& text, Progress& progress, CancelFlag cancel,
                         StageTimes& t, const I2VCondition* cond, const StepObserver& on_step,
                         DenoiseStats* stats) {
  Impl& m = *impl_;
  const ModelConfigs& c = m.loader.configs();
  const WanDiTConfig& dit_cfg = c.dit;
  const Device dev = m.loader.options().device;
  prepare_dit(r);
  const WanModelKind kind = model_kind(c);
  const auto [T, h, w] = latent_grid(r.width, r.height, r.frames);
  // Noise has the output's channels; image-to-video appends the conditioning.
  Tensor x = initial_noise(r, Shape{1, dit_cfg.out_dim, T, h, w}).to(dev);
  // TI2V with an image: its latent is latent frame 0 before the loop and after every step.
  Tensor first;
  if (cond && cond->first_latent.defined()) {
    first = cond->first_latent.to(dev);
    x = with_first_frame(x, first);
  }

  // ---- experts (docs/wan.md §8.3) ----
  const bool two_experts = c.dit_low.has_value();
  const double boundary = expert_boundary(kind, r.boundary, paths().boundary_ratio);
  // One expert resident when asked, or when two do not fit the host's available memory
  // (CPU); on a GPU only when asked (--low-memory).
  const int64_t expert_bytes = two_experts ? m.loader.dit_weight_bytes() : 0;
  const bool one_resident =
      two_experts && (r.low_memory || (dev == Device::CPU && available_host_memory() > 0 &&
                                       2 * expert_bytes > available_host_memory()));
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
  // The timestep the DiT receives at step i (distill: 1000 * sigma, not rounded; the
  // others: the schedule's integer timestep); the expert switch compares it.
  auto dit_timestep = [&](int i) {
    return distill ? distill->dit_timestep(i) : static_cast<float>(sched->timesteps()[i]);
  };
  auto is_high = [&](int i) { return !two_experts || high_noise_step(dit_timestep(i), boundary); };
  auto guidance = [&](bool high) { return high ? r.cfg : r.cfg_low.value_or(r.cfg); };
  auto ensure_expert = [&](bool high) -> const WanDiT& {
    std::optional<WanDiT>& slot = high ? m.dit : m.dit_low;
    std::optional<WanDiT>& other = high ? m.dit_low : m.dit;
    if (!slot) {
      if (one_resident && other) {
        other.reset();  // free its weights before the next expert loads
        say(r, fmt::format("unloaded the {}-noise expert (one expert resident: {:.1f} GB each)", high ? "low" : "high",
                           static_cast<double>(expert_bytes) * 1e-9));
      }
      const auto tl = Clock::now();
      slot.emplace(high ? m.loader.load_dit(m.lora) : m.loader.load_dit_low());
      t.load_s += seconds_since(tl);
      if (two_experts) say(r, fmt::format("loaded the {}-noise expert in {:.2f} s", high ? "high" : "low", seconds_since(tl)));
    }
    return *slot;
  };
  if (two_experts) {
    int high_steps = 0;
    for (int i = 0; i < r.steps; ++i) high_steps += is_high(i) ? 1 : 0;
    say(r, fmt::format("Wan2.2 A14B experts: high-noise for {} step(s) (t >= {:.0f}, cfg {}), low-noise for {} (cfg {}){}",
                       high_steps, boundary * 1000.0, r.cfg, r.steps - high_steps, guidance(false),
                       one_resident ? "; one expert resident at a time" : ""));
  }

  // Only the rows up to the longer prompt: the DiT stands in for the zero rows after them
  // (the same result, without attending to hundreds of padding rows).
  bool any_guided = false;
  for (int i = 0; i < r.steps; ++i) any_guided = any_guided || guidance(is_high(i)) != 1.0;
  const auto L = static_cast<int64_t>(std::max(text.positive_tokens, any_guided ? text.negative_tokens : size_t{1}));
  const int64_t D = dit_cfg.text_dim;
  auto rows = [&](const Tensor& ctx) { return ops::slice(ctx, 0, 0, L).reshape({1, L, D}); };
  const Tensor ctx_cond = rows(text.positive).to(dev);
  const Tensor ctx_pair = any_guided ? ops::concat({rows(text.positive), rows(text.negative)}, 0).to(dev) : Tensor();
  const int64_t tokens_per_frame = (h / dit_cfg.patch_size[1]) * (w / dit_cfg.patch_size[2]);
  // Image-to-video: the same conditioning and CLIP features in both guidance passes.
  const Tensor y = cond && cond->y.defined() ? cond->y.to(dev) : Tensor();
  const Tensor features = cond && cond->features.defined() ? cond->features.to(dev) : Tensor();
  const Tensor y_pair = y.defined() && any_guided ? ops::concat({y, y}, 0) : Tensor();
  const Tensor features_pair = features.defined() && any_guided ? ops::concat({features, features}, 0) : Tensor();

  // The step cache keeps residuals of one transformer: a fresh one for each expert, so
  // nothing computed by the high-noise expert stands in for the low-noise one's blocks
  // (docs/PERFORMANCE.md). Its counts are summed over the experts.
  const StepCacheSettings cache_settings = resolve_cache(r.cache);
  std::optional<StepCache> cache;
  DenoiseStats st;
  auto retire_cache = [&]() {
    if (!cache) return;
    st.dit_forwards += cache->forwards_run();
    st.dit_forwards_skipped += cache->forwards_skipped();
    st.records.insert(st.records.end(), cache->records().begin(), cache->records().end());
    cache.reset();
  };
  std::optional<bool> cache_expert;  // the expert the cache belongs to (high: true)

  const auto t0 = Clock::now();
  double load_in_loop = 0;
  progress.start_steps(r.steps);
  for (int i = 0; i < r.steps; ++i) {
    const float ts = dit_timestep(i);
    const bool high = is_high(i);
    const double before = t.load_s;
    const WanDiT& dit = ensure_expert(high);
    load_in_loop += t.load_s - before;
    const double g = guidance(high);
    const bool guided = g != 1.0;  // cfg 1 is the conditional prediction alone
    const int64_t B = guided ? 2 : 1;
    // TI2V with an image: the tokens of latent frame 0 (the image) get the timestep 0.
    const Tensor timestep = first.defined() ? ti2v_token_timesteps(ts, B, T, tokens_per_frame)
                                            : Tensor::full(Shape{B}, ts);
    if (!cache || cache_expert != high) {  // the first step, or the expert switch
      retire_cache();
      cache.emplace(cache_settings, static_cast<int>(B));
      cache_expert = high;
    }
    Tensor v;
    if (guided) {
      Tensor xx = ops::concat({x, x}, 0);                  // cond and uncond as one batch of 2
      if (y.defined()) xx = ops::concat({xx, y_pair}, 1);  // [noise | mask 4 | image latents]
      Tensor vv = cache->forward(dit, xx, timestep, ctx_pair, i, features_pair);
      v = cfg(vv.narrow0(1, 1), vv.narrow0(0, 1), g);
    } else {
      v = cache->forward(dit, y.defined() ? ops::concat({x, y}, 1) : x, timestep, ctx_cond, i, features);
    }
    if (on_step) {
      const double sigma = distill ? distill->schedule().sigmas[i] : sched->sigmas()[i];
      on_step(DenoiseStep{i + 1, r.steps, sigma, &x, &v});
    }
    x = distill ? distill->step(v, i, x) : sched->step(v, i, x);
    if (first.defined()) x = with_first_frame(x, first);  // the image stays latent frame 0
    if (i == 0 && !all_finite(x))
      throw Error(kExitSoftware, "NaN or Inf in the latents after step 1",
                  "the weights may hold NaN/Inf or overflow in this dtype; try --dtype f32");
    progress.step_done(i + 1);
    stop_if_cancelled(cancel);
  }
  progress.finish_steps();
  t.denoise_s = seconds_since(t0) - load_in_loop;
  if (!all_finite(x))
    throw Error(kExitSoftware, fmt::format("NaN or Inf in the latents after {} steps", r.steps),
                "try fewer steps, another sampler, or --dtype f32");
  retire_cache();
  t.dit_forwards = static_cast<int>(st.dit_forwards);  // the forwards that ran (a skipped one costs no blocks)
  // A step is reused when every branch of it is (the records come in step order).
  for (size_t k = 0; k < st.records.size();) {
    bool reused = true;
    size_t e = k;
    for (; e < st.records.size() && st.records[e].step == st.records[k].step; ++e)
      reused = reused && !st.records[e].computed;
    st.steps_reused += reused ? 1 : 0;
    k = e;
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
