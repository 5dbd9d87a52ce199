#include "app/cli.h"

#include <csignal>
#include <set>
#include <string>
#include <vector>
#include <cstdio>
#include <cstdlib>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "app/bench.h"
#include "app/calibrate.h"
#include "app/batch_cli.h"
#include "app/choices.h"
#include "app/generate.h"
#include "app/inspect.h"
#include "app/model_defaults.h"
#include "app/options.h"
#include "app/probe.h"
#include "app/serve_cli.h"
#include "core/error.h"
#include "scheduler/distill.h"

namespace t2v {

static constexpr const char* kExamples = R"(Examples:
  t2v generate -p "a red ball rolling to the left" -o ball.mp4 --preview
  t2v generate -p "a cat surfing" --model Wan2.1-T2V-1.3B-Diffusers --device cuda --seed 42
  t2v serve --model Wan2.1-T2V-1.3B-Diffusers --device cuda --port 8000
  t2v generate -p "the cat jumps" --model Wan2.1-I2V-14B-480P-Diffusers --image cat.png --size 832x480
  t2v inspect wan2.1_t2v_1.3B_fp16.safetensors
  t2v probe dit --weights transformer/ --config transformer/config.json --inputs in.safetensors --out out.safetensors

Exit codes: 0 ok, 64 bad option, 65 bad input data, 66 missing input, 69 unavailable (no GPU/encoder),
70 internal error, 73 cannot create output, 74 I/O error, 75 temporary failure (retry).)";

// Every error is one line (docs/bad_inputs.md #81): a message that lists problems on
// indented lines is joined with "; ".
static std::string one_line(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\n' && text[i] != '\r') {
      out += text[i];
      continue;
    }
    while (i + 1 < text.size() && (text[i + 1] == ' ' || text[i + 1] == '\n' || text[i + 1] == '\r')) ++i;
    if (i + 1 < text.size()) out += !out.empty() && out.back() == ':' ? " " : "; ";
  }
  return out;
}

[[maybe_unused]] static int not_implemented(const char* what) {
  fmt::print(stderr, "t2v: '{}' is not implemented yet in this version\n", what);
  return 2;
}

