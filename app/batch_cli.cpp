#include "app/batch_cli.h"

#include <unistd.h>

#include <cstdlib>
#include <set>

#include "app/gallery.h"
#include "app/model_defaults.h"
#include "core/error.h"
#include "scheduler/distill.h"

namespace t2v {

void add_batch_commands(CLI::App& app, BatchCli& c) {
  BatchOptions& o = c.o;
  GenerateOptions& g = o.defaults;
  auto* b = app.add_subcommand("batch", "Render a JSONL prompt list resumably (see docs/batch.md)");
  c.batch = b;
  b->add_option("list", o.list, "JSONL file: one {\"prompt\": ...} object per line")->required();
  b->add_option("--out-dir", o.out_dir, "Folder for the videos, manifest.jsonl and lock files")->required();
  b->add_option("--model", g.model, "Model folder (diffusers layout, or a folder of Comfy files)");
  b->add_option("--dit", g.dit, "Diffusion transformer weights (file or folder)");
  b->add_option("--t5", g.t5, "umT5 text encoder weights");
  b->add_option("--vae", g.vae, "VAE weights");
  b->add_option("--tokenizer", g.tokenizer, "spiece.model or a tokenizer/ folder");
  b->add_option("--clip", g.clip, "CLIP image encoder of image-to-video models");
  b->add_option("--device", c.device, "cpu, cuda, or test (the CPU kernels behind the device interface; for tests)");
  b->add_option("--dtype", c.dtype, "auto, f32, bf16 or fp8");
  b->add_option("--size", c.size, "Default WIDTHxHEIGHT for items without \"size\" (the model's t2v.json, else 832x480)");
  b->add_option("--frames", g.frames, "Default frame count, 4k+1 (81)");
  b->add_option("--fps", c.fps, "Default frame rate (16)");
  b->add_option("--steps", g.steps, "Default denoising steps (50)");
  b->add_option("--cfg", c.cfg, "Default guidance scale (5)");
  b->add_option("--shift", c.shift, "Default flow shift (5)");
  b->add_option("--sampler", c.sampler, "Default sampler: unipc, dpm++, euler or distill (with --timesteps)");
  b->add_option("--timesteps", c.timesteps, "Default timesteps of the distill sampler (e.g. 1000,750,500,250)");
  b->add_option("--lora", c.loras, "Default LoRA FILE[:STRENGTH] for items without \"loras\" (repeatable)")
      ->expected(1)
      ->allow_extra_args(false)  // one value per --lora: a later positional is not a LoRA
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  b->add_flag("--lora-ignore-unknown", g.lora_ignore_unknown,
              "Merge the LoRA keys that match the DiT and skip the others (default: refuse the LoRA)");
  b->add_option("--schedule", c.schedule, "reference (official Wan, default) or diffusers");
  b->add_option("--cache", c.cache, "Default step cache: none, teacache or first-block, optionally :THRESHOLD");
  b->add_option("--crf", g.crf, "H.264 quality, 0..51 (default 18)");
  b->add_option("--seeds", o.seeds, "Render N seeds per prompt (ids and file names get -s<seed>)");
  b->add_option("--shard", o.shard, "Render shard I of N (0-based, I/N); default from SLURM_ARRAY_* or JOB_COMPLETION_INDEX");
  b->add_option("--shards", o.shards, "Shard count with JOB_COMPLETION_INDEX (Kubernetes Indexed Job completions)");
  b->add_option("--lock-timeout", c.lock_timeout, "Seconds after which another worker's lock is taken over (43200)");
  b->add_flag("--force", o.force, "Render items again even when they are done");
  b->add_flag("--preview", g.preview, "Also write a contact sheet PNG and a GIF per video");
  b->add_flag("--skip-invalid", o.skip_invalid, "Render the valid lines of a list that has invalid ones (exit 65 at the end)");
  b->add_flag("--fail-empty", o.fail_empty, "Exit 65 when the list has no prompts (default: exit 0)");
  b->add_option("--max-memory", c.max_memory,
                 "Memory limit each item is checked against before it renders, e.g. 12G, 800M, 1.5GiB (default: "
                 "the memory available)");
  b->add_flag("--offload", g.offload,
              "Keep the transformer's blocks in host memory and copy each to the device just before it runs "
              "(--device cuda or test)");
  b->add_flag("--low-memory", o.low_memory, "Free the text encoder before the DiT loads (reloads it per video)");
  b->add_flag("--strict", g.strict, "Treat warnings (unknown weight keys, prompt truncation) as errors");
  b->add_flag("--json", g.json, "Print machine-readable events (JSON lines) on stdout");
  b->add_flag("-q,--quiet", g.quiet, "Only errors and the final summary");

  auto* gal = app.add_subcommand("gallery", "Write DIR/index.html that plays every video of a batch manifest");
  c.gallery = gal;
  gal->add_option("dir", c.gallery_dir, "The --out-dir of a t2v batch run")->required();
  gal->add_flag("-q,--quiet", c.gallery_quiet, "No output");
}

int run_batch_commands(BatchCli& c) {
  if (c.gallery && *c.gallery) return run_gallery(c.gallery_dir, c.gallery_quiet);
  GenerateOptions& g = c.o.defaults;
  if (!c.size.empty()) parse_size(c.size, &g.width, &g.height);
  if (!c.fps.empty()) g.fps = parse_fps(c.fps);
  if (!c.cfg.empty()) g.cfg = parse_finite("--cfg", c.cfg);
  if (!c.shift.empty()) g.shift = parse_finite("--shift", c.shift);
  if (!c.lock_timeout.empty()) {
    // NaN would make every lock look live, a negative value every lock stale.
    c.o.lock_timeout_s = parse_finite("--lock-timeout", c.lock_timeout);
    if (c.o.lock_timeout_s <= 0)
      throw Error(kExitUsage, fmt::format("--lock-timeout {} must be a number of seconds > 0", c.lock_timeout),
                  "the default is 43200 (12 h); use more than the longest render takes");
  }
  g.sampler = parse_sampler(c.sampler);
  g.schedule = parse_schedule(c.schedule);
  g.device = parse_device(c.device);
  g.dtype = parse_dtype(c.dtype);
  if (c.batch->count("--max-memory") > 0) g.max_memory = parse_memory_size("--max-memory", c.max_memory);
  check_offload_device(g);
  g.cache = parse_cache(c.cache);
  if (c.batch->count("--timesteps") > 0) g.timesteps = parse_distill_timesteps(c.timesteps);
  for (const std::string& l : c.loras) g.loras.push_back(parse_lora_spec(l));
  // Defaults the options did not set come from the model folder's t2v.json (items still win).
  std::set<std::string> given;
  for (const char* name : {"size", "frames", "fps", "steps", "cfg", "shift", "sampler", "timesteps", "lora"})
    if (c.batch->count("--" + std::string(name)) > 0) given.insert(name);
  apply_model_defaults(g, model_defaults_folder(g), given);
  g.progress_bar = !g.quiet && !g.json && !std::getenv("NO_COLOR") && isatty(STDERR_FILENO);
  return run_batch(c.o);
}

}  // namespace t2v
