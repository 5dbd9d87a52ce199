#include "app/device.h"

#include <cstdlib>

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

}  // namespace t2v
