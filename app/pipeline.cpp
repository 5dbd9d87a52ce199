#include "app/pipeline.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "app/device.h"
#include "core/error.h"
#include "core/philox.h"
#include "core/safetensors.h"
#include "diffusion/wan_dit.h"
#include "diffusion/wan_dit_config.h"
#include "diffusion/wan_dit_weights.h"
#include "kernels/ops.h"
#include "scheduler/scheduler.h"
#include "text_encoder/tokenizer.h"
#include "text_encoder/umt5.h"
#include "vae/wan_vae.h"
#include "vae/wan_vae_config.h"
#include "video_io/mp4_writer.h"
#include "video_io/preview.h"

namespace t2v {

const char* const kWanDefaultNegativePrompt =
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，丑陋的，"
    "残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，"
    "三条腿，背景人很多，倒着走";

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

void say(const GenerateOptions& o, const std::string& line) {
  if (!o.quiet && !o.json) fmt::print(stderr, "t2v: {}\n", line);
}

// The noise the denoising starts from: injected (parity tests) or Philox from the seed.
Tensor initial_noise(const GenerateOptions& o, const Shape& shape, uint64_t seed) {
  if (o.noise_file.empty()) return randn_philox(shape, seed);
  SafetensorsFile f(o.noise_file);
  const TensorInfo* ti = f.find("noise");
  if (!ti && f.tensors().size() == 1) ti = &f.tensors()[0];
  if (!ti)
    throw Error(kExitDataErr, fmt::format("{}: no tensor named 'noise'", o.noise_file),
                "save the starting latents under the key 'noise'");
  Tensor t = f.get(ti->name).to(DType::F32);
  if (t.numel() != shape.numel())
    throw Error(kExitDataErr,
                fmt::format("{}: noise has shape {}, this video needs {}", o.noise_file, t.shape().str(), shape.str()),
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
  PipelineLoadOptions opts;
  WanVAEConfig vae_cfg;
  WanDiTConfig dit_cfg;
  UMT5Config t5_cfg;
  std::optional<TensorStore> dit_store;
  std::optional<UMT5Tokenizer> tok;
  std::optional<UMT5Encoder> t5;  // loaded on first use
  std::optional<WanDiT> dit;
  std::optional<WanVAE> vae;
};

Pipeline::Pipeline(ModelPaths paths, PipelineLoadOptions opts) : impl_(std::make_unique<Impl>()), paths_(std::move(paths)) {
  Impl& m = *impl_;
  m.opts = opts;
  // Configs and tokenizer are cheap: read them all before any weights, so a
  // mismatch is found in milliseconds.
  m.vae_cfg = WanVAEConfig::resolve(paths_.vae_config.empty() ? "wan2.1-vae" : paths_.vae_config, paths_.vae);
  m.dit_store.emplace(TensorStore::open(paths_.dit));
  m.dit_cfg = paths_.dit_config.empty() ? WanDiTConfig::from_weights(*m.dit_store)
                                        : WanDiTConfig::from_json(paths_.dit_config);
  m.t5_cfg = UMT5Config::resolve(paths_.t5_config.empty() ? "umt5-xxl" : paths_.t5_config, paths_.t5);
  if (m.t5_cfg.d_model != m.dit_cfg.text_dim)
    throw Error(kExitDataErr,
                fmt::format("text encoder width {} does not match the transformer's text_dim {}", m.t5_cfg.d_model,
                            m.dit_cfg.text_dim),
                "use the text encoder that belongs to this model");
  if (m.vae_cfg.z_dim != m.dit_cfg.in_dim || m.vae_cfg.z_dim != m.dit_cfg.out_dim)
    throw Error(kExitDataErr,
                fmt::format("VAE latent channels {} do not match the transformer's {} in / {} out", m.vae_cfg.z_dim,
                            m.dit_cfg.in_dim, m.dit_cfg.out_dim),
                "use the VAE that belongs to this model (Wan2.1 VAE: 16 channels)");
  m.tok.emplace(UMT5Tokenizer::from_path(paths_.tokenizer));
}

Pipeline::~Pipeline() = default;

std::array<int64_t, 3> Pipeline::latent_grid(int width, int height, int frames) const {
  const int sf = impl_->vae_cfg.spatial_factor(), tf = impl_->vae_cfg.temporal_factor();
  const int64_t ph = impl_->dit_cfg.patch_size[1], pw = impl_->dit_cfg.patch_size[2];
  if (width % (sf * pw) || height % (sf * ph))
    throw Error(kExitUsage, fmt::format("size {}x{} is not a multiple of {}", width, height, sf * pw));
  return {(frames - 1) / tf + 1, height / sf, width / sf};
}

PipelineResult Pipeline::render(const GenerateOptions& o, uint64_t seed, Progress& progress,
                                const std::string& frames_dump, const std::atomic<bool>* cancel) {
  Impl& m = *impl_;
  const Device dev = m.opts.device;
  PipelineResult r;
  r.seed = seed;
  r.output = o.output;
  const std::string negative = o.negative_prompt ? *o.negative_prompt : std::string(kWanDefaultNegativePrompt);
  const auto [T, h, w] = latent_grid(o.width, o.height, o.frames);
  if (m.dit_cfg.preset_name == "wan2.1-t2v-1.3b" && static_cast<int64_t>(o.width) * o.height > 832 * 480 * 5 / 4)
    spdlog::warn("the 1.3B model was trained at 832x480; {}x{} may look worse", o.width, o.height);
  progress.event("start", {{"prompt", o.prompt}, {"seed", seed}, {"model", paths_.name}, {"frames", o.frames},
                           {"size", fmt::format("{}x{}", o.width, o.height)}, {"steps", o.steps}, {"output", o.output}});
  auto cancelled = [&] { return cancel && cancel->load(); };
  auto stop_if_cancelled = [&] {
    if (cancelled()) throw Error(kExitTempFail, "interrupted", "run the same command again to resume");
  };

  // ---- text ------------------------------------------------------------------------------
  auto t0 = Clock::now();
  TokenizedPrompt pos_ids = m.tok->encode(o.prompt, m.dit_cfg.text_len);
  TokenizedPrompt neg_ids = m.tok->encode(negative, m.dit_cfg.text_len);
  for (const auto* tp : {&pos_ids, &neg_ids})
    if (tp->dropped > 0 && m.opts.strict)
      throw Error(kExitDataErr, fmt::format("prompt is {} tokens; {} were cut at the limit of {}", tp->text_tokens + 1,
                                            tp->dropped, m.dit_cfg.text_len),
                  "shorten the prompt (or drop --strict to accept the cut)");
  Tensor ctx_pos, ctx_neg;  // [text_len, D] rows then exact zeros
  if (!m.t5) {
    auto tl = Clock::now();
    m.t5.emplace(UMT5Encoder::load(paths_.t5, m.t5_cfg, dev));
    r.load_s += seconds_since(tl);
  }
  ctx_pos = m.t5->encode_context(pos_ids.ids, m.dit_cfg.text_len);
  ctx_neg = m.t5->encode_context(neg_ids.ids, m.dit_cfg.text_len);
  if (!m.opts.keep_text_encoder) m.t5.reset();  // free its weights before the DiT loads
  r.encode_s = seconds_since(t0) - r.load_s;
  say(o, fmt::format("encoded prompt ({} tokens) and negative prompt ({} tokens) in {:.2f} s", pos_ids.ids.size(),
                     neg_ids.ids.size(), r.encode_s));
  stop_if_cancelled();

  // ---- denoise ------------------------------------------------------------------------------
  if (!m.dit) {
    auto tl = Clock::now();
    WanDiTLoadOptions lo;
    lo.device = dev;
    lo.dtype = m.opts.dtype;
    lo.strict = m.opts.strict;
    m.dit.emplace(m.dit_cfg, load_wan_dit(*m.dit_store, m.dit_cfg, lo));
    r.load_s += seconds_since(tl);
  }
  const WanDiT& dit = *m.dit;
  Shape lat_shape{1, m.dit_cfg.in_dim, T, h, w};
  Tensor x = initial_noise(o, lat_shape, seed).to(dev);
  std::unique_ptr<Scheduler> sched = make_scheduler(sampler_from_name(o.sampler));
  sched->set_timesteps(o.steps, o.shift, o.schedule == "diffusers" ? ScheduleKind::kDiffusers : ScheduleKind::kWan);
  const bool guided = o.cfg != 1.0;  // cfg 1 is the conditional prediction alone
  // Only the rows up to the longer prompt: the DiT stands in for the zero rows after them
  // (the same result, without attending to hundreds of padding rows).
  const auto L = static_cast<int64_t>(std::max(pos_ids.ids.size(), guided ? neg_ids.ids.size() : size_t{1}));
  const int64_t D = m.dit_cfg.text_dim;
  auto rows = [&](const Tensor& c) { return ops::slice(c, 0, 0, L).reshape({1, L, D}); };
  Tensor ctx = guided ? ops::concat({rows(ctx_pos), rows(ctx_neg)}, 0) : rows(ctx_pos);
  ctx = ctx.to(dev);

  t0 = Clock::now();
  progress.start_steps(o.steps);
  for (int i = 0; i < o.steps; ++i) {
    float t = static_cast<float>(sched->timesteps()[i]);
    Tensor v;
    if (guided) {
      Tensor xx = ops::concat({x, x}, 0);  // cond and uncond as one batch of 2
      Tensor vv = dit.forward(xx, Tensor::from_floats({t, t}, {2}), ctx);
      v = cfg(vv.narrow0(1, 1), vv.narrow0(0, 1), o.cfg);
    } else {
      v = dit.forward(x, Tensor::from_floats({t}, {1}), ctx);
    }
    x = sched->step(v, i, x);
    if (i == 0 && !all_finite(x))
      throw Error(kExitSoftware, "NaN or Inf in the latents after step 1",
                  "the weights may hold NaN/Inf or overflow in this dtype; try --dtype f32");
    progress.step_done(i + 1);
    stop_if_cancelled();
  }
  progress.finish_steps();
  r.denoise_s = seconds_since(t0);
  if (!all_finite(x))
    throw Error(kExitSoftware, fmt::format("NaN or Inf in the latents after {} steps", o.steps),
                "try fewer steps, another sampler, or --dtype f32");
  say(o, fmt::format("denoised {} steps in {:.2f} s ({:.2f} s/step)", o.steps, r.denoise_s, r.denoise_s / o.steps));

  // ---- decode ---------------------------------------------------------------------------------
  t0 = Clock::now();
  if (!m.vae) {
    auto tl = Clock::now();
    WanVAELoadOptions vo;
    vo.device = dev;
    vo.parts.encoder = false;
    m.vae.emplace(WanVAE::load(paths_.vae, m.vae_cfg, vo));
    r.load_s += seconds_since(tl);
    t0 = Clock::now();
  }
  Tensor mu = wan_vae_denormalize_latents(x, m.vae_cfg);
  const int H = o.height, W = o.width;
  const size_t frame_bytes = static_cast<size_t>(H) * W * 3;

  // Frames go into the MP4 writer as the VAE produces them (one latent frame at a
  // time), so memory does not grow with the video length. The settings tag is
  // completed with the timings just before the index is written.
  nlohmann::json meta = generation_settings_json(o, negative, seed, paths_.name);
  Mp4Options mo;
  mo.crf = o.crf;
  mo.overwrite = o.overwrite;
  mo.metadata["t2v"] = meta.dump();
  mo.metadata["comment"] = o.prompt;
  Mp4Writer writer;
  writer.open(o.output, W, H, o.fps, mo);
  double mux_s = 0;
  std::vector<uint8_t> frame(frame_bytes), kept;  // kept: all frames, only for --preview
  std::vector<float> dump;
  m.vae->decode_stream(mu, [&](const Tensor& chunk) {
    // chunk [1, 3, f, H, W] in [-1, 1] -> RGB24 frames. Round to nearest (the reference truncates;
    // rounding halves the quantisation error and removes its bias).
    Tensor c = chunk.to(Device::CPU).to(DType::F32);
    const float* p = c.data<float>();
    const int64_t f = c.size(2), plane = static_cast<int64_t>(H) * W;
    for (int64_t k = 0; k < f; ++k) {
      for (int64_t yx = 0; yx < plane; ++yx) {
        for (int ch = 0; ch < 3; ++ch) {
          float v = p[(ch * f + k) * plane + yx];
          float u = std::clamp((v + 1.0f) * 0.5f, 0.0f, 1.0f);
          if (!frames_dump.empty()) dump.push_back(u);
          frame[static_cast<size_t>(yx) * 3 + ch] = static_cast<uint8_t>(std::lround(u * 255.0f));
        }
      }
      auto tm = Clock::now();
      writer.write_frame(frame.data(), W * 3);
      mux_s += seconds_since(tm);
      if (o.preview) kept.insert(kept.end(), frame.begin(), frame.end());
      ++r.frames;
    }
    stop_if_cancelled();  // the writer's destructor drops the temp file
  });
  r.decode_s = seconds_since(t0) - mux_s;
  T2V_ASSERT(r.frames == o.frames, "decoded {} frames, expected {}", r.frames, o.frames);
  say(o, fmt::format("decoded {} frames in {:.2f} s", r.frames, r.decode_s));
  if (!frames_dump.empty())
    save_safetensors(frames_dump, {{"frames", Tensor::from_floats(dump, {r.frames, H, W, 3})}});

  // ---- mux ------------------------------------------------------------------------------------
  t0 = Clock::now();
  const double video_s = r.frames / o.fps.value();
  const double compute_s = r.encode_s + r.denoise_s + r.decode_s;
  if (o.timing_metadata) {
    meta["timings_s"] = {{"load", r.load_s}, {"encode", r.encode_s}, {"denoise", r.denoise_s}, {"decode", r.decode_s}};
    meta["compute_s_per_video_s"] = compute_s / video_s;
    writer.set_metadata("t2v", meta.dump());
  }
  writer.finish();
  if (o.preview) {
    namespace fs = std::filesystem;
    fs::path base = fs::path(o.output).replace_extension("");
    std::vector<RgbImage> views = frames_view(kept.data(), r.frames, W, H);
    ContactSheetOptions cs;
    cs.overwrite = true;
    write_contact_sheet(base.string() + ".png", views, cs);
    GifOptions go;
    go.overwrite = true;
    write_animated_gif(base.string() + ".gif", views, o.fps, go);
  }
  r.mux_s = mux_s + seconds_since(t0);
  say(o, fmt::format("wrote {} ({} frames, {}x{}, {} fps) — encode {:.2f} s, denoise {:.2f} s, decode {:.2f} s, "
                     "mux {:.2f} s; {:.1f} {}-seconds per second of video",
                     o.output, r.frames, W, H, format_fps(o.fps), r.encode_s, r.denoise_s, r.decode_s, r.mux_s,
                     compute_s / video_s, dev == Device::CUDA ? "GPU" : "CPU"));
  progress.event("done", {{"output", o.output}, {"seed", seed}, {"frames", r.frames}, {"timings_s", {{"load", r.load_s}, {"encode", r.encode_s}, {"denoise", r.denoise_s}, {"decode", r.decode_s}, {"mux", r.mux_s}}},
                          {"compute_s_per_video_s", compute_s / video_s}});
  return r;
}

nlohmann::json generation_settings_json(const GenerateOptions& o, const std::string& negative, uint64_t seed,
                                        const std::string& model) {
  return {{"prompt", o.prompt},       {"negative_prompt", negative},
          {"seed", seed},             {"steps", o.steps},
          {"cfg", o.cfg},             {"shift", o.shift},
          {"sampler", o.sampler},     {"schedule", o.schedule},
          {"size", fmt::format("{}x{}", o.width, o.height)},
          {"frames", o.frames},       {"fps", format_fps(o.fps)},
          {"model", model},           {"device", o.device},
          {"version", T2V_VERSION}};
}

DType compute_dtype_for(const std::string& dtype, Device device) {
  if (dtype == "auto") return device == Device::CUDA ? DType::BF16 : DType::F32;
  if (dtype == "f32") return DType::F32;
  if (dtype == "bf16") {
    if (device == Device::CPU)
      throw Error(kExitUsage, "--dtype bf16: the CPU backend computes in f32", "use --dtype f32 (or auto) with --device cpu");
    return DType::BF16;
  }
  if (dtype == "fp8")
    throw Error(kExitUsage, "--dtype fp8: fp8 GEMMs are not available yet",
                "use --dtype bf16; fp8 checkpoints load and run dequantized in bf16 or f32");
  throw Error(kExitUsage, fmt::format("--dtype '{}' is unknown", dtype), "use auto, f32, bf16 or fp8");
}

PipelineResult run_pipeline(const GenerateOptions& o, const ModelPaths& paths, uint64_t seed, Progress& progress,
                            const std::string& frames_dump) {
  PipelineLoadOptions lo;
  lo.device = open_device(o.device);
  lo.dtype = compute_dtype_for(o.dtype, lo.device);
  lo.strict = o.strict;
  Pipeline pipeline(paths, lo);
  return pipeline.render(o, seed, progress, frames_dump);
}

}  // namespace t2v
