// Command-line setup of `t2v batch` and `t2v gallery`, kept here so cli.cpp stays a list
// of subcommands.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "app/batch.h"

namespace t2v {

struct BatchCli {
  BatchOptions o;
  std::string size, fps, cfg, shift, lock_timeout, timesteps, max_memory;
  std::vector<std::string> loras;
  // The choices as text until run_batch_commands parses them (defaults: GenerateOptions').
  std::string sampler = sampler_option_name(o.defaults.sampler), schedule = schedule_option_name(o.defaults.schedule);
  std::string device = device_option_name(o.defaults.device), dtype = dtype_option_name(o.defaults.dtype);
  std::string cache = "none";
  std::string gallery_dir;
  bool gallery_quiet = false;
  CLI::App* batch = nullptr;
  CLI::App* gallery = nullptr;
  bool selected() const { return (batch && *batch) || (gallery && *gallery); }
};

// Adds the `batch` and `gallery` subcommands to `app`, parsing into `c`.
void add_batch_commands(CLI::App& app, BatchCli& c);

// Runs whichever of the two was selected; returns the exit code.
int run_batch_commands(BatchCli& c);

}  // namespace t2v
