#include "app/serve_cli.h"

#include <cstdlib>
#include <set>

#include "app/model_defaults.h"

namespace t2v {

void add_serve_command(CLI::App& app, ServeCli& c) {
  ServeOptions& o = c.o;
  GenerateOptions& g = o.defaults;
  auto* s = app.add_subcommand("serve", "Serve the OpenAI Videos API and a browser page (see docs/serve.md)");
  c.serve = s;
  s->add_option("--host", o.host, "Address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)");
  s->add_option("--port", o.port, "Port (default 8000; 0 picks a free one and prints it)");
  s->add_option("--jobs-dir", o.jobs_dir, "Folder of the jobs: requests, states, videos (default ./t2v-jobs)");
  s->add_option("--api-key", o.api_key, "Require 'Authorization: Bearer KEY' on /v1/ (default: $T2V_API_KEY)");
  s->add_option("--max-queue", o.max_queue, "Waiting jobs beyond this are refused with 429 (default 100)");
  s->add_option("--preview-every", o.preview_every,
                "Live preview every N denoising steps and the last (default 5; 0 off)");
  s->add_option("--http-threads", o.http_threads, "Connections served at once (default 16)");
  s->add_option("--read-timeout", o.read_timeout_s, "Seconds a client may stay silent mid-request (default 10)");
  s->add_option("--lock-timeout", o.lock_timeout_s,
                "Seconds after which another server's job lock is taken over (43200)");
  s->add_flag("-q,--quiet", o.quiet, "No per-job log lines");
  s->add_option("--model", g.model, "Model folder (diffusers layout, or a folder of Comfy files)");
  s->add_option("--dit", g.dit, "Diffusion transformer weights (file or folder)");
  s->add_option("--t5", g.t5, "umT5 text encoder weights");
  s->add_option("--vae", g.vae, "VAE weights");
  s->add_option("--tokenizer", g.tokenizer, "spiece.model or a tokenizer/ folder");
  s->add_option("--device", c.device, "cpu, cuda, or test (the CPU kernels behind the device interface; for tests)");
  s->add_option("--dtype", c.dtype, "auto, f32, bf16 or fp8");
  s->add_option("-n,--negative-prompt", g.negative_prompt, "Default negative prompt (default: t2v.json, else Wan's)");
  s->add_option("--size", c.size, "Default WIDTHxHEIGHT (the model's t2v.json, else 832x480)");
  s->add_option("--frames", g.frames, "Default frame count, 4k+1 (t2v.json, else 81)");
  s->add_option("--fps", c.fps, "Frame rate of every video, and for \"seconds\" (t2v.json, else 16)");
  s->add_option("--steps", g.steps, "Default denoising steps (t2v.json, else 50)");
  s->add_option("--cfg", c.cfg, "Default guidance scale (t2v.json, else 5)");
  s->add_option("--shift", c.shift, "Default flow shift (t2v.json, else 5)");
  s->add_option("--sampler", c.sampler, "Default sampler: unipc, dpm++ or euler");
  s->add_option("--schedule", c.schedule, "reference (official Wan, default) or diffusers");
  s->add_option("--crf", g.crf, "H.264 quality, 0..51 (default 18)");
  s->add_flag("--strict", g.strict, "Treat warnings (unknown weight keys, prompt truncation) as errors");
}

int run_serve_command(ServeCli& c) {
  GenerateOptions& g = c.o.defaults;
  if (!c.size.empty()) parse_size(c.size, &g.width, &g.height);
  if (!c.fps.empty()) g.fps = parse_fps(c.fps);
  if (!c.cfg.empty()) g.cfg = parse_finite("--cfg", c.cfg);
  if (!c.shift.empty()) g.shift = parse_finite("--shift", c.shift);
  g.sampler = parse_sampler(c.sampler);
  g.schedule = parse_schedule(c.schedule);
  g.device = parse_device(c.device);
  g.dtype = parse_dtype(c.dtype);
  std::set<std::string> given;
  for (const char* name : {"size", "frames", "fps", "steps", "cfg", "shift", "sampler", "negative-prompt"})
    if (c.serve->count("--" + std::string(name)) > 0) given.insert(name);
  apply_model_defaults(g, model_defaults_folder(g), given);
  if (c.o.api_key.empty())
    if (const char* key = std::getenv("T2V_API_KEY")) c.o.api_key = key;
  g.quiet = true;
  return run_serve(c.o);
}

}  // namespace t2v
