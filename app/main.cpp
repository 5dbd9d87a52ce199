#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "app/cli.h"

extern "C" char* openblas_get_corename(void);

// OpenBLAS picks its kernels from the CPU model. On virtual machines that hide
// the model ("Intel Xeon Processor") it falls back to its oldest x86-64 kernels
// (Prescott), 3-4x slower than what the CPU supports. The choice is made when the
// library loads, so the only fix is to restart with OPENBLAS_CORETYPE set.
static void select_blas_kernels(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") || std::getenv("T2V_NO_BLAS_REEXEC")) return;
  const char* core = openblas_get_corename();
  if (!core || std::strcmp(core, "Prescott") != 0) return;
  const char* better = nullptr;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) {
    better = "SkylakeX";
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    better = "Haswell";
  }
  if (!better) return;
  setenv("OPENBLAS_CORETYPE", better, 1);
  execv("/proc/self/exe", argv);  // returns only on failure: then carry on with the slow kernels
}

int main(int argc, char** argv) {
  select_blas_kernels(argv);
  // Warnings go to stderr: stdout carries the --json event stream and `inspect` output.
  spdlog::set_default_logger(spdlog::stderr_color_mt("t2v"));
  return t2v::run_cli(argc, argv);
}
