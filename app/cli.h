// The t2v command line: parses arguments and runs a subcommand. Returns the
// process exit code (sysexits.h values, see core/error.h).
#pragma once

namespace t2v {
int run_cli(int argc, char** argv);
}