int run_cli(int argc, char** argv) {
  spdlog::set_pattern("t2v %l: %v");
  if (const char* lvl = std::getenv("T2V_LOG")) spdlog::set_level(spdlog::level::from_str(lvl));

  CLI::App app{"t2v: text-to-video generation with the Wan2.1 architecture"};
  app.footer(kExamples);
  app.set_version_flag("--version", std::string("t2v ") + T2V_VERSION);
  app.require_subcommand(1);

  // ---- generate -------------------------------------------------------------------
  GenerateOptions g;
  std::string size, seed, fps, cfg, shift, cfg_low, boundary, max_memory;
  // The choices as text until parsed below, starting from GenerateOptions' defaults.
  std::string sampler = sampler_option_name(g.sampler), schedule = schedule_option_name(g.schedule);
  std::string device = device_option_name(g.device), dtype = dtype_option_name(g.dtype), cache = "none";
  auto* gen = app.add_subcommand("generate", "Generate a video from a prompt");
  gen->add_option("-p,--prompt", g.prompt, "What the video shows")->required();
  gen->add_option("-n,--negative-prompt", g.negative_prompt, "What to avoid (default: t2v.json, else Wan's)");
  gen->add_option("--model", g.model, "Model folder (diffusers layout, or a folder of Comfy files)");
  gen->add_option("--dit", g.dit, "Diffusion transformer weights (file or folder); Wan2.2 A14B: the high-noise expert");
  gen->add_option("--dit-low", g.dit_low, "Wan2.2 A14B: the low-noise expert's weights (file or folder)");
  gen->add_option("--cfg-low", cfg_low, "Wan2.2 A14B: guidance scale on the low-noise expert's steps (default --cfg)");
  gen->add_option("--boundary", boundary,
                  "Wan2.2 A14B: the high-noise expert runs while t >= R x 1000, 0 < R <= 1 (default: the model's)");
  gen->add_flag("--low-memory", g.low_memory,
                "Wan2.2 A14B: keep one expert in memory, swapping at the switch (automatic when both do not fit)");
  gen->add_option("--t5", g.t5, "umT5 text encoder weights");
  gen->add_option("--vae", g.vae, "VAE weights");
  gen->add_option("--tokenizer", g.tokenizer, "spiece.model or a tokenizer/ folder");
  gen->add_option("--clip", g.clip, "CLIP image encoder of image-to-video models (clip_vision_h.safetensors or image_encoder/)");
  gen->add_option("--image", g.image,
                  "Image-to-video (Wan2.1 I2V/FLF2V, Wan2.2 TI2V-5B and I2V-A14B): the first frame (PNG, JPEG, WebP, "
                  "BMP); --size is then an area budget and the video takes the image's aspect ratio");
  gen->add_option("--last-image", g.last_image, "First-last-frame-to-video: the last frame (same size as --image)");
  gen->add_option("--size", size, "WIDTHxHEIGHT, multiples of 16 (default: the model's t2v.json, else 832x480)");
  gen->add_option("--frames", g.frames, "Number of frames, 4k+1 (default: t2v.json, else 81)");
  gen->add_option("--fps", fps, "Frame rate: 16, 24, 29.97, 30000/1001 (default: t2v.json, else 16)");
  gen->add_option("--steps", g.steps, "Denoising steps (default: t2v.json, else 50)");
  gen->add_option("--cfg", cfg, "Classifier-free guidance scale (default: t2v.json, else 5)");
  gen->add_option("--shift", shift, "Flow shift of the sigma schedule (default: t2v.json, else 5)");
  gen->add_option("--sampler", sampler, "unipc (default), dpm++, euler or distill (with --timesteps)");
  std::string timesteps;
  gen->add_option("--timesteps", timesteps,
                  "The distill sampler's training timesteps, strictly decreasing in 1..1000 (e.g. 1000,750,500,250)");
  std::vector<std::string> loras;
  gen->add_option("--lora", loras, "LoRA FILE[:STRENGTH] merged into the DiT (repeatable; strength 1 by default)")
      ->expected(1)
      ->allow_extra_args(false)  // one value per --lora: a later positional is not a LoRA
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  gen->add_flag("--lora-ignore-unknown", g.lora_ignore_unknown,
                "Merge the LoRA keys that match the DiT and skip the others (default: refuse the LoRA)");
  gen->add_option("--schedule", schedule, "reference (official Wan, default) or diffusers");
  gen->add_option("--seed", seed, "Random seed 0..2^64-1 (random when omitted; printed and stored)");
  gen->add_option("--device", device, "cpu, cuda, or test (the CPU kernels behind the device interface; for tests)");
  gen->add_option("--dtype", dtype, "auto, f32, bf16 or fp8");
  gen->add_option("--cache", cache,
                  "Step cache: none (default), teacache or first-block, optionally :THRESHOLD (teacache:0.1); "
                  "docs/PERFORMANCE.md");
  gen->add_option("-o,--output", g.output, "Output .mp4 (default out.mp4)");
  gen->add_option("--crf", g.crf, "H.264 quality, 0..51 (default 18)");
  gen->add_flag("--preview", g.preview, "Also write a contact sheet PNG and a GIF next to the MP4");
  gen->add_option("--noise", g.noise_file, "Start from this noise tensor (safetensors key 'noise') for parity tests");
  gen->add_flag("--json", g.json, "Print machine-readable events (JSON lines) on stdout (with --plan: one object)");
  gen->add_flag("--plan", g.plan,
                "Print the predicted peak host and device memory per stage and stop (reads configs, not weights); "
                "exit 69 when it does not fit");
  gen->add_option("--max-memory", max_memory,
                  "Memory limit for the admission check, e.g. 12G, 800M, 1.5GiB (default: the memory available; "
                  "GPU memory with --device cuda)");
  gen->add_flag("--offload", g.offload,
                "Keep the transformer's blocks in host memory and copy each to the device just before it runs "
                "(--device cuda or test)");
  gen->add_flag("-q,--quiet", g.quiet, "No progress output");
  gen->add_flag("--overwrite", g.overwrite, "Replace an existing output file");
  gen->add_flag("--test-pattern", g.test_pattern,
                "Write a synthetic test pattern (a moving square) instead of generating: checks the video toolchain "
                "without a model");
  gen->add_flag("--allow-empty-prompt", g.allow_empty_prompt, "Accept an empty prompt");
  gen->add_flag("--strict", g.strict, "Treat warnings (unknown weight keys, prompt truncation) as errors");
  bool no_timings = false;
  gen->add_flag("--no-timings", no_timings,
                "Leave stage timings out of the MP4 metadata, so the same seed and settings give identical bytes");
  std::string frames_dump;
  gen->add_option("--dump-frames", frames_dump, "Also save the decoded frames in [0,1] as F32 safetensors (parity tests)");
  LivePreviewOptions live;
  gen->add_option("--live-preview", live.path,
                  "Write a latent preview PNG of the render in progress, replaced every few steps (see docs/serve.md)");
  gen->add_option("--live-preview-every", live.every, "Steps between live previews (default 5; the last step always)");

  // ---- inspect --------------------------------------------------------------------------
  std::string inspect_path;
  InspectOptions iopts;
  auto* insp = app.add_subcommand("inspect", "List the tensors of a safetensors file or model folder and detect the model");
  insp->add_option("path", inspect_path, "A .safetensors file, an index json, or a folder")->required();
  insp->add_flag("--all", iopts.all, "List every tensor");
  insp->add_flag("--json", iopts.json, "JSON output");
  insp->add_option("--model", iopts.model, "For a LoRA: the model folder to check it against");
  insp->add_option("--dit", iopts.dit, "For a LoRA: the DiT weights (file or folder) to check it against");

  // ---- probe ----------------------------------------------------------------------------
  ProbeOptions popts;
  std::string probe_device = device_option_name(popts.device), probe_dtype = dtype_option_name(popts.dtype);
  auto* probe = app.add_subcommand("probe", "Run one model component on named input tensors (for golden tests)");
  probe->add_option("component", popts.component, "text-encoder, dit, vae-decode, vae-encode or clip-vision")
      ->required();
  probe->add_option("--weights", popts.weights, "Weights file or folder")->required();
  probe->add_option("--config", popts.config, "config.json or a preset name");
  probe->add_option("--inputs", popts.inputs, "Input tensors (.safetensors)")->required();
  probe->add_option("--out", popts.out, "Output tensors (.safetensors)")->required();
  probe->add_flag("--overwrite", popts.overwrite, "Replace an existing --out file");
  probe->add_option("--device", probe_device, "cpu, cuda, or test (the CPU kernels behind the device interface; for tests)");
  probe->add_option("--dtype", probe_dtype, "auto, f32, bf16 or fp8: the component's compute dtype, as for generate");

  // ---- calibrate-cache -----------------------------------------------------------------------
  CalibrateOptions copts;
  copts.gen.steps = 50;
  std::string cal_device = "cpu", cal_dtype = "auto", cal_seed;
  auto* cal = app.add_subcommand("calibrate-cache",
                                 "Fit a model's TeaCache coefficients from uncached renders (stored in its t2v.json "
                                 "with --write)");
  cal->add_option("--model", copts.gen.model, "Model folder (default: the default model)");
  cal->add_option("--prompts", copts.prompts, "Text file, one prompt a line")->required();
  cal->add_option("--steps", copts.gen.steps, "Denoising steps of each render (default 50)");
  cal->add_option("--seed", cal_seed, "Seed of the first prompt (the k-th uses seed + k; default 0)");
  cal->add_option("--device", cal_device, "cpu, cuda, or test");
  cal->add_option("--dtype", cal_dtype, "auto, f32, bf16 or fp8");
  cal->add_flag("--write", copts.write, "Store the coefficients in the model folder's t2v.json");

  // ---- batch / bench (later) --------------------------------------------------------------
  BatchCli batch;
  add_batch_commands(app, batch);  // batch and gallery
  ServeCli serve;
  add_serve_command(app, serve);
  BenchOptions bopts;
  std::string bench_device = device_option_name(bopts.device), bench_dtype = dtype_option_name(bopts.dtype);
  std::string bench_cache = "none";
  auto* bench = app.add_subcommand("bench", "Time real-size model shapes with random weights");
  bench->add_option("--model", bopts.model,
                    "wan2.1-t2v-1.3b (default), wan2.1-t2v-14b, wan2.1-i2v-14b, wan2.1-flf2v-14b, wan2.2-ti2v-5b, "
                    "wan2.2-t2v-a14b or wan2.2-i2v-a14b");
  bench->add_option("--size", bopts.size, "WIDTHxHEIGHT (default 832x480)");
  bench->add_option("--frames", bopts.frames, "Frames, 4k+1 (default 81)");
  bench->add_option("--steps", bopts.steps, "Steps for the whole-video projection (default 50)");
  bench->add_option("--device", bench_device, "cpu, cuda, or test (the CPU kernels behind the device interface; for tests)");
  bench->add_option("--dtype", bench_dtype, "auto, f32, bf16 or fp8: the compute dtype, as for generate");
  bench->add_option("--layers", bopts.layers, "Run only this many DiT (and umT5) blocks (CPU runs at real widths)");
  bench->add_option("--repeat", bopts.repeat, "Timed runs per stage (default 3; median reported)");
  bench->add_option("--peak-tflops", bopts.peak_tflops, "Device ceiling for the floor (default 798, H100 bf16)");
  bench->add_option("--cache", bench_cache, "Also time the step cache KIND[:THRESHOLD]: a computed and a skipped step, the check");
  bench->add_flag("--dry-run", bopts.dry_run, "Only print FLOP counts and the time floor");
  bench->add_flag("!--no-vae", bopts.vae, "Skip the VAE decode");
  bench->add_flag("!--no-text-encoder", bopts.text_encoder, "Skip the umT5 text encoder");
  bench->add_flag("--json", bopts.json, "JSON output");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    // One line like every other error (docs/bad_inputs.md #81), not CLI11's two.
    std::string msg = e.what();
    for (char& c : msg)
      if (c == '\n' || c == '\r') c = ' ';
    while (!msg.empty() && msg.back() == ' ') msg.pop_back();
    fmt::print(stderr, "t2v: error: {}; hint: run 't2v --help' or 't2v COMMAND --help' for the options\n", msg);
    return kExitUsage;
  }

  try {
    if (*gen) {
      if (!size.empty()) parse_size(size, &g.width, &g.height);
      if (!seed.empty()) g.seed = parse_seed(seed);
      if (!fps.empty()) {
        Rational r = parse_fps(fps);
        g.fps = r;
      }
      if (!cfg.empty()) g.cfg = parse_finite("--cfg", cfg);
      if (!shift.empty()) g.shift = parse_finite("--shift", shift);
      if (!cfg_low.empty()) g.cfg_low = parse_finite("--cfg-low", cfg_low);
      if (!boundary.empty()) g.boundary = parse_finite("--boundary", boundary);
      if (gen->count("--max-memory") > 0) g.max_memory = parse_memory_size("--max-memory", max_memory);
      g.sampler = parse_sampler(sampler);
      g.schedule = parse_schedule(schedule);
      g.device = parse_device(device);
      g.dtype = parse_dtype(dtype);
      g.cache = parse_cache(cache);
      if (gen->count("--timesteps") > 0) g.timesteps = parse_distill_timesteps(timesteps);
      for (const std::string& l : loras) g.loras.push_back(parse_lora_spec(l));
      // Settings not given take the model folder's t2v.json values (the shipped
      // default model is 64x64, 17 frames, 8 fps), then the built-in ones.
      std::set<std::string> given;
      for (const char* name :
           {"size", "frames", "fps", "steps", "cfg", "shift", "sampler", "timesteps", "lora", "negative-prompt"})
        if (gen->count("--" + std::string(name)) > 0) given.insert(name);
      apply_model_defaults(g, model_defaults_folder(g), given);
      // The progress bar is for people: not when stderr is not a terminal, nor with NO_COLOR.
      g.timing_metadata = !no_timings;
      g.progress_bar = !g.quiet && !g.json && !std::getenv("NO_COLOR") && isatty(STDERR_FILENO);
      return run_generate(g, frames_dump, live);
    }
    if (*insp) return run_inspect(inspect_path, iopts);
    if (*cal) {
      GenerateOptions& cg = copts.gen;
      cg.prompt = "calibration";
      cg.device = parse_device(cal_device);
      cg.dtype = parse_dtype(cal_dtype);
      if (!cal_seed.empty()) copts.seed = parse_seed(cal_seed);
      apply_model_defaults(cg, model_defaults_folder(cg), {"steps"});
      return run_calibrate_cache(copts);
    }
    if (*probe) {
      popts.device = parse_device(probe_device);
      popts.dtype = parse_dtype(probe_dtype);
      return run_probe(popts);
    }
    if (batch.selected()) return run_batch_commands(batch);
    if (serve.selected()) return run_serve_command(serve);
    if (*bench) {
      bopts.device = parse_device(bench_device);
      bopts.dtype = parse_dtype(bench_dtype);
      bopts.cache = parse_cache(bench_cache);
      return run_bench(bopts);
    }
  } catch (const Error& e) {
    fmt::print(stderr, "t2v: error: {}\n", one_line(e.what()));
    return e.code();
  } catch (const std::bad_alloc&) {
    fmt::print(stderr, "t2v: error: out of memory; hint: use a smaller --size or fewer --frames\n");
    return kExitSoftware;
  } catch (const std::exception& e) {
    fmt::print(stderr, "t2v: error: {}\n", one_line(e.what()));
    return kExitSoftware;
  }
  return 0;
}

}  // namespace t2v
