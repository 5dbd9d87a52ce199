// The backend tables (kernels/backend.h), collected here once per process. This
// is the one place that knows which backends the build contains.
#include "kernels/backend.h"

#include <cstddef>

#include <fmt/format.h>

#include "core/error.h"
#include "kernels/cpu/backend_cpu.h"
#include "kernels/test_device/backend_test_device.h"
#ifdef T2V_HAVE_CUDA
#include "kernels/cuda/backend_cuda.h"
#endif

namespace t2v::ops {
namespace {

Backend make_cpu() {
  Backend b;
  b.name = device_name(Device::CPU);
  cpu::register_gemm(b);
  cpu::register_norm(b);
  cpu::register_attention(b);
  cpu::register_elementwise(b);
  cpu::register_conv(b);
  cpu::register_rope(b);
  cpu::register_layout(b);
  return b;
}

Backend make_test_device() {
  Backend b;
  b.name = device_name(Device::Test);
  test_device::register_backend(b);
  return b;
}

const Backend& cuda_table() {
#ifdef T2V_HAVE_CUDA
  static const Backend b = [] {
    Backend t;
    t.name = device_name(Device::CUDA);
    cuda::register_backend(t);
    return t;
  }();
  return b;
#else
  throw Error(kExitUnavailable, "cuda: this build has no CUDA backend (configured without nvcc, or with T2V_CUDA=OFF)",
              "install the CUDA toolkit and rebuild (cmake -DT2V_CUDA=ON), or use --device cpu");
#endif
}

}  // namespace

const Backend& backend(Device dev) {
  switch (dev) {
    case Device::CPU: {
      static const Backend b = make_cpu();
      return b;
    }
    case Device::Test: {
      static const Backend b = make_test_device();
      return b;
    }
    case Device::CUDA: return cuda_table();
  }
  throw Error(kExitSoftware, fmt::format("no backend for device {}", static_cast<int>(dev)));
}

void unsupported(const char* op, const Backend& b) {
  throw Error(kExitUnavailable, fmt::format("{} is not supported on device {}", op, b.name),
              fmt::format("run on --device cpu, or give the {} backend a '{}' entry (kernels/backend.h)", b.name, op));
}

std::vector<OpEntry> op_entries(const Backend& b) {
  // Declaration order of kernels/backend.h; the static_assert below catches an
  // entry added to the struct but not here.
  std::vector<OpEntry> e = {
      {"linear", b.linear != nullptr},
      {"linear_gelu_tanh", b.linear_gelu_tanh != nullptr},
      {"matmul", b.matmul != nullptr},
      {"layer_norm", b.layer_norm != nullptr},
      {"layer_norm_modulate", b.layer_norm_modulate != nullptr},
      {"rms_norm", b.rms_norm != nullptr},
      {"rms_norm_channels", b.rms_norm_channels != nullptr},
      {"softmax", b.softmax != nullptr},
      {"attention", b.attention != nullptr},
      {"gelu_tanh", b.gelu_tanh != nullptr},
      {"gelu_erf", b.gelu_erf != nullptr},
      {"silu", b.silu != nullptr},
      {"add", b.add != nullptr},
      {"sub", b.sub != nullptr},
      {"mul", b.mul != nullptr},
      {"scale", b.scale != nullptr},
      {"add_scalar", b.add_scalar != nullptr},
      {"clamp", b.clamp != nullptr},
      {"modulate", b.modulate != nullptr},
      {"add_gated", b.add_gated != nullptr},
      {"lincomb", b.lincomb != nullptr},
      {"conv3d", b.conv3d != nullptr},
      {"conv2d", b.conv2d != nullptr},
      {"upsample_nearest2x", b.upsample_nearest2x != nullptr},
      {"rope_3d", b.rope_3d != nullptr},
      {"concat", b.concat != nullptr},
      {"slice", b.slice != nullptr},
      {"permute", b.permute != nullptr},
      {"contiguous_copy", b.contiguous_copy != nullptr},
      {"embedding", b.embedding != nullptr},
      {"cast", b.cast != nullptr},
  };
  return e;
}

// Every member from `linear` on is one op entry (a function pointer).
constexpr size_t kOpEntries = 31;
static_assert(sizeof(Backend) == offsetof(Backend, linear) + kOpEntries * sizeof(void (*)()),
              "kernels/backend.h gained or lost an op entry: update op_entries() and kOpEntries");

}  // namespace t2v::ops
