#include "app/pipeline.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "app/image_input.h"
#include "app/image_resize.h"
#include "app/wan22_sampling.h"
#include "core/error.h"
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

// The input image of an image-to-video render, prepared once for its video size.
struct ConditionImage {
  std::string path;
  int width = 0, height = 0;  // the video size it was prepared for
  Tensor pixels;              // [1, 3, 1, height, width] F32 in [-1, 1] (CPU)
};

struct Pipeline::Impl {
  explicit Impl(ModelPaths paths, PipelineLoadOptions opts) : loader(std::move(paths), opts) {}
  ModelLoader loader;
  std::optional<UMT5Tokenizer> tok;
  std::optional<UMT5Encoder> t5;  // each loaded on first use
  std::optional<WanDiT> dit;      // the only transformer, or Wan2.2 A14B's high-noise expert
  std::optional<WanDiT> dit_low;  // Wan2.2 A14B's low-noise expert
  std::optional<WanVAE> vae;
  bool vae_encoder = false;  // the VAE was loaded with its encoder (image-to-video)
  ConditionImage image;
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

RenderRequest Pipeline::plan(const RenderRequest& req) {
  Impl& m = *impl_;
  const ModelConfigs& c = m.loader.configs();
  const WanModelKind kind = model_kind(c);
  RenderRequest r = req;
  if (!r.image.empty() && kind == WanModelKind::T2V)
    throw Error(kExitUsage, fmt::format("--image {}: {} is a text-to-video model", r.image, paths().name),
                "use an image-to-video model (Wan2.2 TI2V-5B or I2V-A14B), or drop --image");
  if (r.image.empty() && kind == WanModelKind::I2V)
    throw Error(kExitUsage, fmt::format("{} is an image-to-video model (Wan2.2 I2V-A14B)", paths().name),
                "pass the first frame with --image FILE");
  if ((r.boundary || r.cfg_low) && !c.dit_low)
    throw Error(kExitUsage,
                fmt::format("{} needs the two experts of a Wan2.2 A14B model; {} has one transformer",
                            r.boundary ? "--boundary" : "--cfg-low", paths().name),
                "pass the low-noise expert with --dit-low, or drop the option");
  if (!r.loras.empty() && c.dit_low)
    throw Error(kExitUsage,
                fmt::format("--lora with the two experts of {}: a LoRA is merged into one transformer", paths().name),
                "run Wan2.2 A14B without --lora (LoRAs apply to single-transformer models)");
  if (r.image.empty()) return r;
  // The video size follows the image (docs/wan.md §8.4); both geometries are the official ones.
  const RgbImage8 img = load_image_rgb(r.image);
  const int64_t area = static_cast<int64_t>(r.width) * r.height;
  ConditionImage ci;
  ci.path = r.image;
  if (kind == WanModelKind::TI2V) {
    const PreparedImage p = prepare_ti2v_image(img, r.width, r.height);
    ci.width = p.width, ci.height = p.height;
    ci.pixels = image_to_video_tensor(p.image);
  } else {
    const auto [w, h] = a14b_i2v_size(img.width, img.height, area);
    ci.width = w, ci.height = h;
    const Tensor x = image_to_video_tensor(img);  // [1, 3, 1, ih, iw]
    ci.pixels = resize_bicubic_torch(x.reshape(Shape{3, img.height, img.width}), h, w).reshape(Shape{1, 3, 1, h, w});
  }
  if (ci.width != r.width || ci.height != r.height)
    say(r, fmt::format("image {} is {}x{}: video size {}x{} (the {} best fit for the area of --size {}x{})", r.image,
                       img.width, img.height, ci.width, ci.height, model_kind_name(kind), r.width, r.height));
  else
    say(r, fmt::format("image {} is {}x{}: video size {}x{}", r.image, img.width, img.height, ci.width, ci.height));
  r.width = ci.width;
  r.height = ci.height;
  m.image = std::move(ci);
  return r;
}

PipelineResult Pipeline::render(const RenderRequest& req, Progress& progress, CancelFlag cancel) {
  const ModelConfigs& c = impl_->loader.configs();
  const RenderRequest r = plan(req);
  latent_grid(r.width, r.height, r.frames);  // a size the model cannot take fails before any work
  if (c.dit.preset_name == "wan2.1-t2v-1.3b" && static_cast<int64_t>(r.width) * r.height > 832 * 480 * 5 / 4)
    spdlog::warn("the 1.3B model was trained at 832x480; {}x{} may look worse", r.width, r.height);
  progress.event("start", {{"prompt", r.prompt}, {"seed", r.seed}, {"model", paths().name}, {"frames", r.frames},
                           {"size", fmt::format("{}x{}", r.width, r.height)}, {"steps", r.steps}, {"output", r.output}});
  prepare_dit(r);  // LoRA files are checked before any weights load
  StageTimes t;
  EncodedPrompts text = encode_prompts(r, t);
  stop_if_cancelled(cancel);
  Tensor latents = denoise(r, text, progress, cancel, t);
  nlohmann::json settings =
      generation_settings_json(r, r.negative_or_default(), impl_->loader.options().device, paths().name);
  VideoSink sink(r, settings);
  decode_frames(r, latents, sink, cancel, t);
  return write_outputs(r, sink, std::move(settings), t, progress);
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
  int fp8 = 0;
  for (const std::string& key : m.lora->keys()) {
    const std::string fk = wan_dit_file_key(layout, key);
    if (store.contains(fk) && (store.info(fk).dtype == DType::F8_E4M3 || store.info(fk).dtype == DType::F8_E5M2)) ++fp8;
  }
  if (fp8 > 0)
    say(r, fmt::format("LoRA: {} fp8 weights of the DiT are dequantized, merged and kept in {} (not fp8)", fp8,
                       dtype_name(m.loader.options().dtype)));
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

Tensor Pipeline::denoise(const RenderRequest& r, const EncodedPrompts& text, Progress& progress, CancelFlag cancel,
                         StageTimes& t) {
  Impl& m = *impl_;
  const ModelConfigs& c = m.loader.configs();
  const WanDiTConfig& dit_cfg = c.dit;
  const Device dev = m.loader.options().device;
  prepare_dit(r);
  const WanModelKind kind = model_kind(c);
  const auto [T, h, w] = latent_grid(r.width, r.height, r.frames);
  const int64_t z = c.vae.z_dim;
  Tensor x = initial_noise(r, Shape{1, z, T, h, w}).to(dev);

  // ---- image conditioning (docs/wan.md §8.2, §8.3) ----
  Tensor first;  // TI2V: the image's normalised latent [1, z, 1, h, w]; latent frame 0 throughout
  Tensor cond;   // I2V-A14B: [mask 4, image latent z] channels [1, 4 + z, T, h, w]
  if (!r.image.empty()) {
    T2V_ASSERT(m.image.path == r.image && m.image.width == r.width, "the image was not planned for this request");
    const auto te = Clock::now();
    if (!m.vae || !m.vae_encoder) {
      const auto tl = Clock::now();
      m.vae.emplace(m.loader.load_vae(/*encoder=*/true));
      m.vae_encoder = true;
      t.load_s += seconds_since(tl);
    }
    if (kind == WanModelKind::TI2V) {
      first = wan_vae_normalize_latents(m.vae->encode(m.image.pixels).mean, c.vae).to(dev);
      x = with_first_frame(x, first);
    } else {
      // [image, F - 1 zero frames] through the Wan2.1 VAE.
      const Tensor zeros = Tensor::zeros(Shape{1, 3, r.frames - 1, r.height, r.width}, DType::F32);
      const Tensor video = r.frames > 1 ? ops::concat({m.image.pixels, zeros}, 2) : m.image.pixels;
      cond = i2v_condition(wan_vae_normalize_latents(m.vae->encode(video).mean, c.vae)).to(dev);
    }
    say(r, fmt::format("encoded the image in {:.2f} s", seconds_since(te)));
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
    Tensor in = cond.defined() ? ops::concat({x, cond}, 1) : x;  // I2V-A14B: [noise, mask, image latent]
    if (guided) in = ops::concat({in, in}, 0);                   // cond and uncond as one batch of 2
    Tensor v;
    if (guided) {
      Tensor vv = dit.forward(in, timestep, ctx_pair);
      v = cfg(vv.narrow0(1, 1), vv.narrow0(0, 1), g);
      t.dit_forwards += 2;
    } else {
      v = dit.forward(in, timestep, ctx_cond);
      t.dit_forwards += 1;
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
  say(r, fmt::format("denoised {} steps in {:.2f} s ({:.2f} s/step, {} DiT forwards)", r.steps, t.denoise_s,
                     t.denoise_s / r.steps, t.dit_forwards));
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
                          {"dit_forwards", t.dit_forwards},
                          {"compute_s_per_video_s", compute_s / video_s}});
  PipelineResult result;
  result.output = r.output;
  result.seed = r.seed;
  result.frames = sink.frames();
  result.times = t;
  return result;
}

}  // namespace t2v
