#include <malloc.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "app/cli.h"

extern "C" char* openblas_get_corename(void);

// OpenBLAS and libgomp read their settings from the environment when they load, so
// the only way to change them is to restart with the variables set (once: the
// restarted process finds them set). Set only where the user has not:
// - OPENBLAS_CORETYPE: on virtual machines that hide the CPU model ("Intel Xeon
//   Processor") OpenBLAS falls back to its oldest x86-64 kernels (Prescott), 3-4x
//   slower than what the CPU supports.
// - OPENBLAS_THREAD_TIMEOUT=4: its idle worker threads sleep after 2^4 cycles
//   instead of spinning on sched_yield for ~2^28, taking cores from the OpenMP
//   threads of the elementwise ops between GEMMs (and from anything else running).
//   Measured on the default model, 2 cores shared with a training job: 19.4 s ->
//   5.6 s per video.
// - OMP_WAIT_POLICY=passive (read by libgomp at load, the same way): OpenMP
//   threads between parallel loops sleep rather than spin against the BLAS
//   threads; spinning, the same video took 38.4 s.
static void configure_cpu_libraries(char** argv) {
  if (std::getenv("T2V_NO_BLAS_REEXEC")) return;
  bool changed = false;
  if (!std::getenv("OPENBLAS_CORETYPE")) {
    const char* core = openblas_get_corename();
    const char* better = nullptr;
    if (core && std::strcmp(core, "Prescott") == 0) {
      __builtin_cpu_init();
      if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) {
        better = "SkylakeX";
      } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        better = "Haswell";
      }
    }
    if (better) {
      setenv("OPENBLAS_CORETYPE", better, 1);
      changed = true;
    }
  }
  if (!std::getenv("OPENBLAS_THREAD_TIMEOUT")) {
    setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1);
    changed = true;
  }
  if (!std::getenv("OMP_WAIT_POLICY")) {
    setenv("OMP_WAIT_POLICY", "passive", 1);
    changed = true;
  }
  if (changed) execv("/proc/self/exe", argv);  // returns only on failure: then carry on as configured
}

int main(int argc, char** argv) {
  configure_cpu_libraries(argv);
  // Every buffer of 64 KiB or more is its own mapping, returned to the system when freed.
  // glibc's default threshold rises with each large free, after which tensors come from
  // the heap and fragment it: a 5-frame 256x256 decode of the default model then peaked
  // 78 MB (17%) above its live set, beyond what app/memory_estimate.h predicts
  // (docs/memory.md). Unless the user set MALLOC_MMAP_THRESHOLD_ themselves.
  if (!std::getenv("MALLOC_MMAP_THRESHOLD_")) mallopt(M_MMAP_THRESHOLD, 64 * 1024);
  // Warnings go to stderr: stdout carries the --json event stream and `inspect` output.
  spdlog::set_default_logger(spdlog::stderr_color_mt("t2v"));
  return t2v::run_cli(argc, argv);
}
