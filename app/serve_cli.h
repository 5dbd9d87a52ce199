// Command-line setup of `t2v serve`, kept here so cli.cpp stays a list of subcommands.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "app/choices.h"
#include "app/serve.h"

namespace t2v {

struct ServeCli {
  ServeOptions o;
  std::string size, fps, cfg, shift;
  std::string sampler = sampler_option_name(o.defaults.sampler), schedule = schedule_option_name(o.defaults.schedule);
  std::string device = device_option_name(o.defaults.device), dtype = dtype_option_name(o.defaults.dtype);
  CLI::App* serve = nullptr;
  bool selected() const { return serve && *serve; }
};

// Adds the `serve` subcommand to `app`, parsing into `c`.
void add_serve_command(CLI::App& app, ServeCli& c);

// Parses the choices, applies the model folder's t2v.json, reads T2V_API_KEY and runs the server.
int run_serve_command(ServeCli& c);

}  // namespace t2v
