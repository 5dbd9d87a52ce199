#include "app/cli.h"

#include <cstdio>

#include <CLI/CLI.hpp>

#include "core/error.h"

namespace t2v {

int run_cli(int argc, char** argv) {
  CLI::App app{"t2v: text-to-video generation (Wan2.1 architecture)"};
  app.set_version_flag("--version", std::string("t2v ") + T2V_VERSION);
  app.require_subcommand(1);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }
  return 0;
}

}  // namespace t2v
