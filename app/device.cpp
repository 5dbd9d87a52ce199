#include "app/device.h"

#include <fstream>
#include <string>

#include <fmt/format.h>

#include "core/error.h"
#include "kernels/backend.h"

namespace t2v {

Device open_device(const std::string& name) {
  Device dev;
  if (name == "cpu") dev = Device::CPU;
  else if (name == "cuda") dev = Device::CUDA;
  else if (name == "test") dev = Device::Test;
  else throw Error(kExitUsage, fmt::format("--device '{}' is unknown", name), "use cpu, cuda or test");
  // Error(69) for a backend this build lacks; open() for one without a usable device.
  const ops::Backend& b = ops::backend(dev);
  if (b.open) b.open();
  return dev;
}

size_t peak_memory_bytes(Device dev) {
  if (dev != Device::CPU) {
    const ops::Backend& b = ops::backend(dev);
    if (b.peak_memory_bytes) return b.peak_memory_bytes();
  }
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("VmHWM:", 0) == 0) return static_cast<size_t>(std::stoull(line.substr(6))) * 1024;  // kB
  return 0;
}

void reset_peak_memory(Device dev) {
  if (dev != Device::CPU) {
    const ops::Backend& b = ops::backend(dev);
    if (b.reset_peak_memory) {
      b.reset_peak_memory();
      return;
    }
  }
  std::ofstream("/proc/self/clear_refs") << "5";  // resets VmHWM to the current RSS
}

}  // namespace t2v
