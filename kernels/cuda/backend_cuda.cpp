// The CUDA table: the op families' entries and the device hooks (runtime.h).
#include "kernels/cuda/backend_cuda.h"

#include <cstdlib>

#include "kernels/cuda/runtime.h"

namespace t2v::ops::cuda {
namespace {

void open_device0() {
  if (initialized()) return;
  init(0);  // throws Error(69) naming the reason when no usable GPU is present
  std::atexit([] { shutdown(); });
}

size_t peak_bytes() { return memory_stats().peak_in_use_bytes; }

void reset_peak() { reset_peak_memory(); }

}  // namespace

void register_backend(Backend& b) {
  b.open = open_device0;
  b.peak_memory_bytes = peak_bytes;
  b.reset_peak_memory = reset_peak;
  register_gemm(b);
  register_norm(b);
  register_attention(b);
  register_elementwise(b);
  register_conv(b);
  register_layout(b);
}

}  // namespace t2v::ops::cuda
