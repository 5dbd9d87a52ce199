#include "app/device.h"

#include <cstdlib>
#include <fstream>
#include <string>

#include <fmt/format.h>

#include "core/error.h"
#ifdef T2V_HAVE_CUDA
#include "kernels/cuda/runtime.h"
#endif

namespace t2v {

Device open_device(const std::string& name) {
  if (name == "cpu") return Device::CPU;
  if (name != "cuda") throw Error(kExitUsage, fmt::format("--device '{}' is unknown", name), "use cpu or cuda");
#ifdef T2V_HAVE_CUDA
  if (!ops::cuda::initialized()) {
    ops::cuda::init(0);  // throws Error(69) naming the reason when no usable GPU is present
    std::atexit([] { ops::cuda::shutdown(); });
  }
  return Device::CUDA;
#else
  throw Error(kExitUnavailable, "--device cuda: this build has no CUDA backend",
              "build on a machine with the CUDA toolkit (nvcc) installed, or use --device cpu");
#endif
}

size_t peak_memory_bytes(Device dev) {
#ifdef T2V_HAVE_CUDA
  if (dev == Device::CUDA) return ops::cuda::memory_stats().peak_in_use_bytes;
#endif
  (void)dev;
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("VmHWM:", 0) == 0) return static_cast<size_t>(std::stoull(line.substr(6))) * 1024;  // kB
  return 0;
}

void reset_peak_memory(Device dev) {
#ifdef T2V_HAVE_CUDA
  if (dev == Device::CUDA) {
    ops::cuda::reset_peak_memory();
    return;
  }
#endif
  (void)dev;
  std::ofstream("/proc/self/clear_refs") << "5";  // resets VmHWM to the current RSS
}

}  // namespace t2v
